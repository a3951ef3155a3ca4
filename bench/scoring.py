"""Batch scoring at scale: parity's predictor against MLflow's spark_udf and against the model's
own limit, in one run.

A HistGradientBoosting classifier (parity's sklearn pipeline: input preparation, imputation and
scaling, the estimator) is fitted on 200k rows of F numeric features and packaged as parity
packages every model. Then:

1. **Predict throughput** on materialized model inputs (default 5M rows x 20 features, written
   to Parquet, read back and cached in memory, 8 partitions), each answer summed so that
   the methods can be compared:
   - parity's predictor (`parity.scoring.batch.predict_rows`);
   - `mlflow.pyfunc.spark_udf` on the same model and rows (`predictor="spark_udf"`);
   - the limit: the fitted pipeline's own `predict_proba` on one pandas frame of 1M of the
     same rows, in one process with OMP_NUM_THREADS=1, times the cores Spark uses.
   Goal (issue 12): parity at least 0.7 of the limit, and at least 1.8x spark_udf.
2. **End to end**: E entities (default 1M) scored as of one time, their features joined as of
   it from a Delta feature table (5 rows per entity), predicted, stamped with lineage and
   written as one slice of a Delta predictions table: parity's predictor, then the same
   pipeline with spark_udf in its place.
Every Spark method runs once whole first, untimed, to warm the JVM and the Python workers
(each worker starts and loads the model in that run), then once timed.

    .venv/bin/python bench/scoring.py --rows 5000000 --entities 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCORE_TIME = dt.datetime(2026, 6, 1)

LIMIT_SCRIPT = """
import json, sys, time
import pandas as pd, skops.io
sys.path.insert(0, sys.argv[4])
from parity.model.packaged import SKOPS_TRUSTED_TYPES
model = skops.io.load(sys.argv[1], trusted=SKOPS_TRUSTED_TYPES)
frame = pd.read_parquet(sys.argv[2]).head(int(sys.argv[3]))
model.predict_proba(frame.head(10_000))
started = time.perf_counter()
predicted = model.predict_proba(frame)[:, 1]
seconds = time.perf_counter() - started
print(json.dumps({"rows": len(frame), "seconds": seconds, "rows_per_s": len(frame) / seconds,
                  "sum": float(predicted.sum())}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000, help="rows of materialized model inputs")
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--entities", type=int, default=1_000_000, help="entities scored end to end")
    parser.add_argument(
        "--limit-rows", type=int, default=1_000_000, help="rows of the one-process limit's frame"
    )
    parser.add_argument("--driver-memory", default="6g")
    args = parser.parse_args(argv)

    import mlflow
    import numpy as np
    import pandas as pd
    import skops.io
    from pyspark.sql import functions as F

    from parity.core.catalog import Catalog
    from parity.core.conf import FeatureSetDecl, load_settings
    from parity.core.session import get_spark
    from parity.features.asof import FeatureLookup
    from parity.governance import configure_mlflow
    from parity.model import FeatureSpec, log_packaged_model
    from parity.scoring import batch
    from parity.training.inputs import INPUT_CONTRACT
    from parity.training.learners import build_pipeline, get_learner

    work = Path(tempfile.mkdtemp(prefix="parity-bench-scoring-"))
    settings = load_settings(
        REPO / "conf",
        overrides=[
            f"storage.root={work}/data",
            f"mlflow.tracking_uri=sqlite:///{work}/mlflow.db",
            f"mlflow.artifact_root={work}/mlartifacts",
            "spark.master=local[2]",
            f"spark.conf.spark.driver.memory={args.driver_memory}",
            "spark.conf.spark.sql.shuffle.partitions=8",
        ],
    )
    spark = get_spark(settings)
    cores = spark.sparkContext.defaultParallelism
    columns = [f"f{i}" for i in range(args.features)]
    try:
        # The model: parity's sklearn pipeline, fitted on 200k rows, packaged and registered.
        rng = np.random.default_rng(0)
        x = pd.DataFrame(rng.normal(size=(200_000, args.features)), columns=columns)
        y = (x["f0"] + x["f1"] * x["f2"] - x["f3"].abs() + rng.normal(size=len(x)) > 0).astype(int)
        params = {
            "learning_rate": 0.1,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 0.0,
            "max_iter": 100,
        }
        fitted = build_pipeline(
            get_learner("sklearn.hist_gradient_boosting"), params, columns, [], seed=1
        ).fit(x, y)
        spec = FeatureSpec(
            entity="entity_id",
            timestamp="score_ts",
            feature_sets=[],
            request_time=[],
            numeric=columns,
            categorical=[],
            code_hash="",
            input_contract=INPUT_CONTRACT,
            keys=["entity_id"],
            columns={"entity_id": "bigint"},
        )
        example = x.head(3).assign(entity_id=[1, 2, 3], score_ts=pd.Timestamp(SCORE_TIME))
        with mlflow.start_run(experiment_id=configure_mlflow(settings)):
            info = log_packaged_model(fitted, spec, example, registered_model="bench_scoring")
        uri = f"models:/bench_scoring/{info.registered_model_version}"
        skops.io.dump(fitted, work / "model.skops")

        # 1. Predict throughput on materialized inputs.
        values = [
            (F.pmod(F.xxhash64("id", F.lit(i)), F.lit(2_000_000)) / 1_000_000.0 - 1.0).alias(c)
            for i, c in enumerate(columns)
        ]
        spark.range(args.rows).select(
            F.col("id").alias("entity_id"), F.lit(SCORE_TIME).alias("score_ts"), *values
        ).write.parquet(str(work / "inputs"))
        inputs = spark.read.parquet(str(work / "inputs")).repartition(8).cache()
        print(f"{inputs.count():,} rows x {len(columns)} features materialized; {cores} cores", flush=True)
        model = batch.load_model(uri)

        def predict(predictor: str, rows):  # type: ignore[no-untyped-def]
            options = batch.ScoringOptions(predictor=predictor, fitted=model)  # type: ignore[arg-type]
            predicted = batch.predict_rows(spark, rows, spec, model_uri=uri, options=options)
            started = time.perf_counter()
            total = predicted.agg(F.sum("prediction").alias("s"), F.count("*").alias("n")).first()
            return time.perf_counter() - started, float(total["s"]), int(total["n"])

        results: dict[str, dict[str, float]] = {}
        for predictor in ("parity", "spark_udf"):
            predict(predictor, inputs)  # warm-up: every Python worker started, the model loaded in each
            seconds, total, rows = predict(predictor, inputs)
            results[predictor] = {"seconds": seconds, "rows_per_s": rows / seconds, "sum": total}
            print(
                f"  {predictor:<10} {seconds:7.1f} s  {rows / seconds:>12,.0f} rows/s  (sum {total:.4f})",
                flush=True,
            )
        inputs.limit(args.limit_rows).toPandas()[columns].to_parquet(work / "limit.parquet")
        limit = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    LIMIT_SCRIPT,
                    str(work / "model.skops"),
                    str(work / "limit.parquet"),
                    str(args.limit_rows),
                    str(REPO / "lib"),
                ],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            ).stdout
        )
        ceiling = limit["rows_per_s"] * cores
        print(
            f"  limit      one process, one thread: {limit['rows_per_s']:,.0f} rows/s; x {cores} cores = "
            f"{ceiling:,.0f} rows/s",
            flush=True,
        )
        agree = abs(results["parity"]["sum"] - results["spark_udf"]["sum"]) <= 1e-6 * max(
            1.0, abs(results["spark_udf"]["sum"])
        )
        predict_summary = {
            "rows": args.rows,
            "features": args.features,
            "cores": cores,
            "parity_rows_per_s": round(results["parity"]["rows_per_s"]),
            "spark_udf_rows_per_s": round(results["spark_udf"]["rows_per_s"]),
            "limit_rows_per_s": round(ceiling),
            "parity_vs_limit": round(results["parity"]["rows_per_s"] / ceiling, 3),
            "parity_vs_spark_udf": round(
                results["parity"]["rows_per_s"] / results["spark_udf"]["rows_per_s"], 3
            ),
            "answers_agree": agree,
        }
        inputs.unpersist()

        # 2. End to end: features as of the score time, predict, a Delta slice with lineage.
        per_entity = 5
        spark.range(args.entities * per_entity).select(
            (F.col("id") % args.entities).alias("entity_id"),
            (
                F.lit(SCORE_TIME) - F.make_dt_interval(days=(F.col("id") / args.entities).cast("int") * 7 + 1)
            ).alias("feature_ts"),
            *values,
        ).write.format("delta").save(str(work / "features"))
        decl = FeatureSetDecl.model_validate(
            {
                "name": "bench",
                "description": "bench",
                "table": "features.bench",
                "source": "raw.x",
                "entity": ["entity_id"],
                "event_time": "feature_ts",
                "transforms": [
                    {
                        "fn": "parity.transforms.with_alias",
                        "params": {"column": "feature_ts", "output": "feature_ts"},
                    }
                ],
                "features": [{"name": c, "type": "double", "description": "bench"} for c in columns],
            }
        )
        lookups = [FeatureLookup(decl, 0, spark.read.format("delta").load(str(work / "features")))]
        catalog = Catalog(spark, settings)

        def end_to_end(predictor: str, entities: int, table: str) -> tuple[float, int]:
            spine = spark.range(entities).select(
                F.col("id").alias("entity_id"), F.lit(SCORE_TIME).alias("score_ts")
            )
            started = time.perf_counter()
            scored = batch.score(
                spark,
                spine,
                lookups,
                spec,
                model=batch.ScoredModel(uri, "bench_scoring", version="1", run_id="bench"),
                options=batch.ScoringOptions(predictor=predictor, fitted=model),  # type: ignore[arg-type]
            )
            stamped = batch.with_lineage(
                scored,
                model_name="bench_scoring",
                model_version="1",
                model_run_id="bench",
                scoring_run_id=predictor,
            )
            rows = batch.write_slice(
                catalog, stamped, table, model_name="bench_scoring", model_version="1", score_time=SCORE_TIME
            )
            return time.perf_counter() - started, rows

        ends: dict[str, float] = {}
        for predictor in ("parity", "spark_udf"):
            end_to_end(predictor, args.entities, f"predictions.warm_{predictor}")
            seconds, rows = end_to_end(predictor, args.entities, f"predictions.{predictor}")
            ends[predictor] = args.entities / seconds
            print(
                f"  end to end {predictor:<10} {seconds:7.1f} s  {args.entities / seconds:>10,.0f} "
                f"entities/s  ({rows:,} rows written)",
                flush=True,
            )
        same = (
            catalog.read("predictions.parity")
            .select("entity_id", "prediction")
            .exceptAll(catalog.read("predictions.spark_udf").select("entity_id", "prediction"))
            .count()
            == 0
        )
        summary = {
            "predict": predict_summary,
            "end_to_end": {
                "entities": args.entities,
                "parity_per_s": round(ends["parity"]),
                "spark_udf_per_s": round(ends["spark_udf"]),
                "parity_vs_spark_udf": round(ends["parity"] / ends["spark_udf"], 3),
                "answers_equal": same,
            },
        }
        print(json.dumps(summary, indent=2))
        return 0
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
