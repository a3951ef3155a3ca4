"""Point-in-time (as-of) joins: every spine row gets the feature values known at its time.

Training sets and scoring both assemble features here, from the feature tables a model's
spec names, so a model sees the same features in both. A feature row stamped T is known from
T on; an as-of join at time t takes, per entity, the newest row with T <= t and never a later
one, and never drops or duplicates a spine row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from parity.core.catalog import Catalog
from parity.core.conf import FeatureSetDecl
from parity.core.hashing import HASH_SCHEME_KEY, SCHEME
from parity.core.versioned import LANDED_AT, current_rows, is_versioned
from parity.features.quality import MissingColumnsError

Strategy = Literal["broadcast", "sort"]


@dataclass(frozen=True)
class AsOfJoin:
    """What an as-of join matches and takes (see `as_of_join`): the `entity` key column(s), in
    both frames; the spine's time `spine_ts` and the features' time `feature_ts`; the feature
    `columns` to take; `max_age`, beyond which a feature row is too old to use; `matched_ts`, a
    column to receive the feature time of the row used; and `available_at`, a column of the
    features holding when each row landed, to join as known at the spine time."""

    entity: str | list[str]
    spine_ts: str
    feature_ts: str
    columns: list[str]
    max_age: dt.timedelta | None = None
    matched_ts: str | None = None
    available_at: str | None = None


def as_of_join(
    spine: DataFrame, features: DataFrame, join: AsOfJoin, *, strategy: Strategy = "sort"
) -> DataFrame:
    """Attach to every spine row the newest feature row with feature_ts <= spine_ts (the columns
    `join` names).

    No spine row is ever dropped or duplicated: a row without an earlier feature row (or with
    only rows older than `max_age`) keeps its place with null features. Feature rows stamped
    exactly at the spine time count as known at that time; later rows are never used. Two
    feature rows of one entity and time resolve to the greatest, so reruns agree.

    With `available_at` (a column of `features`: when each row landed, e.g. its Delta commit
    time), the join is "as known at" the spine time: a row is only used if it had also landed
    by then, so data that arrived late cannot leak into the past; among several versions of
    one feature row, the newest that had landed wins.

    Strategies give identical results:
    - "sort" (default) interleaves spine and feature rows in one sort per entity; it has no
      size limit.
    - "broadcast" finds each spine key's row on narrow columns with the distinct spine keys
      broadcast, then fetches the values of only the matched rows; the wide feature table is
      read twice and never shuffled. The distinct (entity, time) keys of the spine and their
      matches must fit in memory (a few million rows). Measured slower than "sort" at 1M
      labels x 10M rows on 2 cores (BENCHMARKS.md); it may pay off where shuffles are dear.

    If `matched_ts` is given, it receives the feature time of the row used (null when none was).

    Needs: `entity` and `spine_ts` in `spine`; `entity`, `feature_ts`, `columns` (and
    `available_at`) in `features`. Adds: `columns` (and `matched_ts`).

    Raises:
        MissingColumnsError: a needed column is absent.
    """
    keys = [join.entity] if isinstance(join.entity, str) else list(join.entity)
    extra = [join.available_at] if join.available_at else []
    for frame, needed, side in (
        (spine, [*keys, join.spine_ts], "spine"),
        (features, [*keys, join.feature_ts, *join.columns, *extra], "features"),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise MissingColumnsError(f"as_of_join {side}: missing column(s) {', '.join(missing)}")
    clash = [
        c for c in [*join.columns, *([join.matched_ts] if join.matched_ts else [])] if c in spine.columns
    ]
    if clash:
        raise ValueError(f"as_of_join: spine already has column(s) {', '.join(clash)}")
    rows = _feature_rows(
        features, keys=keys, feature_ts=join.feature_ts, columns=join.columns, available_at=join.available_at
    )
    taken = _Side(rows, join.columns, join.max_age, join.matched_ts)
    if strategy == "sort":
        return _sorted_as_of(spine, taken, keys=keys, spine_ts=join.spine_ts)
    return _broadcast_as_of(spine, taken, keys=keys, spine_ts=join.spine_ts)


def _feature_rows(
    features: DataFrame, *, keys: list[str], feature_ts: str, columns: list[str], available_at: str | None
) -> DataFrame:
    """Feature rows as (keys, _f = feature time, _a = availability time, values), without the
    rows that lack a key or a time."""
    usable = F.col(feature_ts).isNotNull()
    for key in [*keys, *([available_at] if available_at else [])]:
        usable &= F.col(key).isNotNull()
    return features.filter(usable).select(
        *[F.col(k) for k in keys],
        F.col(feature_ts).alias("_f"),
        (F.col(available_at) if available_at else F.col(feature_ts)).alias("_a"),
        *[F.col(c) for c in columns],
    )


@dataclass(frozen=True)
class _Side:
    """One feature table in an as-of join: its rows (`_feature_rows`), the columns it adds, its
    TTL and where it records the feature time of the row used."""

    rows: DataFrame
    columns: list[str]
    max_age: dt.timedelta | None
    matched_ts: str | None


def _broadcast_as_of(spine: DataFrame, side: _Side, *, keys: list[str], spine_ts: str) -> DataFrame:
    rows, columns, max_age, matched_ts = side.rows, side.columns, side.max_age, side.matched_ts
    wanted = spine.select(*[F.col(k) for k in keys], F.col(spine_ts).alias("_t")).dropna().distinct()
    # 1. On narrow columns: per distinct spine key, the newest (feature time, availability) known then.
    known = (F.col("_f") <= F.col("_t")) & (F.col("_a") <= F.col("_t"))
    if max_age is not None:
        known &= F.col("_f") >= F.col("_t") - F.expr(f"INTERVAL {int(max_age.total_seconds())} SECONDS")
    best = (
        rows.select(*keys, "_f", "_a")
        .join(F.broadcast(wanted), keys)
        .filter(known)
        .groupBy(*keys, "_t")
        .agg(F.max(F.struct("_f", "_a")).alias("_m"))
        .select(*keys, "_t", F.col("_m._f").alias("_f"), F.col("_m._a").alias("_a"))
    )
    # 2. Fetch the values of the matched rows only; duplicates of one row resolve to the greatest.
    values = (
        rows.join(F.broadcast(best), [*keys, "_f", "_a"])
        .groupBy(*keys, "_t")
        .agg(F.max(F.struct(*columns)).alias("_v"), F.max("_f").alias("_f"))
    )
    renamed = values.select(
        *[F.col(k).alias(f"_k{i}") for i, k in enumerate(keys)],
        "_t",
        *[F.col(f"_v.`{c}`").alias(c) for c in columns],
        *([F.col("_f").alias(matched_ts)] if matched_ts else []),
    )
    on = F.col(spine_ts).eqNullSafe(renamed["_t"])
    for i, k in enumerate(keys):
        on &= spine[k].eqNullSafe(renamed[f"_k{i}"])
    joined = spine.join(renamed, on, "left")
    return joined.select(*[spine[c] for c in spine.columns], *columns, *([matched_ts] if matched_ts else []))


def _sorted_as_of(spine: DataFrame, side: _Side, *, keys: list[str], spine_ts: str) -> DataFrame:
    # One sorted pass per entity: feature rows (at the time they became usable, the later of
    # their feature and availability times) and spine rows interleaved, feature rows first on
    # ties; each spine row takes the greatest (feature time, availability, values) seen so far.
    # (Dropping feature rows later than their entity's last spine time first, with a join,
    # measured slower than sorting them along: 17.7 s against 12.5 s at 1M x 10M; so did one
    # pass shared by three tables on the same keys, 32.2 s against 29.5 s for a pass each:
    # BENCHMARKS.md.)
    feature = (
        side.rows.select(F.struct("_f", "_a", *side.columns).alias("_feature")).schema["_feature"].dataType
    )
    spine_struct = spine.select(F.struct(*spine.columns).alias("s")).schema["s"].dataType
    spine_rows = spine.select(
        _entity_key(keys),
        F.col(spine_ts).alias("_ts"),
        F.lit(1).alias("_kind"),
        F.lit(None).cast(feature).alias("_feature"),
        F.struct(*[F.col(c) for c in spine.columns]).alias("_spine"),
    )
    feature_rows = side.rows.select(
        _entity_key(keys),
        F.greatest("_f", "_a").alias("_ts"),
        F.lit(0).alias("_kind"),
        F.struct("_f", "_a", *side.columns).alias("_feature"),
        F.lit(None).cast(spine_struct).alias("_spine"),
    )
    window = Window.partitionBy("_entity").orderBy("_ts", "_kind").rowsBetween(Window.unboundedPreceding, 0)
    joined = (
        spine_rows.unionByName(feature_rows)
        .withColumn("_latest", F.max("_feature").over(window))
        .filter(F.col("_kind") == 1)
    )
    fresh = F.lit(True)
    if side.max_age is not None:
        fresh = F.col("_latest._f") >= F.col("_ts") - F.expr(
            f"INTERVAL {int(side.max_age.total_seconds())} SECONDS"
        )
    selected = [F.col(f"_spine.`{c}`").alias(c) for c in spine.columns]
    selected += [F.when(fresh, F.col(f"_latest.`{c}`")).alias(c) for c in side.columns]
    if side.matched_ts is not None:
        selected.append(F.when(fresh, F.col("_latest._f")).alias(side.matched_ts))
    return joined.select(*selected)


def _entity_key(keys: list[str]) -> Column:
    return (F.col(keys[0]) if len(keys) == 1 else F.struct(*keys)).alias("_entity")


@dataclass
class FeatureLookup:
    """One declared feature set to join onto a spine, from its table pinned at a version.

    `keys` maps the set's entity keys to the spine columns that supply them (default: the
    same names); `prefix` goes in front of every column the lookup adds, so one set can be
    joined twice; `kept` keeps a subset of its features (default: all).
    """

    feature_set: FeatureSetDecl
    version: int
    frame: DataFrame = field(repr=False)
    code_hash: str = ""
    landed_at: str | None = None  # set when `frame` is the table's history: join as known at the spine time
    keys: dict[str, str] = field(default_factory=dict)
    prefix: str = ""
    kept: list[str] | None = None

    @property
    def table(self) -> str:
        return self.feature_set.table

    @property
    def name(self) -> str:
        """`<prefix><set name>`: what the lookup's columns are named after."""
        return f"{self.prefix}{self.feature_set.name}"

    @property
    def matched_column(self) -> str:
        """The column in which an assembled row records the feature time of the set's row it used."""
        return f"{self.name}_as_of"

    def spine_keys(self) -> list[str]:
        """The spine columns that supply the set's entity keys, in the set's key order."""
        return [self.keys.get(key, key) for key in self.feature_set.entity]

    def outputs(self) -> dict[str, str]:
        """The features (and request-time features) the lookup adds: declared name -> name in the result."""
        decl = self.feature_set
        declared = decl.feature_names() + [r.output.name for r in decl.request_time]
        kept = declared if self.kept is None else [n for n in declared if n in self.kept]
        return {name: f"{self.prefix}{name}" for name in kept}


def matched_column(decl: FeatureSetDecl) -> str:
    """The column in which an assembled row records the feature time of the set's row it used
    (a lookup of the set with no prefix; see `FeatureLookup.matched_column`)."""
    return f"{decl.name}_as_of"


def add_request_time_features(df: DataFrame, decl: FeatureSetDecl, *, as_of_column: str) -> DataFrame:
    """Apply a feature set's request-time transforms at the spine's time (`as_of_column`).

    Needs: `as_of_column` and the columns the transforms read. Adds: each request-time output.
    """
    for feature in decl.request_time:
        df = df.transform(
            feature.function(), as_of_column=as_of_column, output=feature.output.name, **feature.params
        )
    return df


def assemble_features(
    spine: DataFrame, lookups: list[FeatureLookup], *, spine_ts: str, strategy: Strategy = "sort"
) -> DataFrame:
    """As-of join every lookup onto the spine by the spine columns that supply its set's entity
    keys (each bounded by the set's max_age), then add its request-time features. Training
    sets and scoring both call this.

    Each lookup is one as-of pass (one pass shared by the lookups on the same keys measured
    slower: BENCHMARKS.md). Each lookup's features arrive under names of its own; then, lookup
    by lookup, they take their declared names (an earlier lookup's columns of those names step
    aside meanwhile), the request-time features are added from them, and what the lookup keeps
    is renamed with its prefix, the rest dropped: two lookups of one set never collide.

    Needs: the spine columns every lookup maps from, and `spine_ts`. Adds: each lookup's kept
    features under their prefixed names, and its `<lookup name>_as_of` column (the feature time
    of the row used).
    """
    assembled = spine
    staged = [_staged_name(i) for i in range(len(lookups))]
    for lookup, name in zip(lookups, staged, strict=True):
        side, keys = _side(lookup, name), lookup.spine_keys()
        if strategy == "sort":
            assembled = _sorted_as_of(assembled, side, keys=keys, spine_ts=spine_ts)
        else:
            assembled = _broadcast_as_of(assembled, side, keys=keys, spine_ts=spine_ts)
    for lookup, name in zip(lookups, staged, strict=True):
        assembled = _finish_lookup(assembled, lookup, name, spine_ts=spine_ts)
    return assembled


def _staged_name(i: int) -> Callable[[str], str]:
    return lambda name: f"_lookup{i}_{name}"


def _side(lookup: FeatureLookup, staged: Callable[[str], str]) -> _Side:
    """A lookup's feature rows, keyed by the spine's columns, its features under staged names."""
    decl = lookup.feature_set
    features = lookup.frame.select(
        *[F.col(key).alias(column) for key, column in zip(decl.entity, lookup.spine_keys(), strict=True)],
        decl.timestamp,
        *[F.col(name).alias(staged(name)) for name in decl.feature_names()],
        *([lookup.landed_at] if lookup.landed_at else []),
    )
    columns = [staged(name) for name in decl.feature_names()]
    rows = _feature_rows(
        features,
        keys=lookup.spine_keys(),
        feature_ts=decl.timestamp,
        columns=columns,
        available_at=lookup.landed_at,
    )
    return _Side(rows, columns, decl.max_age_delta, lookup.matched_column)


def _finish_lookup(
    assembled: DataFrame, lookup: FeatureLookup, staged: Callable[[str], str], *, spine_ts: str
) -> DataFrame:
    """A joined lookup's features under their declared names, its request-time features added,
    and what it keeps renamed with its prefix (the rest dropped)."""
    decl = lookup.feature_set
    declared = [*decl.feature_names(), *(r.output.name for r in decl.request_time)]
    held = {c: f"_held_{lookup.name}_{c}" for c in assembled.columns if c in declared}
    assembled = assembled.withColumnsRenamed(held).withColumnsRenamed(
        {staged(name): name for name in decl.feature_names()}
    )
    assembled = add_request_time_features(assembled, decl, as_of_column=spine_ts)
    outputs = lookup.outputs()
    assembled = assembled.drop(*[n for n in declared if n not in outputs]).withColumnsRenamed(
        {n: p for n, p in outputs.items() if n != p}
    )
    return assembled.withColumnsRenamed({aside: name for name, aside in held.items()})


def describe_lookups(lookups: list[FeatureLookup]) -> list[dict[str, Any]]:
    """The lookups as plain data, for feature specs and lineage: declaration, table, version,
    code hash, and how it joins (entity keys, prefix, kept features)."""
    return [
        {
            "feature_set": lookup.feature_set.model_dump(mode="json"),
            "table": lookup.table,
            "version": lookup.version,
            "code_hash": lookup.code_hash,
            "closure_hash": lookup.feature_set.closure_hash(),
            HASH_SCHEME_KEY: SCHEME,  # the scheme of both hashes (parity.core.hashing)
            "as_known_at": lookup.landed_at is not None,
            "entity": dict(zip(lookup.feature_set.entity, lookup.spine_keys(), strict=True)),
            "prefix": lookup.prefix,
            "features": lookup.kept,
        }
        for lookup in lookups
    ]


@dataclass(frozen=True)
class LookupJoin:
    """How one feature set joins a spine: entity key -> spine column, prefix, kept features."""

    keys: dict[str, str] = field(default_factory=dict)
    prefix: str = ""
    kept: list[str] | None = None

    @classmethod
    def described(cls, lookup: dict[str, Any]) -> LookupJoin:
        """From `describe_lookups`' record of a lookup (older records join by the same names, unprefixed)."""
        return cls(dict(lookup.get("entity") or {}), str(lookup.get("prefix") or ""), lookup.get("features"))


def read_feature_lookups(
    catalog: Catalog,
    decls: list[FeatureSetDecl],
    *,
    as_known_at: bool = False,
    versions: dict[str, int] | None = None,
    joins: list[LookupJoin] | None = None,
) -> list[FeatureLookup]:
    """Read each feature set's table, pinned for the whole job: at `versions[table]` if given,
    else at its newest version, its current rows. With `as_known_at`, read every version of
    every row with the time it landed instead (`parity.core.versioned`; for a table built
    before rows kept it, from Delta's change data feed), so that joins only use rows that had
    landed by each spine row's time. `joins` (one per set, in order) say how each joins the
    spine; default: on the same names, unprefixed, every feature.
    """
    lookups = []
    for decl, join in zip(decls, joins or [LookupJoin()] * len(decls), strict=True):
        pinned = (versions or {}).get(decl.table)
        frame, version = catalog.read_versioned(decl.table, pinned)
        landed_at = None
        if as_known_at and is_versioned(frame):  # every version of every row, each with when it landed
            landed_at = LANDED_AT
        elif as_known_at:  # a table built before rows kept their landing times: from Delta's change data feed
            frame, version = catalog.read_history(decl.table, version, landed_at=LANDED_AT)
            landed_at = LANDED_AT
        else:
            frame = current_rows(frame)
        lookups.append(
            FeatureLookup(
                decl, version, frame, decl.code_hash(), landed_at, join.keys, join.prefix, join.kept
            )
        )
    return lookups
