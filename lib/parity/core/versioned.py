"""Versioned (bitemporal) tables: every row carries when it landed, and when it was superseded.

Feature tables are versioned. A row's values are never overwritten: when a MERGE changes them,
the row it held gets `superseded_at` and the new values land as a new row with `landed_at`
(both the time the write stamps once the new rows are computed, recorded in the commit's
metadata under `parity.landed_at`; it precedes the commit by the time the write itself
takes). A row whose key leaves the MERGE's scope is superseded with no successor. Rows whose
values did not change are not rewritten. So the table holds, in its live files, every version
of every row with the time it landed: as-known-at joins read that, and VACUUM or Delta's log
cleanup cannot take it away.

- The table as of now: the rows whose `superseded_at` is null (`current_rows`).
- The table as known at time t: the rows with `landed_at <= t`, the newest landed version of
  a row winning. A row superseded with no successor (removed by a later build, after a
  source correction) stays known to as-known-at joins after its removal, until a newer row
  of its entity supersedes it in feature time; as-of-now reads never see it.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

LANDED_AT = "landed_at"  # when this version of the row landed
SUPERSEDED_AT = "superseded_at"  # when a newer version (or a deletion) replaced it; null while current
VERSION_COLUMNS = (LANDED_AT, SUPERSEDED_AT)
LANDED_AT_KEY = "parity.landed_at"  # in the commit metadata: when the commit's rows landed


def is_versioned(df: DataFrame) -> bool:
    """Whether a table's rows carry their landing and superseding times."""
    return all(c in df.columns for c in VERSION_COLUMNS)


def current_rows(df: DataFrame) -> DataFrame:
    """The rows of a versioned table as of now, without the version columns (a table that is
    not versioned is returned as it is)."""
    if not is_versioned(df):
        return df
    return df.filter(F.col(SUPERSEDED_AT).isNull()).drop(*VERSION_COLUMNS)


def now() -> dt.datetime:
    """The landing time of rows written now: naive UTC, as parity holds times."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def proven_rows(previous: DataFrame, history: DataFrame | None = None) -> DataFrame | None:
    """The current rows of a table about to be replaced, each with the time it landed, where
    that is proven: a versioned table's own `landed_at`; for a table of the older layout, the
    newest commit time at which its change data feed (`history`, with `landed_at`) wrote those
    very values. None when nothing is proven (an older table without a change data feed)."""
    if is_versioned(previous):
        return previous.filter(F.col(SUPERSEDED_AT).isNull()).drop(SUPERSEDED_AT)
    if history is None:
        return None
    columns = previous.columns
    written = history.groupBy(*[F.col(f"`{c}`").alias(f"_h{i}") for i, c in enumerate(columns)]).agg(
        F.max(LANDED_AT).alias(LANDED_AT)
    )
    same = F.lit(True)
    for i, c in enumerate(columns):
        same &= previous[f"`{c}`"].eqNullSafe(written[f"_h{i}"])
    return previous.join(written, same, "left").select(*[previous[f"`{c}`"] for c in columns], LANDED_AT)


def with_proven_landing(df: DataFrame, proven: DataFrame | None) -> DataFrame:
    """`df`, about to replace a table, with the landing time `proven` holds for each row equal
    in every column to one of its rows (null for any other row: it lands with the write), and
    a null `superseded_at`. When `proven` lacks a column of `df`, or holds it with another
    type, nothing is proven.
    """
    columns = df.columns
    if proven is None or not _same_types(df, proven, columns):
        return df.select(
            *[F.col(f"`{c}`") for c in columns],
            F.lit(None).cast("timestamp").alias(LANDED_AT),
            F.lit(None).cast("timestamp").alias(SUPERSEDED_AT),
        )
    known = proven.groupBy(*[F.col(f"`{c}`").alias(f"_p{i}") for i, c in enumerate(columns)]).agg(
        F.min(LANDED_AT).alias("_landed")  # the earliest landing of identical rows
    )
    same = F.lit(True)
    for i, c in enumerate(columns):
        same &= df[f"`{c}`"].eqNullSafe(known[f"_p{i}"])
    return df.join(known, same, "left").select(
        *[df[f"`{c}`"] for c in columns],
        F.col("_landed").alias(LANDED_AT),
        F.lit(None).cast("timestamp").alias(SUPERSEDED_AT),
    )


def _same_types(df: DataFrame, previous: DataFrame, columns: list[str]) -> bool:
    before = dict(previous.dtypes)
    return all(before.get(name) == kind for name, kind in df.dtypes if name in columns)
