"""The Delta MERGE behind `Catalog.merge`: only what differs goes in, so reruns rewrite nothing.

One full outer join of the new data with the target on the keys classifies every key as new,
changed, unchanged, or gone from the scope. The source of the MERGE holds only the new and
changed rows, and tombstones for target rows in scope whose key the new data lacks. A rerun of the same
rows is then an empty MERGE that is never executed. (WHEN NOT MATCHED BY SOURCE would delete
in one clause, but makes Delta rewrite every file of the table.) When every key of the new data
is new (an incremental build's usual case: new periods only), the MERGE has its insert clause
only, which Delta runs as one anti join that rewrites no file, and still checks for conflicts
with concurrent writers.

For a versioned table (`parity.core.versioned`) the same source supersedes instead of
overwriting: a changed row's old version and a tombstoned row get `superseded_at`, and a
changed row's new version is inserted beside its old one (a copy of the source row that can
match nothing, the usual way to both update and insert for one key in one MERGE).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from delta.tables import DeltaMergeBuilder, DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from parity.core.versioned import LANDED_AT, SUPERSEDED_AT, now

_TOMBSTONE = "_parity_tombstone"
_INSERT_ONLY = "_parity_insert_only"
_NEW_KEY = "_parity_new_key"  # the source row is a key the target does not hold
# The session conf to run an `upsert` MERGE with: its source is a local checkpoint already, which
# Delta would otherwise copy once more before merging (its materializeSource "auto"). The cost:
# an executor lost with the checkpoint's blocks fails the MERGE, uncommitted, where Delta's copy
# could have let it retry.
CHECKPOINTED_SOURCE = {"spark.databricks.delta.merge.materializeSource": "none"}


@dataclass(frozen=True)
class MergeOptions:
    """How one MERGE upserts (see `Catalog.merge`): on `keys`, deleting the target rows in `scope`
    the new rows lack, superseding rather than overwriting when the table is `versioned`."""

    keys: list[str]
    scope: str | None = None
    versioned: bool = False


def upsert(
    spark: SparkSession, path: str, df: DataFrame, target: DataFrame, options: MergeOptions
) -> tuple[DeltaMergeBuilder, dt.datetime | None] | None:
    """The MERGE of `df` into the Delta table at `path`, or None when nothing differs.

    `target` is the table as the rows are compared with (aliased `t`; for a versioned table,
    its current rows only). With a `scope`, target rows in scope whose key `df` lacks are
    deleted (superseded, when the table is `versioned`). For a versioned table the landing
    time is taken once the rows to merge are computed, and returned with the MERGE.
    """
    keys, scope, versioned = options.keys, options.scope, options.versioned
    # One full outer join on the keys classifies every key: new, changed, unchanged, or gone
    # from the scope; `df` is computed once, in it.
    current = target.filter(F.expr(scope)) if scope else target
    position = {c: i for i, c in enumerate(df.columns)}
    theirs = current.select(
        *[F.col(f"`{c}`").alias(f"_parity_t{i}") for c, i in position.items()],
        F.lit(True).alias("_parity_held"),
    )
    ours = df.withColumn("_parity_new", F.lit(True))
    joined = ours.join(
        theirs, [ours[f"`{k}`"].eqNullSafe(theirs[f"_parity_t{position[k]}"]) for k in keys], "full_outer"
    )
    new, held = F.col("_parity_new").isNotNull(), F.col("_parity_held").isNotNull()
    differs = F.lit(False)
    for c, i in position.items():
        differs |= ~F.col(f"`{c}`").eqNullSafe(F.col(f"_parity_t{i}"))
    changed, gone = (
        new & held & differs,
        held & ~new & F.lit(bool(scope)),
    )  # without a scope nothing is deleted

    def flag(tombstone: bool, insert_only: bool) -> Column:
        return F.struct(F.lit(tombstone).alias("t"), F.lit(insert_only).alias("i"))

    flags = (  # (tombstone, insert only) per source row; a versioned change also inserts its new version
        F.when(changed & F.lit(versioned), F.array(flag(False, False), flag(False, True)))
        .when(gone, F.array(flag(True, False)))
        .otherwise(F.array(flag(False, False)))
    )
    source = (
        joined.filter((new & ~held) | changed | gone)
        .select(
            *[
                F.when(new, F.col(f"`{c}`")).otherwise(F.col(f"_parity_t{i}")).alias(c)
                for c, i in position.items()
            ],
            (new & ~held).alias(_NEW_KEY),
            F.explode(flags).alias("_f"),
        )
        .select(
            *[F.col(f"`{c}`") for c in position],
            F.col("_f.t").alias(_TOMBSTONE),
            F.col("_f.i").alias(_INSERT_ONLY),
            _NEW_KEY,
        )
    )
    source = source.localCheckpoint()
    tally = source.agg(
        F.count(F.lit(1)).alias("rows"), F.count_if(~F.col(_NEW_KEY)).alias("old_keys")
    ).first()
    if tally is None or tally["rows"] == 0:
        return None
    on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys) + f" AND NOT s.{_INSERT_ONLY}"
    if scope:
        on += f" AND ({scope})"
    values: dict[str, str | Column] = {f"`{c}`": f"s.`{c}`" for c in df.columns}
    table = DeltaTable.forPath(spark, path).alias("t")
    inserts_only = tally["old_keys"] == 0  # no row to update, supersede or delete: Delta's insert-only MERGE
    if not versioned:
        merge = table.merge(source.alias("s"), on)
        if not inserts_only:
            merge = merge.whenMatchedDelete(condition=f"s.{_TOMBSTONE}").whenMatchedUpdate(
                condition=f"NOT s.{_TOMBSTONE}", set=values
            )
        return merge.whenNotMatchedInsert(condition=f"NOT s.{_TOMBSTONE}", values=values), None
    landed_at = now()  # the rows to merge are computed (checkpointed): what remains is the MERGE's own write
    at = F.lit(landed_at).cast("timestamp")
    merge = table.merge(source.alias("s"), f"{on} AND t.`{SUPERSEDED_AT}` IS NULL")
    if not inserts_only:
        merge = merge.whenMatchedUpdate(set={f"`{SUPERSEDED_AT}`": at})
    merge = merge.whenNotMatchedInsert(
        condition=f"NOT s.{_TOMBSTONE}",
        values={**values, f"`{LANDED_AT}`": at, f"`{SUPERSEDED_AT}`": F.lit(None).cast("timestamp")},
    )
    return merge, landed_at
