"""Feature build at scale: a full build and an incremental day, against polars, in one run.

The feature set is the reference question: 7-day rolling count, sum and mean of an amount per
entity, as of the end of each UTC day, over N events (default 10M, 100k entities, 180 days).
It is declared like any other (a `bench_activity` declaration written into a copy of conf/)
and built by the same `build_feature_set` the job runs: validation, quarantine, Delta MERGE.

It prints, in one run:
- the full build's wall time and input rows/s (and the compute alone, no Delta write);
- polars (one process) answering the same question the same way, its wall time, and whether
  its answer equals parity's row for row;
- an incremental day (one new day of events appended) and its cost as a share of the full build.

    .venv/bin/python bench/feature_build.py --events 10000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
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
    "lookback_days": 1,
    "transforms": [
        {
            "fn": "parity.transforms.add_window_aggregates",
            "params": {
                "entity": "entity_id", "time_column": "event_ts", "windows_days": [7], "output": "feature_ts",
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


def generate(spark, events: int, entities: int, days: int):  # type: ignore[no-untyped-def]
    """Deterministic synthetic events, in time order as an append-only feed lands them."""
    from pyspark.sql import functions as F

    ids = spark.range(events)
    second = F.pmod(F.xxhash64(F.col("id"), F.lit(2)), F.lit(days * 86_400))
    return ids.select(
        F.pmod(F.xxhash64(F.col("id"), F.lit(1)), F.lit(entities)).alias("entity_id"),
        (F.lit(START) + F.make_dt_interval(secs=second.cast("decimal(18,6)"))).alias("event_ts"),
        (F.pmod(F.xxhash64(F.col("id"), F.lit(3)), F.lit(100_000)) / 100.0).alias("amount"),
    )


def polars_answer(parquet_dir: Path) -> tuple[float, object]:
    """The same change-point rows as parity, computed by polars in one process."""
    import polars as pl

    started = time.perf_counter()
    events = pl.scan_parquet(str(parquet_dir / "*.parquet"))
    tiles = (
        events.with_columns(pl.col("event_ts").dt.date().alias("day"))
        .group_by("entity_id", "day")
        .agg(pl.len().alias("n"), (pl.col("amount") * 1e9).round().cast(pl.Int128).sum().alias("s"))
    )
    candidates = pl.concat(
        [tiles.select("entity_id", "day"), tiles.select("entity_id", (pl.col("day") + pl.duration(days=7)).alias("day"))]
    ).unique()
    grid = candidates.join(tiles, on=["entity_id", "day"], how="left").with_columns(pl.col("n").fill_null(0), pl.col("s").fill_null(0))
    rolled = (
        grid.sort("entity_id", "day")
        .rolling(index_column="day", period="7d", group_by="entity_id")
        .agg(pl.col("n").sum().alias("n_7d"), pl.col("s").sum().alias("s_7d"))
        .with_columns(
            (pl.col("day").cast(pl.Datetime("us")) + pl.duration(days=1)).alias("feature_ts"),
            (pl.col("s_7d").cast(pl.Float64) / 1e9).alias("amount_sum_7d"),
        )
        .with_columns(pl.when(pl.col("n_7d") > 0).then(pl.col("amount_sum_7d") / pl.col("n_7d")).alias("amount_mean_7d"))
    )
    end = events.select(pl.col("event_ts").max().dt.date().cast(pl.Datetime("us")) + pl.duration(days=1)).collect().item()
    answer = rolled.filter(pl.col("feature_ts") <= end).select("entity_id", "feature_ts", "n_7d", "amount_sum_7d", "amount_mean_7d").collect()
    return time.perf_counter() - started, answer


def bench_settings(work: Path, declarations: dict[str, dict[str, Any]], *, driver_memory: str) -> Settings:
    """Settings for a benchmark in the emptied folder `work`: a copy of conf/ that also declares
    `declarations` (feature sets by name), tables under `work`, local Spark on two cores."""
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
            f"spark.conf.spark.driver.memory={driver_memory}",
            "spark.conf.spark.sql.shuffle.partitions=16",
        ],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--work-dir", default=None, help="default: a temporary folder, removed afterwards")
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from parity.core.catalog import Catalog
    from parity.core.session import get_spark
    from parity.core.versioned import current_rows
    from parity.features import build_feature_set

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="parity-bench-features-"))
    settings = bench_settings(work, {"bench_activity": DECLARATION}, driver_memory=args.driver_memory)
    spark = get_spark(settings)
    catalog = Catalog(spark, settings)
    decl = settings.feature_sets["bench_activity"]
    last_day = START.date() + dt.timedelta(days=args.days - 1)

    print(f"generating {args.events:,} events, {args.entities:,} entities, {args.days} days ...", flush=True)
    events = generate(spark, args.events, args.entities, args.days)
    history = events.filter(F.col("event_ts") < F.lit(dt.datetime.combine(last_day, dt.time())))
    newest_day = events.filter(F.col("event_ts") >= F.lit(dt.datetime.combine(last_day, dt.time())))
    catalog.write(history.repartitionByRange(64, "event_ts"), "raw.bench_events")
    history_rows = catalog.row_count("raw.bench_events", 0)
    parquet_copy = work / "events_parquet"
    events.repartitionByRange(16, "event_ts").write.parquet(str(parquet_copy))

    # 1. parity: a full build of the history, then the compute alone.
    started = time.perf_counter()
    full = build_feature_set(catalog, settings, decl, full_refresh=True)
    full_seconds = time.perf_counter() - started
    print(f"parity full build: {full_seconds:.1f} s for {history_rows:,} events ({history_rows / full_seconds:,.0f} rows/s), "
          f"{full.counts['rows_written']:,} feature rows; steps {full.seconds}", flush=True)

    # 2. An incremental day: one new day of events lands and the watermark moves on.
    catalog.write(newest_day.repartitionByRange(2, "event_ts"), "raw.bench_events", mode="append")
    started = time.perf_counter()
    day = build_feature_set(catalog, settings, decl)
    day_seconds = time.perf_counter() - started
    print(f"parity incremental day: {day_seconds:.1f} s for {day.counts['in']:,} new events "
          f"(range {day.range.as_dict()['start']} .. {day.range.as_dict()['end']}); "
          f"{day_seconds / full_seconds:.3f} of the full build; steps {day.seconds}", flush=True)

    # 3. The compute alone on all events (no validation, no Delta write): what polars does.
    from parity.features import newest_event_time, preview_feature_set

    all_events = spark.read.parquet(str(parquet_copy))
    started = time.perf_counter()
    computed = preview_feature_set(decl, all_events, newest=newest_event_time(decl, all_events))
    computed.write.format("noop").mode("overwrite").save()
    compute_seconds = time.perf_counter() - started

    # 4. polars, same question, same algorithm, one process.
    polars_seconds, answer = polars_answer(parquet_copy)
    print(f"polars: {polars_seconds:.1f} s, {answer.height:,} rows", flush=True)

    # Same answers: the table after the incremental day against polars on all events.
    table = current_rows(catalog.read(decl.table)).select("entity_id", "feature_ts", "n_7d", "amount_sum_7d", "amount_mean_7d")
    mine = table.toPandas().sort_values(["entity_id", "feature_ts"]).reset_index(drop=True)
    theirs = answer.to_pandas().sort_values(["entity_id", "feature_ts"]).reset_index(drop=True)
    same = (
        len(mine) == len(theirs)
        and (mine[["entity_id", "n_7d"]].to_numpy() == theirs[["entity_id", "n_7d"]].to_numpy()).all()
        and (mine["feature_ts"].to_numpy() == theirs["feature_ts"].to_numpy()).all()
        and ((mine["amount_sum_7d"] - theirs["amount_sum_7d"]).abs().max() < 1e-6)
        and ((mine["amount_mean_7d"].fillna(-1) - theirs["amount_mean_7d"].fillna(-1)).abs().max() < 1e-6)
    )
    print()
    print(f"| events | {args.events:,} ({args.entities:,} entities, {args.days} days) |")
    print(f"| parity full build (validate, compute, Delta write), history of {history_rows:,} events | {full_seconds:.1f} s, {history_rows / full_seconds:,.0f} input rows/s |")
    print(f"| parity compute alone (no write), all events | {compute_seconds:.1f} s, {args.events / compute_seconds:,.0f} input rows/s |")
    print(f"| polars, same question, one process | {polars_seconds:.1f} s |")
    print(f"| full build / polars | {full_seconds / polars_seconds:.2f} |")
    print(f"| compute alone / polars | {compute_seconds / polars_seconds:.2f} |")
    print(f"| incremental day ({day.counts['in']:,} new events) | {day_seconds:.1f} s |")
    print(f"| incremental day / full build | {day_seconds / full_seconds:.3f} (1/{full_seconds / day_seconds:.0f}) |")
    print(f"| answers equal to polars, row for row | {same} ({len(mine):,} rows) |")
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
