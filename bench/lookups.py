"""Several feature lookups in one training set, against one lookup.

M labels (default 1M) against three feature tables of N rows each (default 10M: 500k entities
x 20 rows, 10 features each), in one run, each answer written to Spark's no-op sink, through
`assemble_features` as a training-set build calls it:
- one lookup (the reference);
- three lookups on the same keys;
- three lookups on three different key columns of the labels;
- the same-key three as three bare `as_of_join` calls in a row (no staging or renaming), whose
  answer the assembled one must equal row for row;
- the same-key three after a narrow first pass that keeps only each table's matched rows (a
  design measured, not in main; its answer must be equal too);
- two floors: reading one feature table whole, and reading, shuffling and sorting one table's
  keys and times.
Every method runs once to warm the JVM up, then once timed.

    .venv/bin/python bench/lookups.py --features 10000000 --labels 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START = dt.datetime(2026, 1, 1)
COLUMNS = [f"f{i}" for i in range(10)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=int, default=10_000_000, help="rows per feature table")
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=500_000)
    parser.add_argument("--driver-memory", default="3g")
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from parity.core.conf import FeatureSetDecl, load_settings
    from parity.core.session import get_spark
    from parity.features.asof import AsOfJoin, FeatureLookup, as_of_join, assemble_features

    work = Path(tempfile.mkdtemp(prefix="parity-bench-lookups-"))
    settings = load_settings(
        REPO / "conf",
        overrides=[
            f"storage.root={work}/data",
            "spark.master=local[2]",
            f"spark.conf.spark.driver.memory={args.driver_memory}",
            "spark.conf.spark.sql.shuffle.partitions=16",
        ],
    )
    spark = get_spark(settings)
    rows_per_entity = args.features // args.entities
    for table in range(3):
        spark.range(args.features).select(
            (F.col("id") % args.entities).alias("entity_id"),
            (
                F.lit(START)
                + F.make_dt_interval(
                    days=(F.col("id") / args.entities).cast("int") * (180 // rows_per_entity),
                    secs=F.pmod(F.xxhash64("id", F.lit(table)), F.lit(86_400)).cast("decimal(18,6)"),
                )
            ).alias("feature_ts"),
            *[
                (F.pmod(F.xxhash64("id", F.lit(i), F.lit(table)), F.lit(1_000_000)) / 1000.0).alias(c)
                for i, c in enumerate(COLUMNS)
            ],
        ).write.format("delta").save(f"{work}/features{table}")
    keys = {f"e{k}": F.pmod(F.xxhash64("id", F.lit(7 + k)), F.lit(args.entities)) for k in range(3)}
    spark.range(args.labels).select(
        F.col("id").alias("label_id"),
        *[value.alias(name) for name, value in keys.items()],
        (
            F.lit(START)
            + F.make_dt_interval(
                secs=F.pmod(F.xxhash64("id", F.lit(8)), F.lit(190 * 86_400)).cast("decimal(18,6)")
            )
        ).alias("label_ts"),
    ).write.format("delta").save(f"{work}/labels")
    labels = spark.read.format("delta").load(f"{work}/labels")
    tables = [spark.read.format("delta").load(f"{work}/features{t}") for t in range(3)]
    print(
        f"{args.labels:,} labels; 3 feature tables of {args.features:,} rows ({args.entities:,} entities, "
        f"{len(COLUMNS)} features)",
        flush=True,
    )

    def decl(name: str) -> FeatureSetDecl:
        return FeatureSetDecl.model_validate(
            {
                "name": name,
                "description": "bench",
                "table": f"features.{name}",
                "source": "raw.x",
                "entity": ["entity_id"],
                "event_time": "feature_ts",
                "transforms": [
                    {
                        "fn": "parity.transforms.with_alias",
                        "params": {"column": "feature_ts", "output": "feature_ts"},
                    }
                ],
                "features": [{"name": c, "type": "double", "description": "bench"} for c in COLUMNS],
            }
        )

    def lookup(t: int, key: str) -> FeatureLookup:
        return FeatureLookup(decl(f"set{t}"), 0, tables[t], keys={"entity_id": key}, prefix=f"t{t}_")

    def one():  # type: ignore[no-untyped-def]
        return assemble_features(labels, [lookup(0, "e0")], spine_ts="label_ts")

    def same_keys():  # type: ignore[no-untyped-def]
        return assemble_features(labels, [lookup(t, "e0") for t in range(3)], spine_ts="label_ts")

    def one_pass_each():  # type: ignore[no-untyped-def]
        joined = labels
        for t in range(3):
            renamed = (
                tables[t]
                .select("entity_id", "feature_ts", *[F.col(c).alias(f"t{t}_{c}") for c in COLUMNS])
                .withColumnRenamed("entity_id", "e0")
            )
            joined = as_of_join(
                joined,
                renamed,
                AsOfJoin(
                    entity="e0",
                    spine_ts="label_ts",
                    feature_ts="feature_ts",
                    columns=[f"t{t}_{c}" for c in COLUMNS],
                    matched_ts=f"t{t}_set{t}_as_of",
                ),
            )
        return joined

    def different_keys():  # type: ignore[no-untyped-def]
        return assemble_features(labels, [lookup(t, f"e{t}") for t in range(3)], spine_ts="label_ts")

    def narrow_first():  # type: ignore[no-untyped-def]
        """A narrow pass over the keys and times of all three tables finds each label's matched
        rows; the passes then run over those rows only (a design measured, not in main)."""
        from pyspark.sql import Window

        def narrow(frame, kind: int, table: int | None, entity: str, ts: str):  # type: ignore[no-untyped-def]
            return frame.select(
                F.col(entity).alias("_e"),
                F.col(ts).alias("_ts"),
                F.lit(kind).alias("_k"),
                F.lit(table).cast("int").alias("_t"),
                (F.col(ts) if table is not None else F.lit(None)).cast("timestamp").alias("_f"),
            )

        rows = narrow(labels, 1, None, "e0", "label_ts")
        for t in range(3):
            rows = rows.unionByName(narrow(tables[t], 0, t, "entity_id", "feature_ts"))
        window = Window.partitionBy("_e").orderBy("_ts", "_k").rowsBetween(Window.unboundedPreceding, 0)
        matched = rows.select(
            "_e",
            "_k",
            *[F.max(F.when(F.col("_t") == t, F.col("_f"))).over(window).alias(f"_m{t}") for t in range(3)],
        )
        matched = matched.filter("_k = 1").localCheckpoint()
        reduced = [
            tables[t].join(
                F.broadcast(
                    matched.select(F.col("_e").alias("entity_id"), F.col(f"_m{t}").alias("feature_ts"))
                    .dropna()
                    .distinct()
                ),
                ["entity_id", "feature_ts"],
                "left_semi",
            )
            for t in range(3)
        ]
        return assemble_features(
            labels,
            [
                FeatureLookup(decl(f"set{t}"), 0, reduced[t], keys={"entity_id": "e0"}, prefix=f"t{t}_")
                for t in range(3)
            ],
            spine_ts="label_ts",
        )

    def keys_of_one_table():  # type: ignore[no-untyped-def]
        """A floor: reading one table's keys and times and shuffling and sorting them by entity."""
        return (
            tables[0]
            .select("entity_id", "feature_ts")
            .repartition(16, "entity_id")
            .sortWithinPartitions("entity_id", "feature_ts")
        )

    def one_table_read():  # type: ignore[no-untyped-def]
        """A floor: reading one table whole."""
        return tables[0].filter(F.col("f0") > -1)

    methods = {
        "one lookup": one,
        "three, same keys": same_keys,
        "three, different keys": different_keys,
        "three, same keys, bare as_of_join": one_pass_each,
        "three, same keys, narrow first pass": narrow_first,
        "floor: read one table": one_table_read,
        "floor: read, shuffle and sort one table's keys": keys_of_one_table,
    }
    seconds: dict[str, float] = {}
    for name, build in methods.items():
        build().write.format("noop").mode("overwrite").save()  # warm-up
        started = time.perf_counter()
        build().write.format("noop").mode("overwrite").save()
        seconds[name] = time.perf_counter() - started
        print(f"{name}: {seconds[name]:.1f} s", flush=True)
    columns = same_keys().columns
    same = (
        same_keys().exceptAll(one_pass_each().select(*columns)).count() == 0
        and same_keys().count() == args.labels
    )
    same = same and same_keys().exceptAll(narrow_first().select(*columns)).count() == 0
    base = seconds["one lookup"]
    print("\n| lookups | seconds | vs one lookup |\n| --- | ---: | ---: |")
    for name, value in seconds.items():
        print(f"| {name} | {value:.1f} | {value / base:.2f} |")
    print(
        f"\nassembled = bare as_of_join calls, row for row: {same}; goal: three on the same keys at most 1.6x one"
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
