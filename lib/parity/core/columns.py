"""The platform's own column names (the scoring time, predictions and quarantine), and schemas
from declared types. A model's keys, times and label come from its declaration, never from
here; the demo's names live in `parity.demo.columns`."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import types as T

FEATURE_TS = "feature_ts"  # a feature set's default timestamp column
FEATURE_DATE = "feature_date"  # the partition column of every feature table
SCORE_TS = "score_ts"
SCORE_DATE = "score_date"  # the partition column of every predictions table

# predictions and quarantine
PREDICTION = "prediction"
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
MODEL_RUN_ID = "model_run_id"  # the training run that produced the model version
SCORING_RUN_ID = "scoring_run_id"  # the job run that wrote the prediction
QUARANTINE_RULE = "quarantine_rule"
QUARANTINE_REASON = "quarantine_reason"


def struct_of(columns: Mapping[str, str]) -> T.StructType:
    """A schema from column name -> Spark type name (`bigint`, `timestamp`, ... as conf declares them)."""
    return T.StructType(
        [T.StructField(name, T.DataType.fromDDL(type_name), True) for name, type_name in columns.items()]
    )
