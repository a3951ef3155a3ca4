"""Feature builds at hour grain against day grain: rows written and seconds, in one run.

The events are those of `bench/feature_build.py` (default 10M events, 100k entities, 180
days). Two feature sets are declared over them, each with count, sum and mean of the amount:
- day grain, 1d and 7d windows (rows stamped at the midnight that ends each day);
- hour grain, 1h, 6h and 24h windows (rows stamped at the end of each hour).
Each gets a full build through `build_feature_set` (validation, quarantine, Delta MERGE),
alternately, `--rounds` times (the first pays the JVM's warm-up); the run prints each grain's
fastest build, the rows it wrote, and the ratios. As a check, where both
tables hold a row at the same midnight, the hour set's 24h window equals the day set's 1d
window (a difference exits non-zero).

    .venv/bin/python bench/feature_grains.py --events 10000000
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from feature_build import bench_settings, generate  # the same synthetic events and set-up

REPO = Path(__file__).resolve().parents[1]
AGGREGATES = [
    {"column": "amount", "fn": "count", "name": "n"},
    {"column": "amount", "fn": "sum", "name": "amount_sum"},
    {"column": "amount", "fn": "mean", "name": "amount_mean"},
]
KINDS = {
    "n": ("bigint", "Events"),
    "amount_sum": ("double", "Amount"),
    "amount_mean": ("double", "Mean amount"),
}


def declaration(name: str, grain: str, windows: list[str]) -> dict[str, Any]:
    """A rolling count, sum and mean of the amount per entity at `grain` over `windows`."""
    return {
        "name": name,
        "description": f"Rolling count, sum and mean of amount per entity at {grain} grain.",
        "table": f"features.{name}",
        "source": "raw.bench_events",
        "entity": ["entity_id"],
        "event_time": "event_ts",
        "grain": grain,
        "lookback": "1d",
        "transforms": [
            {
                "fn": "parity.transforms.add_rolling_aggregates",
                "params": {
                    "entity": "entity_id",
                    "time_column": "event_ts",
                    "windows": windows,
                    "output": "feature_ts",
                    "aggregates": AGGREGATES,
                },
            }
        ],
        "features": [
            {"name": f"{aggregate}_{window}", "type": kind, "description": f"{text} in the last {window}."}
            for window in windows
            for aggregate, (kind, text) in KINDS.items()
        ],
    }


SETS = {"bench_daily": ("day", ["1d", "7d"]), "bench_hourly": ("hour", ["1h", "6h", "24h"])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument(
        "--rounds", type=int, default=2, help="full builds per grain, alternating; the fastest counts"
    )
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--work-dir", default=None, help="default: a temporary folder, removed afterwards")
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from parity.core.catalog import Catalog
    from parity.core.session import get_spark
    from parity.features import BuildOptions, build_feature_set

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="parity-bench-grains-"))
    declarations = {name: declaration(name, grain, windows) for name, (grain, windows) in SETS.items()}
    settings = bench_settings(work, declarations, driver_memory=args.driver_memory)
    spark = get_spark(settings)
    catalog = Catalog(spark, settings)
    print(f"generating {args.events:,} events, {args.entities:,} entities, {args.days} days ...", flush=True)
    catalog.write(
        generate(spark, args.events, args.entities, args.days).repartitionByRange(64, "event_ts"),
        "raw.bench_events",
    )

    results: dict[str, tuple[float, int]] = {}
    for round_number in range(1, args.rounds + 1):
        for name in SETS:
            started = time.perf_counter()
            built = build_feature_set(
                catalog, settings, settings.feature_sets[name], BuildOptions(full_refresh=True)
            )
            seconds = time.perf_counter() - started
            print(
                f"round {round_number}, {name}: {seconds:.1f} s, {built.counts['rows_written']:,} rows "
                f"written; steps {built.seconds}",
                flush=True,
            )
            if name not in results or seconds < results[name][0]:
                results[name] = (seconds, built.counts["rows_written"])

    # The check: at a midnight both tables hold, the last 24 hours are the last day.
    daily = catalog.read("features.bench_daily").select("entity_id", "feature_ts", "n_1d", "amount_sum_1d")
    hourly = catalog.read("features.bench_hourly").select(
        "entity_id", "feature_ts", "n_24h", "amount_sum_24h"
    )
    both = daily.join(hourly, ["entity_id", "feature_ts"])
    compared = both.agg(
        F.count(F.lit(1)).alias("rows"),
        F.count_if(
            (F.col("n_1d") != F.col("n_24h"))
            | (F.abs(F.col("amount_sum_1d") - F.col("amount_sum_24h")) > 1e-6)
        ).alias("differ"),
    ).first()
    assert compared is not None
    day_seconds, day_rows = results["bench_daily"]
    hour_seconds, hour_rows = results["bench_hourly"]
    print()
    print(f"| events | {args.events:,} ({args.entities:,} entities, {args.days} days) |")
    print(
        f"| day grain, 1d and 7d windows: full build (fastest of {args.rounds}) | {day_seconds:.1f} s, "
        f"{day_rows:,} rows written |"
    )
    print(
        f"| hour grain, 1h, 6h and 24h windows: full build (fastest of {args.rounds}) | "
        f"{hour_seconds:.1f} s, {hour_rows:,} rows written |"
    )
    print(f"| hour / day: seconds, rows | {hour_seconds / day_seconds:.2f}, {hour_rows / day_rows:.2f} |")
    print(
        "| hour grain seconds per million rows written / day grain's | "
        f"{(hour_seconds / hour_rows) / (day_seconds / day_rows):.2f} |"
    )
    print(
        f"| midnights in both tables where 24h = 1d | {compared['rows'] - compared['differ']:,} of "
        f"{compared['rows']:,} |"
    )
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if compared["differ"] == 0 and compared["rows"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
