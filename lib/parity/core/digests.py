"""Content digests: what identifies the rows of a table version, whatever its file layout.

A digest is `<rows>:<hex>`, the row count and the sum (mod 2^64) of a 64-bit hash of each row,
so it does not depend on row order or partitioning. It is one aggregation, which a caller that
aggregates the same frame anyway can fold into its own (`digest_aggregates`, `digest_of`).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F

ROWS, HASHES = "_digest_rows", "_digest_hashes"


def digest_aggregates(df: DataFrame) -> list[Column]:
    """The two aggregates a digest of `df` is made of (named `ROWS` and `HASHES`)."""
    # to_json drops null fields, so (a, NULL) and (NULL, a) hash differently; xxhash64 alone would not.
    row_hash = F.xxhash64(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])))
    return [F.count(F.lit(1)).alias(ROWS), F.sum(row_hash.cast("decimal(38,0)")).alias(HASHES)]


def digest_of(row: Row | None) -> str:
    """The digest from a row holding `digest_aggregates` (None: an aggregation of no rows)."""
    n, total = (0, 0) if row is None else (row[ROWS], row[HASHES] or 0)
    return f"{n}:{int(total) % (1 << 64):016x}"


def content_digest(df: DataFrame) -> str:
    """An order-independent digest of a frame's rows: row count plus the sum of 64-bit row hashes."""
    return digest_of(df.agg(*digest_aggregates(df)).first())


def digest_rows(digest: str) -> int | None:
    """The row count a content digest records (None if `digest` is not one)."""
    rows, _, hashes = digest.partition(":")
    return int(rows) if rows.isdigit() and hashes else None
