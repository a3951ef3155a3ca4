"""Feature builds at scale: a full build and an incremental day against polars + delta-rs, and growth.

The feature set is the reference question: 7-day rolling count, sum and mean of an amount per
entity, as of the end of each UTC day, over N events (default 10M, 100k entities, 180 days).
It is declared like any other (a `bench_activity` declaration written into a copy of conf/)
and built by the same `build_feature_set` the job runs: validation, quarantine, Delta write or
MERGE. Before the timed builds, the same declaration is built (in full, then a day) over 200k
events of another table, so that the timed builds find the JVM's code compiled.

It prints, in one run:
- the full build's wall time, and the end-to-end reference: polars reading the same Delta
  table, computing the same rows and delta-rs writing them partitioned by day, compared row
  for row with parity's table;
- an incremental day (one new day of events appended) as a share of the full build;
- the compute alone against polars' compute alone, and the table after the day against
  polars on all events, row for row;
- growth: a full build of 2.5M, 10M and 40M events of history (the same 100k entities, more
  days) and then the same one-day increment, each in a process of its own with Spark's
  default driver memory: time per event, peak memory, and the increment's cost as history grows.

    .venv/bin/python bench/feature_build.py --events 10000000      # --growth with no sizes skips growth
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from parity.core.conf import Settings

REPO = Path(__file__).resolve().parents[1]
START = dt.datetime(2026, 1, 1)
DECLARATION = {
    "name": "bench_activity",
    "description": "7-day rolling count, sum and mean of amount per entity (the reference question).",
    "table": "features.bench_activity",
    "source": "raw.bench_events",
    "entity": ["entity_id"],
    "event_time": "event_ts",
    "lookback": "1d",
    "transforms": [
        {
            "fn": "parity.transforms.add_rolling_aggregates",
            "params": {
                "entity": "entity_id",
                "time_column": "event_ts",
                "windows": ["7d"],
                "output": "feature_ts",
                "aggregates": [
                    {"column": "amount", "fn": "count", "name": "n"},
                    {"column": "amount", "fn": "sum", "name": "amount_sum"},
                    {"column": "amount", "fn": "mean", "name": "amount_mean"},
                ],
            },
        }
    ],
    "features": [
        {"name": "n_7d", "type": "bigint", "description": "Events in the last 7 days."},
        {"name": "amount_sum_7d", "type": "double", "description": "Amount in the last 7 days."},
        {"name": "amount_mean_7d", "type": "double", "description": "Mean amount in the last 7 days."},
    ],
}


def generate(spark, events: int, entities: int, days: int, *, first_day: int = 0, seed: int = 0):  # type: ignore[no-untyped-def]
    """Deterministic synthetic events spread over `days` days from `first_day` days after START,
    in time order as an append-only feed lands them. Another `seed` gives other events; the same
    seed and count give the same entities and amounts on any days."""
    from pyspark.sql import functions as F

    ids = spark.range(events)
    second = F.pmod(F.xxhash64(F.col("id"), F.lit(seed * 10 + 2)), F.lit(days * 86_400)) + F.lit(
        first_day * 86_400
    )
    return ids.select(
        F.pmod(F.xxhash64(F.col("id"), F.lit(seed * 10 + 1)), F.lit(entities)).alias("entity_id"),
        (F.lit(START) + F.make_dt_interval(secs=second.cast("decimal(18,6)"))).alias("event_ts"),
        (F.pmod(F.xxhash64(F.col("id"), F.lit(seed * 10 + 3)), F.lit(100_000)) / 100.0).alias("amount"),
    )


WARM_UP = {
    **DECLARATION,
    "name": "bench_warm_up",
    "table": "features.bench_warm_up",
    "source": "raw.bench_warm_up_events",
}


def warm_up(catalog, settings, entities: int) -> None:  # type: ignore[no-untyped-def]
    """A full build and an incremental day of the same declaration on 200k events of another
    table, so that the timed builds run in a JVM whose code is compiled (a job pays that once;
    the figures below are the builds' own)."""
    from parity.features import BuildOptions, build_feature_set

    decl = settings.feature_sets["bench_warm_up"]
    catalog.write(generate(catalog.spark, 200_000, entities, 20, seed=2), "raw.bench_warm_up_events")
    build_feature_set(catalog, settings, decl, BuildOptions(full_refresh=True))
    catalog.write(
        generate(catalog.spark, 10_000, entities, 1, first_day=20, seed=3),
        "raw.bench_warm_up_events",
        mode="append",
    )
    build_feature_set(catalog, settings, decl)


def polars_rows(events):  # type: ignore[no-untyped-def]
    """The change-point rows parity's table holds, as a polars query over a LazyFrame of events."""
    import polars as pl

    tiles = (
        events.with_columns(pl.col("event_ts").dt.date().alias("day"))
        .group_by("entity_id", "day")
        .agg(pl.len().alias("n"), (pl.col("amount") * 1e9).round().cast(pl.Int128).sum().alias("s"))
    )
    candidates = pl.concat(
        [
            tiles.select("entity_id", "day"),
            tiles.select("entity_id", (pl.col("day") + pl.duration(days=7)).alias("day")),
        ]
    ).unique()
    grid = candidates.join(tiles, on=["entity_id", "day"], how="left").with_columns(
        pl.col("n").fill_null(0), pl.col("s").fill_null(0)
    )
    rolled = (
        grid.sort("entity_id", "day")
        .rolling(index_column="day", period="7d", group_by="entity_id")
        .agg(pl.col("n").sum().alias("n_7d"), pl.col("s").sum().alias("s_7d"))
        .with_columns(
            (pl.col("day").cast(pl.Datetime("us")) + pl.duration(days=1)).alias("feature_ts"),
            (pl.col("s_7d").cast(pl.Float64) / 1e9).alias("amount_sum_7d"),
        )
        .with_columns(
            pl.when(pl.col("n_7d") > 0).then(pl.col("amount_sum_7d") / pl.col("n_7d")).alias("amount_mean_7d")
        )
    )
    end = events.select(pl.col("event_ts").max().dt.date().cast(pl.Datetime("us")) + pl.duration(days=1))
    return (
        rolled.join(end.rename({"event_ts": "_end"}), how="cross")
        .filter(pl.col("feature_ts") <= pl.col("_end"))
        .select("entity_id", "feature_ts", "n_7d", "amount_sum_7d", "amount_mean_7d")
    )


def polars_answer(parquet_dir: Path) -> tuple[float, object]:
    """The same change-point rows as parity, computed by polars in one process."""
    import polars as pl

    started = time.perf_counter()
    answer = polars_rows(pl.scan_parquet(str(parquet_dir / "*.parquet"))).collect()
    return time.perf_counter() - started, answer


def polars_delta_build(source: str, version: int, target: str) -> float:
    """The full build end to end without Spark: polars reads the source's Delta table (at
    `version`), computes the same rows, and delta-rs writes them as a Delta table partitioned by
    day, with the landing columns parity's rows carry. Returns the wall time."""
    import polars as pl
    from deltalake import write_deltalake

    started = time.perf_counter()
    landed = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = (
        polars_rows(pl.scan_delta(source, version=version))
        .with_columns(
            pl.col("feature_ts").dt.date().alias("feature_date"),
            pl.lit(landed).cast(pl.Datetime("us")).alias("landed_at"),
            pl.lit(None).cast(pl.Datetime("us")).alias("superseded_at"),
        )
        .collect()
    )
    write_deltalake(target, rows, partition_by=["feature_date"])
    return time.perf_counter() - started


def same_rows(mine, theirs) -> bool:  # type: ignore[no-untyped-def]
    """Whether two answers (pandas frames of the reference columns) hold the same rows."""
    mine = mine.sort_values(["entity_id", "feature_ts"]).reset_index(drop=True)
    theirs = theirs.sort_values(["entity_id", "feature_ts"]).reset_index(drop=True)
    return bool(
        len(mine) == len(theirs)
        and (mine[["entity_id", "n_7d"]].to_numpy() == theirs[["entity_id", "n_7d"]].to_numpy()).all()
        and (mine["feature_ts"].to_numpy() == theirs["feature_ts"].to_numpy()).all()
        and ((mine["amount_sum_7d"] - theirs["amount_sum_7d"]).abs().max() < 1e-6)
        and ((mine["amount_mean_7d"].fillna(-1) - theirs["amount_mean_7d"].fillna(-1)).abs().max() < 1e-6)
    )


def bench_settings(
    work: Path, declarations: dict[str, dict[str, Any]], *, driver_memory: str | None
) -> Settings:
    """Settings for a benchmark in the emptied folder `work`: a copy of conf/ that also declares
    `declarations` (feature sets by name), tables under `work`, local Spark on two cores
    (`driver_memory` None keeps Spark's default)."""
    from parity.core.conf import load_settings

    shutil.rmtree(work, ignore_errors=True)
    conf = work / "conf"
    shutil.copytree(REPO / "conf", conf)
    for name, declaration in declarations.items():
        (conf / "features" / f"{name}.yaml").write_text(yaml.safe_dump(declaration))
    return load_settings(
        conf,
        overrides=[
            f"storage.root={work}/data",
            f"spark.jars_dir={REPO / '.jars'}",
            "spark.master=local[2]",
            *([f"spark.conf.spark.driver.memory={driver_memory}"] if driver_memory else []),
            "spark.conf.spark.sql.shuffle.partitions=16",
        ],
    )


def one_size(events: int, entities: int, per_day: int, work: Path) -> dict[str, float]:
    """A full build of `events` events of history (as many days as `per_day` makes them), then
    the same one-day increment whatever the history, with Spark's default driver memory. Run
    in a process of its own, so that the peak memory is this size's alone."""
    from training_set import PeakRss

    from parity.core.catalog import Catalog
    from parity.core.session import get_spark
    from parity.features import BuildOptions, build_feature_set

    settings = bench_settings(
        work, {"bench_activity": DECLARATION, "bench_warm_up": WARM_UP}, driver_memory=None
    )
    spark = get_spark(settings)
    catalog = Catalog(spark, settings)
    decl = settings.feature_sets["bench_activity"]
    warm_up(catalog, settings, entities)
    days = max(1, round(events / per_day))
    catalog.write(
        generate(spark, events, entities, days).repartitionByRange(64, "event_ts"), "raw.bench_events"
    )
    with PeakRss() as memory:
        started = time.perf_counter()
        full = build_feature_set(catalog, settings, decl, BuildOptions(full_refresh=True))
        full_seconds = time.perf_counter() - started
    catalog.write(
        generate(spark, per_day, entities, 1, first_day=days, seed=1).repartitionByRange(2, "event_ts"),
        "raw.bench_events",
        mode="append",
    )
    started = time.perf_counter()
    day = build_feature_set(catalog, settings, decl)
    day_seconds = time.perf_counter() - started
    # The incremental's fixed cost: one more event, on the next day.
    catalog.write(
        generate(spark, 1, entities, 1, first_day=days + 1, seed=4), "raw.bench_events", mode="append"
    )
    started = time.perf_counter()
    build_feature_set(catalog, settings, decl)
    one_seconds = time.perf_counter() - started
    return {
        "events": events,
        "days": days,
        "full_s": full_seconds,
        "rows_written": full.counts["rows_written"],
        "peak_rss_gb": memory.peak / 1024**3,
        "peak_jvm_gb": memory.peak_jvm / 1024**3,
        "driver_memory": spark.conf.get("spark.driver.memory", "1g (Spark's default)"),
        "day_events": day.counts["in"],
        "day_s": day_seconds,
        "one_event_s": one_seconds,
    }


def growth(sizes: list[int], entities: int, per_day: int) -> list[dict[str, float]]:
    """`one_size` at each size, each in a fresh process."""
    results = []
    for size in sizes:
        work = Path(tempfile.mkdtemp(prefix="parity-bench-growth-"))
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one-size",
                str(size),
                "--entities",
                str(entities),
                "--per-day",
                str(per_day),
                "--work-dir",
                str(work),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        shutil.rmtree(work, ignore_errors=True)
        print(f"growth {size:,} events: {results[-1]}", flush=True)
    return results


def events_parser(description: str | None) -> argparse.ArgumentParser:
    """The arguments of the benchmarks over these events: how many, over how many entities and days."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--driver-memory", default="6g")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = events_parser(__doc__)
    parser.add_argument(
        "--growth",
        type=int,
        nargs="*",
        default=[2_500_000, 10_000_000, 40_000_000],
        help="history sizes for the growth and flat-increment figures (none to skip them)",
    )
    parser.add_argument("--one-size", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--per-day", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", default=None, help="default: a temporary folder, removed afterwards")
    args = parser.parse_args(argv)
    per_day = args.per_day or args.events // args.days
    if args.one_size is not None:
        print(json.dumps(one_size(args.one_size, args.entities, per_day, Path(args.work_dir))))
        return 0

    from parity.core.catalog import Catalog
    from parity.core.session import get_spark
    from parity.core.versioned import current_rows
    from parity.features import BuildOptions, build_feature_set

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="parity-bench-features-"))
    settings = bench_settings(
        work, {"bench_activity": DECLARATION, "bench_warm_up": WARM_UP}, driver_memory=args.driver_memory
    )
    spark = get_spark(settings)
    catalog = Catalog(spark, settings)
    decl = settings.feature_sets["bench_activity"]
    warm_up(catalog, settings, args.entities)
    columns = ["entity_id", "feature_ts", "n_7d", "amount_sum_7d", "amount_mean_7d"]

    print(
        f"generating {args.events:,} events, {args.entities:,} entities, {args.days} days, and a day of "
        f"{per_day:,} more ...",
        flush=True,
    )
    history = generate(spark, args.events, args.entities, args.days)
    newest_day = generate(spark, per_day, args.entities, 1, first_day=args.days, seed=1)
    catalog.write(history.repartitionByRange(64, "event_ts"), "raw.bench_events")
    parquet_copy = work / "events_parquet"
    history.unionByName(newest_day).repartitionByRange(16, "event_ts").write.parquet(str(parquet_copy))

    # 1. parity: a full build of the history.
    started = time.perf_counter()
    full = build_feature_set(catalog, settings, decl, BuildOptions(full_refresh=True))
    full_seconds = time.perf_counter() - started
    print(
        f"parity full build: {full_seconds:.1f} s for {args.events:,} events "
        f"({args.events / full_seconds:,.0f} rows/s), "
        f"{full.counts['rows_written']:,} feature rows; steps {full.seconds}",
        flush=True,
    )

    # 2. The end-to-end reference: polars computes the same rows and delta-rs writes them.
    reference = work / "polars_delta"
    reference_seconds = polars_delta_build(catalog.path("raw.bench_events"), 0, str(reference))
    print(f"polars + delta-rs end to end: {reference_seconds:.1f} s", flush=True)
    from deltalake import DeltaTable

    same_full = same_rows(
        current_rows(catalog.snapshot(decl.table, full.version)).select(*columns).toPandas(),
        DeltaTable(str(reference)).to_pandas(columns=columns),
    )

    # 3. An incremental day: one new day of events lands and the watermark moves on.
    catalog.write(newest_day.repartitionByRange(2, "event_ts"), "raw.bench_events", mode="append")
    started = time.perf_counter()
    day = build_feature_set(catalog, settings, decl)
    day_seconds = time.perf_counter() - started
    print(
        f"parity incremental day: {day_seconds:.1f} s for {day.counts['in']:,} new events "
        f"(range {day.range.as_dict()['start']} .. {day.range.as_dict()['end']}); "
        f"{day_seconds / full_seconds:.3f} of the full build; steps {day.seconds}",
        flush=True,
    )

    # 4. The compute alone on all events (no validation, no Delta write), and polars in one process.
    from parity.features import newest_event_time, preview_feature_set

    all_events = spark.read.parquet(str(parquet_copy))
    started = time.perf_counter()
    preview_feature_set(decl, all_events, newest=newest_event_time(decl, all_events)).write.format(
        "noop"
    ).mode("overwrite").save()
    compute_seconds = time.perf_counter() - started
    polars_seconds, answer = polars_answer(parquet_copy)
    print(f"polars: {polars_seconds:.1f} s, {answer.height:,} rows", flush=True)
    same_day = same_rows(
        current_rows(catalog.read(decl.table)).select(*columns).toPandas(), answer.to_pandas()
    )
    spark.stop()

    # 5. Growth and a flat increment: the same day on histories of several sizes, each in its own process.
    sizes = growth(args.growth, args.entities, per_day) if args.growth else []

    print()
    print(
        f"| events | {args.events:,} ({args.entities:,} entities, {args.days} days), then a day of "
        f"{per_day:,} ({day.counts['in']:,} reprocessed) |"
    )
    print(
        f"| parity full build (validate, compute, Delta write) | {full_seconds:.1f} s, "
        f"{args.events / full_seconds:,.0f} input rows/s |"
    )
    print(
        "| polars + delta-rs end to end (read Delta, compute, write Delta partitioned by day) | "
        f"{reference_seconds:.1f} s |"
    )
    print(
        f"| **full build / polars + delta-rs** (goal: at most 4) | **{full_seconds / reference_seconds:.2f}** |"
    )
    print(f"| parity compute alone (no validation, no write), all events | {compute_seconds:.1f} s |")
    print(f"| polars compute alone, one process | {polars_seconds:.1f} s |")
    print(f"| compute alone / polars | {compute_seconds / polars_seconds:.2f} |")
    print(f"| incremental day | {day_seconds:.1f} s |")
    print(
        "| **incremental day / full build** (goal: at most 1/7 = 0.143) | "
        f"**{day_seconds / full_seconds:.3f}** (1/{full_seconds / day_seconds:.1f}) |"
    )
    print(
        f"| full build equal to polars + delta-rs, row for row | {same_full} ({full.counts['rows_written']:,} rows) |"
    )
    print(
        f"| table after the day equal to polars on all events, row for row | {same_day} ({answer.height:,} rows) |"
    )
    if sizes:
        print()
        print(
            "| history (events) | days | full build (s) | µs per event | peak RSS, all (GB) | "
            "peak RSS, JVM (GB) | driver memory | incremental day (s) | one more event (s) |"
        )
        print("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
        for r in sizes:
            print(
                f"| {r['events']:,} | {r['days']} | {r['full_s']:.1f} | "
                f"{r['full_s'] / r['events'] * 1e6:.2f} | {r['peak_rss_gb']:.2f} | "
                f"{r['peak_jvm_gb']:.2f} | {r['driver_memory']} | {r['day_s']:.1f} | {r['one_event_s']:.1f} |"
            )
        by_size = {r["events"]: r for r in sizes}
        small, middle, large = (by_size.get(n) for n in (2_500_000, 10_000_000, 40_000_000))
        if small and middle:
            print(
                "\n**incremental day on 10M / on 2.5M of history** (goal: at most 1.3): "
                f"**{middle['day_s'] / small['day_s']:.2f}**"
            )
        if middle and large:
            ratio = (large["full_s"] / large["events"]) / (middle["full_s"] / middle["events"])
            print(
                f"**time per event at 40M / at 10M** (goal: at most 1): **{ratio:.2f}**; "
                f"peak RSS 40M / 10M: {large['peak_rss_gb'] / middle['peak_rss_gb']:.2f} (the JVM's: "
                f"{large['peak_jvm_gb'] / middle['peak_jvm_gb']:.2f})"
            )
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if same_full and same_day else 1


if __name__ == "__main__":
    sys.exit(main())
