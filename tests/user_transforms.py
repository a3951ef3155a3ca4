"""A user's own transform module, named by dotted path from a declaration in the tests."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def with_weekend_flag(df: DataFrame, *, ts_column: str, output: str) -> DataFrame:
    """1 for events on a Saturday or Sunday (UTC), else 0.

    Needs: `ts_column` (timestamp). Adds: `output` (int).
    """
    return df.withColumn(output, F.dayofweek(ts_column).isin(1, 7).cast("int"))
