"""The Delta MERGE behind `Catalog.merge`: only what differs goes in, so reruns rewrite nothing.

The source of the MERGE holds only rows of the new data that the target does not hold as they
are, and tombstones for target rows in scope whose key the new data lacks. A rerun of the same
rows is then an empty MERGE that is never executed. (WHEN NOT MATCHED BY SOURCE would delete
in one clause, but makes Delta rewrite every file of the table.)

For a versioned table (`parity.core.versioned`) the same source supersedes instead of
overwriting: a changed row's old version and a tombstoned row get `superseded_at`, and a
changed row's new version is inserted beside its old one (a copy of the source row that can
match nothing, the usual way to both update and insert for one key in one MERGE).
"""

from __future__ import annotations

import datetime as dt

from delta.tables import DeltaMergeBuilder, DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from parity.core.versioned import LANDED_AT, SUPERSEDED_AT, now

_TOMBSTONE = "_parity_tombstone"
_INSERT_ONLY = "_parity_insert_only"


def same_rows(left: DataFrame, right: DataFrame, columns: list[str]) -> Column:
    """Null-safe equality of `left` and `right` on every one of `columns`."""
    condition = F.lit(True)
    for c in columns:
        condition &= left[f"`{c}`"].eqNullSafe(right[f"`{c}`"])
    return condition


def upsert(
    spark: SparkSession,
    path: str,
    df: DataFrame,
    target: DataFrame,
    *,
    keys: list[str],
    scope: str | None,
    versioned: bool,
) -> tuple[DeltaMergeBuilder, dt.datetime | None] | None:
    """The MERGE of `df` into the Delta table at `path`, or None when nothing differs.

    `target` is the table as the rows are compared with (aliased `t`; for a versioned table,
    its current rows only). With a `scope`, target rows in scope whose key `df` lacks are
    deleted (superseded, when the table is `versioned`). For a versioned table the landing
    time is taken once the rows to merge are computed, and returned with the MERGE.
    """
    df = df.localCheckpoint()  # computed once, however often the comparisons below read it
    current = target.filter(F.expr(scope)) if scope else target
    current = current.select(*[F.col(f"`{c}`") for c in df.columns])
    fresh = df.join(current, same_rows(df, current, df.columns), "left_anti")
    source = fresh.withColumn(_TOMBSTONE, F.lit(False)).withColumn(_INSERT_ONLY, F.lit(False))
    if versioned:  # a changed row's new version, inserted beside the old one it supersedes
        held = current.select(*[F.col(f"`{k}`").alias(f"_held{i}") for i, k in enumerate(keys)])
        replacing = fresh.join(held, [fresh[f"`{k}`"].eqNullSafe(held[f"_held{i}"]) for i, k in enumerate(keys)], "left_semi")
        source = source.unionByName(replacing.withColumn(_TOMBSTONE, F.lit(False)).withColumn(_INSERT_ONLY, F.lit(True)))
    if scope:
        wanted = df.select(*[F.col(f"`{k}`").alias(f"_key{i}") for i, k in enumerate(keys)])
        matches = [current[f"`{k}`"].eqNullSafe(wanted[f"_key{i}"]) for i, k in enumerate(keys)]
        gone = current.join(wanted, matches, "left_anti")
        source = source.unionByName(gone.withColumn(_TOMBSTONE, F.lit(True)).withColumn(_INSERT_ONLY, F.lit(False)))
    source = source.localCheckpoint()
    if source.isEmpty():
        return None
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys) + f" AND NOT s.{_INSERT_ONLY}"
    if scope:
        on += f" AND ({scope})"
    values: dict[str, str | Column] = {f"`{c}`": f"s.`{c}`" for c in df.columns}
    table = DeltaTable.forPath(spark, path).alias("t")
    if not versioned:
        merge = (
            table.merge(source.alias("s"), on)
            .whenMatchedDelete(condition=f"s.{_TOMBSTONE}")
            .whenMatchedUpdate(condition=f"NOT s.{_TOMBSTONE}", set=values)
            .whenNotMatchedInsert(condition=f"NOT s.{_TOMBSTONE}", values=values)
        )
        return merge, None
    landed_at = now()  # the rows to merge are computed (checkpointed): what remains is the MERGE's own write
    at = F.lit(landed_at).cast("timestamp")
    merge = (
        table.merge(source.alias("s"), f"{on} AND t.`{SUPERSEDED_AT}` IS NULL")
        .whenMatchedUpdate(set={f"`{SUPERSEDED_AT}`": at})
        .whenNotMatchedInsert(
            condition=f"NOT s.{_TOMBSTONE}", values={**values, f"`{LANDED_AT}`": at, f"`{SUPERSEDED_AT}`": F.lit(None).cast("timestamp")}
        )
    )
    return merge, landed_at
