"""Where a full feature build's time goes: each stage of `build_feature_set` timed on its own.

The events and the declaration are those of `bench/feature_build.py` (10M events, 100k
entities, 180 days, the 7-day change-point windows). Each stage is materialized on its own
(the `noop` writer, a local checkpoint or a Delta write), so the figures are each stage's own
cost plus what it must recompute; the shuffles of the compute are counted in its plan.

    .venv/bin/python bench/feature_profile.py --events 10000000
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from feature_build import DECLARATION, bench_settings, events_parser, generate


def main(argv: list[str] | None = None) -> int:
    args = events_parser(__doc__).parse_args(argv)

    from pyspark.sql import functions as F

    from parity.core.catalog import Catalog
    from parity.core.columns import FEATURE_DATE
    from parity.core.session import get_spark
    from parity.features.compute import compute_feature_set
    from parity.features.sources import required_columns, validate_source

    work = Path(tempfile.mkdtemp(prefix="parity-bench-profile-"))
    settings = bench_settings(work, {"bench_activity": DECLARATION}, driver_memory=args.driver_memory)
    spark = get_spark(settings)
    catalog = Catalog(spark, settings)
    decl = settings.feature_sets["bench_activity"]
    conf = settings.source_quality(decl.source)
    catalog.write(
        generate(spark, args.events, args.entities, args.days).repartitionByRange(64, "event_ts"),
        "raw.bench_events",
    )
    source = catalog.read("raw.bench_events")

    timings: list[tuple[str, float]] = []

    def timed(name: str, run: Callable[[], object]) -> None:
        started = time.perf_counter()
        run()
        timings.append((name, time.perf_counter() - started))
        print(f"{name}: {timings[-1][1]:.1f} s", flush=True)

    def noop(df):  # type: ignore[no-untyped-def]
        return lambda: df.write.format("noop").mode("overwrite").save()

    def compute(rows):  # type: ignore[no-untyped-def]
        return compute_feature_set(decl, rows)

    timed("warm-up: compute from the Delta source, no validation", noop(compute(source)))
    timed("scan the source", noop(source))
    valid, _ = validate_source(source, conf, source="raw.bench_events", required=required_columns(decl))
    timed("scan and validate", noop(valid))
    cached = source.cache()
    timed("scan and cache", lambda: cached.count())
    valid, quarantined = validate_source(
        cached, conf, source="raw.bench_events", required=required_columns(decl)
    )
    valid = valid.cache()
    timed("validate the cached rows and cache the valid ones", lambda: valid.count())
    timed("quarantine tally (cached)", lambda: quarantined.groupBy("quarantine_rule").count().collect())
    timed("newest event time (cached)", lambda: valid.agg(F.max(decl.event_time)).first())
    timed("compute (from the cached valid rows)", noop(compute(valid)))
    dated = compute(valid).withColumn(FEATURE_DATE, F.to_date(decl.timestamp))
    timed("compute + repartition by day", noop(dated.repartition(FEATURE_DATE)))
    timed("compute + local checkpoint", lambda: dated.localCheckpoint().count())
    timed(
        "compute + Delta write, partitioned by day (one shuffle by day)",
        lambda: (
            dated.repartition(FEATURE_DATE)
            .write.format("delta")
            .partitionBy(FEATURE_DATE)
            .save(f"{work}/by_day_shuffled")
        ),
    )
    timed(
        "compute + Delta write, partitioned by day (no shuffle: a file per task and day)",
        lambda: dated.write.format("delta").partitionBy(FEATURE_DATE).save(f"{work}/by_day_direct"),
    )
    timed("compute + Delta write, not partitioned", lambda: dated.write.format("delta").save(f"{work}/flat"))
    files = {
        name: len(list((work / name).rglob("*.parquet")))
        for name in ("by_day_shuffled", "by_day_direct", "flat")
    }
    plan = compute(valid)._jdf.queryExecution().executedPlan().toString()

    print()
    print(f"| stage ({args.events:,} events) | seconds |")
    print("| --- | ---: |")
    for name, seconds in timings:
        print(f"| {name} | {seconds:.1f} |")
    print(f"\nfiles written: {files}")
    print(
        f"shuffles in the compute's plan: {plan.count('Exchange')}; sorts: {plan.count('Sort [')}; "
        f"aggregations: {plan.count('HashAggregate')}; windows: {plan.count('Window [')}"
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
