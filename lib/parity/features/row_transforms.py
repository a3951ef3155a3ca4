"""Row-level transforms: each output row depends on its input row alone, so they read no
history. Declarations name them as `parity.transforms.<name>` (`parity.features.transforms`
re-exports them); see that module for what every transform promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from parity.features.pii import contains_pii, redact

# These transforms lived in parity.features.transforms when models recorded their code's text
# (the `text` digest scheme of parity.core.hashing): those records name them there.
TEXT_SCHEME_MODULE = "parity.features.transforms"
DAY = "day"


def with_alias(df: DataFrame, *, column: str, output: str) -> DataFrame:
    """A copy of a column under another name (e.g. a source's update time as the feature time).

    Needs: `column`. Adds: `output` (same type).
    """
    return df.withColumn(output, F.col(column))


def with_day(df: DataFrame, *, ts_column: str, output: str = DAY) -> DataFrame:
    """The UTC calendar day of a timestamp.

    Needs: `ts_column` (timestamp). Adds: `output` (date).
    """
    return df.withColumn(output, F.to_date(F.col(ts_column)))


def with_redacted_text(df: DataFrame, *, column: str, flag_column: str | None = None) -> DataFrame:
    """Redact emails and phone numbers in `column` in place.

    Needs: `column` (string). Adds: `flag_column` (boolean, true where PII was found), if given.
    """
    if flag_column is not None:
        df = df.withColumn(flag_column, F.coalesce(contains_pii(F.col(column)), F.lit(False)))
    return df.withColumn(column, redact(F.col(column)))


def with_text_features(df: DataFrame, *, column: str, prefix: str) -> DataFrame:
    """Simple features of free text, computed after its PII is redacted (the text is redacted in place).

    Needs: `column` (string). Adds: `{prefix}_has_contact` (int 1 where the text held an email or
    phone number, else 0), `{prefix}_length` (int, characters after redaction, 0 for null) and
    `{prefix}_words` (int, whitespace-separated words, 0 for null or blank).
    """
    text = F.col(column)
    redacted = redact(text)
    words = F.size(F.split(F.trim(redacted), r"\s+"))
    return df.select(
        *[F.col(c) for c in df.columns if c != column],
        redacted.alias(column),
        F.coalesce(contains_pii(text), F.lit(False)).cast("int").alias(f"{prefix}_has_contact"),
        F.coalesce(F.length(redacted), F.lit(0)).alias(f"{prefix}_length"),
        F.when(F.trim(redacted) != "", words).otherwise(0).alias(f"{prefix}_words"),
    )


def with_category_indicators(df: DataFrame, *, column: str, values: Sequence[str], prefix: str) -> DataFrame:
    """One 0/1 indicator per listed category value; windowed sums of them give category frequencies.

    Needs: `column`. Adds: `{prefix}_{value}` (int) for each value in `values`.
    """
    return df.select(
        "*", *[(F.col(column) == F.lit(value)).cast("int").alias(f"{prefix}_{value}") for value in values]
    ).fillna(0, subset=[f"{prefix}_{value}" for value in values])


def with_buckets(df: DataFrame, *, column: str, boundaries: Sequence[float], output: str) -> DataFrame:
    """The bucket a numeric value falls in: 0 below the first boundary, i for [b[i-1], b[i]), n at or above the last.

    Needs: `column` (numeric). Adds: `output` (int, null where `column` is null).
    """
    edges = list(boundaries)
    if not edges or edges != sorted(set(edges)):
        raise ValueError(f"with_buckets: boundaries must be strictly increasing, got {edges}")
    value = F.col(column)
    bucket: Column = F.lit(len(edges))
    for index in reversed(range(len(edges))):
        bucket = F.when(value < F.lit(edges[index]), F.lit(index)).otherwise(bucket)
    return df.withColumn(output, F.when(value.isNotNull(), bucket).cast("int"))


def with_ratio(df: DataFrame, *, numerator: str, denominator: str, output: str) -> DataFrame:
    """`numerator / denominator` as a double, null where the denominator is 0 or null.

    Needs: `numerator`, `denominator` (numeric). Adds: `output` (double).
    """
    ratio = F.when(F.col(denominator) != 0, F.col(numerator).cast("double") / F.col(denominator))
    return df.withColumn(output, ratio)


def with_time_since(
    df: DataFrame, *, as_of_column: str, column: str, output: str, unit: Literal["days", "hours"] = "days"
) -> DataFrame:
    """Time from `column` to `as_of_column` (recency, tenure), a request-time feature.

    Needs: `as_of_column`, `column` (timestamps). Adds: `output` (double, in `unit`; null if
    either time is null).
    """
    seconds = F.unix_micros(F.col(as_of_column)) - F.unix_micros(F.col(column))
    per_unit = 86_400e6 if unit == "days" else 3_600e6
    return df.withColumn(output, seconds.cast("double") / F.lit(per_unit))
