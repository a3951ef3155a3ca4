"""Versioned (bitemporal) tables: every row carries when it landed, and when it was superseded.

Feature tables are versioned. A row's values are never overwritten: when a MERGE changes them,
the row it held gets `superseded_at` and the new values land as a new row with `landed_at`
(both the time the writing job stamped them, just before its commit). A row whose key leaves
the MERGE's scope is superseded with no successor. Rows whose values did not change are not
rewritten. So the table holds, in its live files, every version of every row with the time
it landed: as-known-at joins read that, and VACUUM or Delta's log cleanup cannot take it away.

- The table as of now: the rows whose `superseded_at` is null (`current_rows`).
- The table as known at time t: the rows with `landed_at <= t` (the newest landed version of
  a row wins; a row superseded with no successor stays known, as it was until then).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

LANDED_AT = "landed_at"  # when this version of the row landed
SUPERSEDED_AT = "superseded_at"  # when a newer version (or a deletion) replaced it; null while current
VERSION_COLUMNS = (LANDED_AT, SUPERSEDED_AT)


def is_versioned(df: DataFrame) -> bool:
    """Whether a table's rows carry their landing and superseding times."""
    return all(c in df.columns for c in VERSION_COLUMNS)


def current_rows(df: DataFrame) -> DataFrame:
    """The rows of a versioned table as of now, without the version columns (a table that is
    not versioned is returned as it is)."""
    if not is_versioned(df):
        return df
    return df.filter(F.col(SUPERSEDED_AT).isNull()).drop(*VERSION_COLUMNS)


def landing(at: dt.datetime) -> list[Column]:
    """The version columns of rows landing at `at`: `landed_at`, and a null `superseded_at`."""
    return [F.lit(at).cast("timestamp").alias(LANDED_AT), F.lit(None).cast("timestamp").alias(SUPERSEDED_AT)]


def with_landing_times(df: DataFrame, previous: DataFrame | None, at: dt.datetime) -> DataFrame:
    """`df` as the whole of a versioned table written at `at` (a first build or a full refresh).

    A row equal in every column to a current row of `previous` (the table being replaced)
    keeps that row's landing time, which the table proves; any other row lands at `at`. When
    `previous` is not versioned, or lacks a column of `df` or holds it with another type, no
    landing time can be proved and every row lands at `at`.
    """
    columns = df.columns
    if previous is None or not is_versioned(previous) or not _same_types(df, previous, columns):
        return df.select(*[F.col(f"`{c}`") for c in columns], *landing(at))
    known = (
        previous.filter(F.col(SUPERSEDED_AT).isNull())
        .groupBy(*[F.col(f"`{c}`").alias(f"_p{i}") for i, c in enumerate(columns)])
        .agg(F.min(LANDED_AT).alias("_landed"))  # the earliest landing of identical rows
    )
    same = F.lit(True)
    for i, c in enumerate(columns):
        same &= df[f"`{c}`"].eqNullSafe(known[f"_p{i}"])
    joined = df.join(known, same, "left")
    return joined.select(
        *[df[f"`{c}`"] for c in columns],
        F.coalesce(F.col("_landed"), F.lit(at).cast("timestamp")).alias(LANDED_AT),
        F.lit(None).cast("timestamp").alias(SUPERSEDED_AT),
    )


def _same_types(df: DataFrame, previous: DataFrame, columns: list[str]) -> bool:
    before = dict(previous.dtypes)
    return all(before.get(name) == kind for name, kind in df.dtypes if name in columns)
