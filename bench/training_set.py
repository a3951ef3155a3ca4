"""Training-set (as-of) join at scale: parity against a naive Spark range join and pandas, in one run.

N feature rows (default 10M: 500k entities x 20 rows, 10 features) and M labels (default 1M)
at random times. Every method answers: for each label, the newest feature row of its entity at
or before the label time (nulls when there is none; no label may be dropped). Timed:
- parity `as_of_join`, strategy "sort" (the default) and strategy "broadcast";
- parity "sort" on the same rows kept as a bitemporal feature table does (landed_at and
  superseded_at, with a superseded older version of every tenth row), read through
  `current_rows`: the "as of now" view scoring and ordinary training sets read;
- a naive Spark range join (entity equal, feature time <= label time) + row_number;
- the textbook Spark as-of join: a union, then `last(ignorenulls)` per feature over a window;
- `pandas.merge_asof` in a separate single process (load time reported apart).
Each Spark method runs once to warm the JVM up, then once timed. All answers are compared row
for row. Peak memory is the resident set of the Spark driver
(Python + JVM) during each Spark method, and of the pandas process.

    .venv/bin/python bench/training_set.py --features 10000000 --labels 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
START = dt.datetime(2026, 1, 1)
COLUMNS = [f"f{i}" for i in range(10)]

PANDAS_SCRIPT = """
import json, resource, sys, time
import pandas as pd
from deltalake import DeltaTable
features_path, labels_path, out = sys.argv[1:4]
started = time.perf_counter()
features = DeltaTable(features_path).to_pandas()
labels = DeltaTable(labels_path).to_pandas()
loaded = time.perf_counter() - started
started = time.perf_counter()
features = features.sort_values("feature_ts")
labels = labels.sort_values("label_ts")
joined = pd.merge_asof(labels, features, left_on="label_ts", right_on="feature_ts", by="entity_id",
                       direction="backward")
seconds = time.perf_counter() - started
joined[["label_id", *[f"f{i}" for i in range(10)]]].to_parquet(out, index=False)
print(json.dumps({"load_s": loaded, "join_s": seconds, "rows": len(joined),
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2}))
"""


class PeakRss:
    """Samples the resident memory of this process and its children (the JVM, Python workers)
    every 50 ms: `peak` of them all, `peak_jvm` of the JVM alone."""

    def __init__(self) -> None:
        self.peak = 0
        self.peak_jvm = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            try:
                children = [(c.name(), c.memory_info().rss) for c in me.children(recursive=True)]
                total = me.memory_info().rss + sum(rss for _, rss in children)
                jvm = sum(rss for name, rss in children if name == "java")
            except psutil.Error:
                total = jvm = 0
            self.peak = max(self.peak, total)
            self.peak_jvm = max(self.peak_jvm, jvm)
            time.sleep(0.05)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=int, default=10_000_000)
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--entities", type=int, default=500_000)
    parser.add_argument("--driver-memory", default="3g")
    args = parser.parse_args(argv)

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from parity.core.conf import load_settings
    from parity.core.session import get_spark
    from parity.core.versioned import LANDED_AT, SUPERSEDED_AT, current_rows
    from parity.features.asof import AsOfJoin, as_of_join

    work = Path(tempfile.mkdtemp(prefix="parity-bench-asof-"))
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
    features_path, labels_path = f"{work}/features", f"{work}/labels"
    rows_per_entity = args.features // args.entities
    ids = spark.range(args.features)
    spark.range(args.features).select(
        (F.col("id") % args.entities).alias("entity_id"),
        (
            F.lit(START)
            + F.make_dt_interval(
                days=(F.col("id") / args.entities).cast("int") * (180 // rows_per_entity),
                secs=F.pmod(F.xxhash64("id"), F.lit(86_400)).cast("decimal(18,6)"),
            )
        ).alias("feature_ts"),
        *[
            (F.pmod(F.xxhash64("id", F.lit(i)), F.lit(1_000_000)) / 1000.0).alias(c)
            for i, c in enumerate(COLUMNS)
        ],
    ).write.format("delta").save(features_path)
    spark.range(args.labels).select(
        F.col("id").alias("label_id"),
        F.pmod(F.xxhash64("id", F.lit(7)), F.lit(args.entities)).alias("entity_id"),
        (
            F.lit(START)
            + F.make_dt_interval(
                secs=F.pmod(F.xxhash64("id", F.lit(8)), F.lit(190 * 86_400)).cast("decimal(18,6)")
            )
        ).alias("label_ts"),
    ).write.format("delta").save(labels_path)
    del ids
    features = spark.read.format("delta").load(features_path)
    labels = spark.read.format("delta").load(labels_path)
    # The same rows as a bitemporal table holds them: each landed, every tenth with an older
    # version it superseded (other values, landed and superseded earlier).
    versioned_path = f"{work}/features_versioned"
    landed = F.lit(START + dt.timedelta(days=200)).cast("timestamp")
    features.select(
        "*", landed.alias(LANDED_AT), F.lit(None).cast("timestamp").alias(SUPERSEDED_AT)
    ).unionByName(
        features.filter(F.pmod(F.xxhash64("entity_id", "feature_ts"), F.lit(10)) == 0).select(
            "entity_id",
            "feature_ts",
            *[(F.col(c) + 1).alias(c) for c in COLUMNS],
            F.lit(START + dt.timedelta(days=199)).cast("timestamp").alias(LANDED_AT),
            landed.alias(SUPERSEDED_AT),
        )
    ).write.format("delta").save(versioned_path)
    versioned = spark.read.format("delta").load(versioned_path)
    print(
        f"{args.features:,} feature rows ({args.entities:,} entities, {len(COLUMNS)} features), {args.labels:,} labels",
        flush=True,
    )

    def parity(strategy: str, rows=None):  # type: ignore[no-untyped-def]
        return as_of_join(
            labels,
            features if rows is None else rows,
            AsOfJoin(entity="entity_id", spine_ts="label_ts", feature_ts="feature_ts", columns=COLUMNS),
            strategy=strategy,
        )  # type: ignore[arg-type]

    def naive():  # type: ignore[no-untyped-def]
        f = features.withColumnRenamed("entity_id", "_e")
        pairs = labels.join(
            f, (labels["entity_id"] == f["_e"]) & (f["feature_ts"] <= labels["label_ts"]), "left"
        )
        newest = Window.partitionBy("label_id").orderBy(F.col("feature_ts").desc_nulls_last())
        return (
            pairs.withColumn("_rn", F.row_number().over(newest))
            .filter("_rn = 1")
            .select(*labels.columns, *COLUMNS)
        )

    def textbook():  # type: ignore[no-untyped-def]
        # The textbook Spark as-of join: one union, then last(ignorenulls) per feature.
        f = features.select(
            "entity_id",
            F.col("feature_ts").alias("_ts"),
            F.lit(None).cast("long").alias("label_id"),
            *COLUMNS,
        )
        spine = labels.select(
            "entity_id",
            F.col("label_ts").alias("_ts"),
            "label_id",
            *[F.lit(None).cast("double").alias(c) for c in COLUMNS],
        )
        upto = (
            Window.partitionBy("entity_id")
            .orderBy("_ts", F.col("label_id").asc_nulls_first())
            .rowsBetween(Window.unboundedPreceding, 0)
        )
        filled = f.unionByName(spine).select(
            "entity_id",
            F.col("_ts").alias("label_ts"),
            "label_id",
            *[F.last(c, ignorenulls=True).over(upto).alias(c) for c in COLUMNS],
        )
        return filled.filter(F.col("label_id").isNotNull()).select(*labels.columns, *COLUMNS)

    results: dict[str, dict[str, float]] = {}
    answers = {}
    methods = (
        ("parity sort", lambda: parity("sort")),
        ("parity sort, bitemporal table as of now", lambda: parity("sort", current_rows(versioned))),
        ("parity broadcast", lambda: parity("broadcast")),
        ("naive range join", naive),
        ("textbook union + last", textbook),
    )
    for _name, build in methods:  # a first pass warms the JVM up for every method; the second is timed
        build().write.format("noop").mode("overwrite").save()
    for name, build in methods:
        with PeakRss() as memory:
            started = time.perf_counter()
            build().write.format("noop").mode("overwrite").save()
            seconds = time.perf_counter() - started
        out = f"{work}/answer_{name.replace(' ', '_')}"
        build().select("label_id", *COLUMNS).write.parquet(out)
        answers[name] = out
        results[name] = {
            "seconds": seconds,
            "peak_rss_gb": memory.peak / 1024**3,
            "rows": spark.read.parquet(out).count(),
        }
        print(f"{name}: {seconds:.1f} s, peak RSS {memory.peak / 1024**3:.2f} GB", flush=True)

    # The floor of any Spark join that brings each entity's feature rows together: scanning the
    # feature table and shuffling it by entity (and sorting it), with no join at all.
    floors = {}
    for name, frame in (
        ("scan + shuffle by entity", features.repartition("entity_id")),
        (
            "scan + shuffle + sort by entity and time",
            features.repartition("entity_id").sortWithinPartitions("entity_id", "feature_ts"),
        ),
    ):
        frame.write.format("noop").mode("overwrite").save()
        started = time.perf_counter()
        frame.write.format("noop").mode("overwrite").save()
        floors[name] = time.perf_counter() - started
        print(f"floor, {name}: {floors[name]:.1f} s", flush=True)

    pandas_out = f"{work}/answer_pandas.parquet"
    proc = subprocess.run(
        [sys.executable, "-c", PANDAS_SCRIPT, features_path, labels_path, pandas_out],
        capture_output=True,
        text=True,
        check=True,
    )
    pandas = json.loads(proc.stdout.strip().splitlines()[-1])
    answers["pandas merge_asof"] = pandas_out
    print(
        f"pandas merge_asof: {pandas['join_s']:.1f} s (+{pandas['load_s']:.1f} s to load), peak RSS "
        f"{pandas['peak_rss_gb']:.2f} GB",
        flush=True,
    )

    reference = spark.read.parquet(answers["pandas merge_asof"])
    agree = {}
    for name, path in answers.items():
        other = spark.read.parquet(path)
        agree[name] = (
            other.count() == reference.count() == args.labels and other.exceptAll(reference).count() == 0
        )
    without = reference.filter(F.col("f0").isNull()).count()

    base = results["parity sort"]["seconds"]
    print()
    print("| method | seconds | vs parity sort | peak RSS (GB) | labels out | same answer as pandas |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name, figures in results.items():
        print(
            f"| {name} | {figures['seconds']:.1f} | {figures['seconds'] / base:.2f} | "
            f"{figures['peak_rss_gb']:.2f} | {figures['rows']:,} | {agree[name]} |"
        )
    print(
        f"| pandas merge_asof (one process; join only, load {pandas['load_s']:.1f} s apart) | {pandas['join_s']:.1f} | "
        f"{pandas['join_s'] / base:.2f} | {pandas['peak_rss_gb']:.2f} | {pandas['rows']:,} | - |"
    )
    for name, seconds in floors.items():
        print(f"| floor: {name} (no join) | {seconds:.1f} | {seconds / base:.2f} | | | |")
    print(
        f"\n**parity sort / pandas merge_asof** (goal: at most 1.2): **{base / pandas['join_s']:.2f}**; "
        f"**textbook / parity sort** (goal: at least 1.5): **{results['textbook union + last']['seconds'] / base:.2f}**"
    )
    print(f"\nlabels without an earlier feature row (kept, with nulls): {without:,}")
    print(
        f"parity sort / pandas merge_asof: {base / pandas['join_s']:.2f}; naive / parity sort: "
        f"{results['naive range join']['seconds'] / base:.2f}; "
        f"textbook / parity sort: {results['textbook union + last']['seconds'] / base:.2f}; "
        f"broadcast / sort: {results['parity broadcast']['seconds'] / base:.2f}; "
        f"bitemporal table as of now / sort: {results['parity sort, bitemporal table as of now']['seconds'] / base:.2f}"
    )
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(agree.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
