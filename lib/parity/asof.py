"""Point-in-time (as-of) joins: every spine row gets the feature values known at its time.

Training sets and scoring both assemble features here, from the feature tables a model's
spec names, so a model sees the same features in both. A feature row stamped T is known from
T on; an as-of join at time t takes, per entity, the newest row with T <= t and never a later
one, and never drops or duplicates a spine row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from parity.conf import FeatureSetDecl
from parity.quality import MissingColumnsError
from parity.tables import Catalog


def as_of_join(
    spine: DataFrame,
    features: DataFrame,
    *,
    entity: str | list[str],
    spine_ts: str,
    feature_ts: str,
    columns: list[str],
    max_age: dt.timedelta | None = None,
    matched_ts: str | None = None,
) -> DataFrame:
    """Attach to every spine row the newest feature row with feature_ts <= spine_ts.

    No spine row is ever dropped or duplicated: a row without an earlier feature row (or with
    only rows older than `max_age`) keeps its place with null features. Feature rows stamped
    exactly at the spine time count as known at that time; later rows are never used. If
    `matched_ts` is given, it receives the feature time of the row used (null when none was).

    Needs: `entity` and `spine_ts` in `spine`; `entity`, `feature_ts` and `columns` in
    `features`. Adds: `columns`.

    Raises:
        MissingColumnsError: a needed column is absent.
    """
    keys = [entity] if isinstance(entity, str) else list(entity)
    for frame, needed, side in ((spine, [*keys, spine_ts], "spine"), (features, [*keys, feature_ts, *columns], "features")):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise MissingColumnsError(f"as_of_join {side}: missing column(s) {', '.join(missing)}")
    clash = [c for c in columns if c in spine.columns]
    if clash:
        raise ValueError(f"as_of_join: spine already has column(s) {', '.join(clash)}")

    # One sorted pass per entity: feature rows and spine rows interleaved by time, feature rows
    # first on ties; each spine row takes the last feature struct seen before it.
    spine_rows = spine.select(
        _entity_key(keys),
        F.col(spine_ts).alias("_ts"),
        F.lit(1).alias("_kind"),
        F.lit(None).cast(_struct_type(features, feature_ts, columns)).alias("_feature"),
        F.struct(*[F.col(c) for c in spine.columns]).alias("_spine"),
    )
    known = F.col(feature_ts).isNotNull()
    for key in keys:
        known &= F.col(key).isNotNull()
    feature_rows = features.filter(known).select(
        _entity_key(keys),
        F.col(feature_ts).alias("_ts"),
        F.lit(0).alias("_kind"),
        F.struct(F.col(feature_ts).alias("_feature_ts"), *[F.col(c) for c in columns]).alias("_feature"),
        F.lit(None).cast(spine.select(F.struct(*spine.columns).alias("s")).schema["s"].dataType).alias("_spine"),
    )
    # Ties between feature rows of one entity and time resolve to the greatest row, so reruns agree.
    window = Window.partitionBy("_entity").orderBy("_ts", "_kind", "_feature").rowsBetween(Window.unboundedPreceding, 0)
    joined = (
        spine_rows.unionByName(feature_rows)
        .withColumn("_latest", F.last("_feature", ignorenulls=True).over(window))
        .filter(F.col("_kind") == 1)
    )
    fresh = F.lit(True)
    if max_age is not None:
        age_seconds = F.col("_ts").cast("double") - F.col("_latest._feature_ts").cast("double")
        fresh = age_seconds <= F.lit(max_age.total_seconds())
    selected = [F.col(f"_spine.{c}").alias(c) for c in spine.columns]
    selected += [F.when(fresh, F.col(f"_latest.{c}")).alias(c) for c in columns]
    if matched_ts is not None:
        selected.append(F.when(fresh, F.col("_latest._feature_ts")).alias(matched_ts))
    return joined.select(*selected)


def _entity_key(keys: list[str]) -> Column:
    return (F.col(keys[0]) if len(keys) == 1 else F.struct(*keys)).alias("_entity")


def _struct_type(features: DataFrame, feature_ts: str, columns: list[str]) -> DataType:
    return features.select(F.struct(F.col(feature_ts).alias("_feature_ts"), *columns).alias("s")).schema["s"].dataType


@dataclass
class FeatureLookup:
    """One declared feature set to join onto a spine, from its table pinned at a version."""

    feature_set: FeatureSetDecl
    version: int
    frame: DataFrame = field(repr=False)
    code_hash: str = ""

    @property
    def table(self) -> str:
        return self.feature_set.table


def matched_column(decl: FeatureSetDecl) -> str:
    """The column in which an assembled row records the feature time of the set's row it used."""
    return f"{decl.name}_as_of"


def add_request_time_features(df: DataFrame, decl: FeatureSetDecl, *, as_of_column: str) -> DataFrame:
    """Apply a feature set's request-time transforms at the spine's time (`as_of_column`).

    Needs: `as_of_column` and the columns the transforms read. Adds: each request-time output.
    """
    for feature in decl.request_time:
        df = df.transform(feature.function(), as_of_column=as_of_column, output=feature.output.name, **feature.params)
    return df


def assemble_features(spine: DataFrame, lookups: list[FeatureLookup], *, spine_ts: str) -> DataFrame:
    """As-of join every feature set onto the spine by its entity keys (each bounded by its
    max_age_days), then add the request-time features. Training sets and scoring both call this.

    Needs: every set's entity keys and `spine_ts` in `spine`. Adds: every set's features, its
    `<set>_as_of` column (the feature time of the row used) and its request-time features.
    """
    assembled = spine
    for lookup in lookups:
        decl = lookup.feature_set
        assembled = as_of_join(
            assembled,
            lookup.frame,
            entity=decl.entity,
            spine_ts=spine_ts,
            feature_ts=decl.timestamp,
            columns=decl.feature_names(),
            max_age=dt.timedelta(days=decl.max_age_days) if decl.max_age_days else None,
            matched_ts=matched_column(decl),
        )
    for lookup in lookups:
        assembled = add_request_time_features(assembled, lookup.feature_set, as_of_column=spine_ts)
    return assembled


def describe_lookups(lookups: list[FeatureLookup]) -> list[dict[str, Any]]:
    """The lookups as plain data, for feature specs and lineage: declaration, table, version, code hash."""
    return [
        {
            "feature_set": lookup.feature_set.model_dump(mode="json"),
            "table": lookup.table,
            "version": lookup.version,
            "code_hash": lookup.code_hash,
        }
        for lookup in lookups
    ]


def read_feature_lookups(catalog: Catalog, decls: list[FeatureSetDecl]) -> list[FeatureLookup]:
    """Read each feature set's table at its newest version, pinned for the whole job."""
    lookups = []
    for decl in decls:
        frame, version = catalog.read_versioned(decl.table)
        lookups.append(FeatureLookup(decl, version, frame, decl.code_hash()))
    return lookups
