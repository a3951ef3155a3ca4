"""Snapshot feature sets: sources without an event time (product catalogues, store addresses).

Each build computes every entity's attributes from the whole source and stamps them with the
build's time. It writes a row only for an entity whose values differ from its newest row in
the table, or that the table has not seen: a label then sees the attributes as they were known
at its time, never later ones, and a rebuild over an unchanged source commits nothing. An
entity that leaves the source keeps its last row. The first build knows nothing earlier than
itself, so labels before it get nulls, unless the user vouches for the values with
`--assume-valid-since DAY`, which stamps the first build's rows (their feature time) at that
day's midnight; their landing time stays the build's, so as-known-at joins are not misled.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from parity.core.conf import FeatureSetDecl, SourceQualityConf, UniqueExpectation


def snapshot_quality(decl: FeatureSetDecl, conf: SourceQualityConf) -> SourceQualityConf:
    """The source's quality conf with one row per entity required: a second row of an entity in
    one snapshot goes to quarantine (under `unique:<keys>`) rather than make two current values."""
    if any(
        isinstance(e, UniqueExpectation) and sorted(e.columns) == sorted(decl.entity)
        for e in conf.expectations
    ):
        return conf
    unique = UniqueExpectation(rule="unique", columns=list(decl.entity))
    return conf.model_copy(update={"expectations": [*conf.expectations, unique]})


def changed_rows(decl: FeatureSetDecl, computed: DataFrame, table: DataFrame) -> DataFrame:
    """The rows of a snapshot (`computed`, stamped) whose entity's newest row in `table` (the
    feature table's current rows) holds other values, or which the table has no row for.

    Needs: the entity keys, the timestamp and the features in both. Returns `computed`'s columns.
    """
    features = decl.feature_names()
    newest = Window.partitionBy(*decl.entity).orderBy(F.col(decl.timestamp).desc())
    held = (
        table.withColumn("_rank", F.row_number().over(newest))
        .filter("_rank = 1")
        .select(
            *[F.col(k).alias(f"_k{i}") for i, k in enumerate(decl.entity)],
            *[F.col(f).alias(f"_was_{f}") for f in features],
        )
    )
    on = [computed[k].eqNullSafe(held[f"_k{i}"]) for i, k in enumerate(decl.entity)]
    joined = computed.join(held, on, "left")
    unseen = F.col("_k0").isNull()  # entity keys are never null in the table
    differs = F.lit(False)
    for f in features:
        differs |= ~computed[f].eqNullSafe(F.col(f"_was_{f}"))
    return joined.filter(unseen | differs).select(*[computed[c] for c in computed.columns])
