"""Batch scoring: keys and a time in, features recreated from the model's spec, predictions out.

The features are assembled by the same `assemble_features` that built the training set, from
the feature tables the spec names, and reach the model as they are: the model prepares its
own inputs (`parity.training.inputs`). A single-node model runs through MLflow's Arrow-backed
pandas UDF on the executors, a Spark ML model as a distributed transform.
"""

from __future__ import annotations

import datetime as dt

import mlflow
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from parity.core.columns import MODEL_NAME, MODEL_RUN_ID, MODEL_VERSION, PREDICTION, SCORE_TS
from parity.features.asof import FeatureLookup, Strategy, assemble_features
from parity.model.packaged import ALLOW_CODE_MISMATCH
from parity.model.spec import FeatureSpec, signature_types


def scoring_spine(population: DataFrame, *, columns: list[str], score_time: dt.datetime) -> DataFrame:
    """One row per distinct combination of `columns` (the model's keys and the columns its
    lookups map from), stamped with the scoring time.

    Needs: `columns`. Returns: `columns`, score_ts.
    """
    return population.select(*columns).distinct().withColumn(SCORE_TS, F.lit(score_time).cast("timestamp"))


def default_score_time(lookups: list[FeatureLookup]) -> dt.datetime:
    """The newest feature time of the first feature set: score as of the latest complete data.

    Raises:
        ValueError: the feature table is empty.
    """
    first = lookups[0]
    newest = first.frame.agg(F.max(first.feature_set.timestamp).alias("newest")).first()
    if newest is None or newest["newest"] is None:
        raise ValueError(f"{first.table} is empty: there is nothing to score as of")
    return newest["newest"]


def replace_predicate(score_time: dt.datetime) -> str:
    """The Delta replaceWhere that makes rescoring the same time replace, not duplicate, its rows."""
    return f"{SCORE_TS} = TIMESTAMP '{score_time.isoformat(sep=' ')}'"


def model_input_columns(spec: FeatureSpec) -> list[Column]:
    """The model's inputs as its signature types them (numeric double, categorical string)."""
    return _as_signature_types(spec, {c: F.col(c) for c in spec.inputs})


def _as_signature_types(spec: FeatureSpec, columns: dict[str, Column]) -> list[Column]:
    """Each caller column (signature name -> value) cast to its type in the model's signature,
    which MLflow's UDF enforces: how values travel, not how the model prepares them."""
    types = signature_types(spec)
    return [value.cast(types[name]).alias(name) for name, value in columns.items()]


def score(
    spark: SparkSession,
    spine: DataFrame,
    lookups: list[FeatureLookup],
    spec: FeatureSpec,
    *,
    model_uri: str,
    model_name: str,
    model_version: str,
    model_run_id: str,
    strategy: Strategy = "sort",
    allow_code_mismatch: bool = False,
) -> DataFrame:
    """Predictions for every spine row, with the model's identity on every row.

    A single-node model runs in MLflow's pandas UDF on the executors; a Spark ML model
    (`flavor: spark`) is loaded on the driver (a legacy one behind the input preparation, see
    `parity.model.packaged.with_input_preparation`) and transforms the assembled rows where they are.
    `prediction` is P(label = 1) for a binary model, the value for a regression one.

    Returns: the model's keys, score_ts, prediction, model_name, model_version, model_run_id.
    """
    assembled = assemble_features(spine, lookups, spine_ts=SCORE_TS, strategy=strategy)
    model_config = {ALLOW_CODE_MISMATCH: allow_code_mismatch}
    if spec.flavor == "spark":
        pipeline = mlflow.pyfunc.load_model(model_uri, model_config=model_config).unwrap_python_model().model
        prediction = vector_to_array(F.col("probability"))[1] if spec.task == "binary" else F.col("prediction").cast("double")
        assembled = pipeline.transform(assembled.select(*spec.key_columns, SCORE_TS, *spec.inputs)).withColumn(PREDICTION, prediction)
    else:
        predict = mlflow.pyfunc.spark_udf(spark, model_uri, result_type="double", env_manager="local", model_config=model_config)
        caller = {**{c: F.col(c) for c in spec.caller_columns}, spec.timestamp: F.col(SCORE_TS), **{c: F.col(c) for c in spec.inputs}}
        assembled = assembled.withColumn(PREDICTION, predict(F.struct(*_as_signature_types(spec, caller))))
    return assembled.select(
        *spec.key_columns,
        SCORE_TS,
        F.col(PREDICTION),
        F.lit(model_name).alias(MODEL_NAME),
        F.lit(model_version).alias(MODEL_VERSION),
        F.lit(model_run_id).alias(MODEL_RUN_ID),
    )
