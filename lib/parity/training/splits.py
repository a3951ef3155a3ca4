"""Training data: the model's input columns and labels, and the time split that validates on later labels.

The input columns keep the types the training set gives them: the fitted pipeline prepares
them (the model-input contract, `inputs`). Learners and how they fit live in `learners`, the
sweep engine in `sweep`. Features come from the past, so validation is never a random split:
the latest label times validate, and every training label is earlier than every validation label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from parity.core.conf import ModelDecl


@dataclass(frozen=True)
class LabelledColumns:
    """Where a training set keeps its label time, label, label-available-at and model inputs."""

    label_time: str
    label: str
    available_at: str | None
    numeric: list[str]
    categorical: list[str]

    @classmethod
    def of(cls, model: ModelDecl, numeric: list[str], categorical: list[str]) -> LabelledColumns:
        """Where a declared model's training set keeps them (its labels' declared columns)."""
        labels = model.labels
        return cls(labels.time, labels.label.name, labels.available_at, numeric, categorical)


@dataclass
class TrainingData:
    """Input columns (as the training set types them) and labels, split by time: every validation
    label is later than every training label."""

    x_train: pd.DataFrame
    y_train: np.ndarray
    x_valid: pd.DataFrame
    y_valid: np.ndarray
    numeric: list[str]
    categorical: list[str]
    cutoff: pd.Timestamp
    unknown_at_cutoff: int = 0


def split_cutoff(times: Any, validation_fraction: float, *, ts_column: str) -> pd.Timestamp:
    """The first validation time: the latest `validation_fraction` of distinct label times validate.

    Raises:
        ValueError: fewer than two distinct times.
    """
    distinct = np.sort(pd.to_datetime(pd.Series(times), utc=True).unique())
    if len(distinct) < 2:
        raise ValueError(
            f"a time split needs at least two distinct {ts_column} values, found {len(distinct)}"
        )
    cutoff_index = min(len(distinct) - 1, max(1, round(len(distinct) * (1 - validation_fraction))))
    return pd.Timestamp(distinct[cutoff_index])


def time_split(
    frame: pd.DataFrame, columns: LabelledColumns, *, validation_fraction: float, task: str = "binary"
) -> TrainingData:
    """Split labelled rows by time: the latest `validation_fraction` of label times validate.

    All rows at the cutoff time go to validation, so no timestamp straddles the split. With
    `columns.available_at` (when each label's outcome became known), training also leaves out
    labels whose outcome was not yet known at the cutoff: they would teach the model about
    the validation period.

    A binary label is read as 0/1 integers, a regression label (`task="regression"`) as floats.

    Raises:
        ValueError: the split leaves one side empty, or (binary) with a single class.
    """
    ts_column, label_column, available_column = columns.label_time, columns.label, columns.available_at
    numeric, categorical = columns.numeric, columns.categorical
    times = pd.to_datetime(frame[ts_column], utc=True)
    cutoff = split_cutoff(times.unique(), validation_fraction, ts_column=ts_column)
    is_valid = (times >= cutoff).to_numpy()
    is_train = ~is_valid
    if available_column is not None:
        is_train &= (pd.to_datetime(frame[available_column], utc=True) <= cutoff).to_numpy()
    y = frame[label_column].to_numpy(dtype="int64" if task == "binary" else "float64")
    x = frame[[*numeric, *categorical]]
    unknown = int((~is_valid & ~is_train).sum())
    data = TrainingData(
        x[is_train], y[is_train], x[is_valid], y[is_valid], numeric, categorical, cutoff, unknown
    )
    for side, labels in (("training", data.y_train), ("validation", data.y_valid)):
        if len(labels) == 0 or (task == "binary" and len(np.unique(labels)) < 2):
            raise ValueError(
                f"the {side} split has {len(labels)} rows"
                + (" and fewer than two classes" if task == "binary" else "")
            )
    return data


@dataclass
class SparkTrainingData:
    """The time split of a Spark DataFrame, for distributed learners: train and valid stay on the cluster."""

    train: DataFrame
    valid: DataFrame
    numeric: list[str]
    categorical: list[str]
    cutoff: pd.Timestamp
    rows_train: int
    rows_valid: int
    unknown_at_cutoff: int = 0


def spark_time_split(
    frame: DataFrame, columns: LabelledColumns, *, validation_fraction: float, task: str = "binary"
) -> SparkTrainingData:
    """`time_split` on a Spark DataFrame: the same cutoff rule, with the data left distributed.

    Both sides keep the model inputs and `label` (the label as a double), and are cached.

    Raises:
        ValueError: the split leaves one side empty or with a single class.
    """
    ts_column, label_column, available_column = columns.label_time, columns.label, columns.available_at
    numeric, categorical = columns.numeric, columns.categorical
    times = [row[0] for row in frame.select(ts_column).distinct().collect()]
    cutoff = split_cutoff(times, validation_fraction, ts_column=ts_column)
    at = F.lit(cutoff.to_pydatetime())
    is_valid = F.col(ts_column) >= at
    is_train = F.col(ts_column) < at
    if available_column is not None:
        is_train &= F.col(available_column) <= at
    selected = [*map(F.col, [*numeric, *categorical]), F.col(label_column).cast("double").alias("label")]
    train = frame.filter(is_train).select(*selected).cache()
    valid = frame.filter(is_valid).select(*selected).cache()
    counts = {}
    for side, part in (("training", train), ("validation", valid)):
        if task == "binary":
            per_class = {row[0]: row[1] for row in part.groupBy("label").count().collect()}
            if len(per_class) < 2:
                raise ValueError(
                    f"the {side} split has {sum(per_class.values())} rows and fewer than two classes"
                )
            counts[side] = sum(per_class.values())
        else:
            counts[side] = part.count()
            if counts[side] == 0:
                raise ValueError(f"the {side} split has 0 rows")
    unknown = frame.filter(~is_valid & ~is_train).count() if available_column is not None else 0
    return SparkTrainingData(
        train, valid, numeric, categorical, cutoff, counts["training"], counts["validation"], unknown
    )
