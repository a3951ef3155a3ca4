"""Feature sets: their declarations, their builds, and point-in-time (as-of) joins.

The same functions serve the build job, the training-set job, the scoring job and the
notebooks, so a feature is defined once. A feature row stamped `feature_ts` = T only uses
source data from before T; an as-of join at time t takes, per entity, the newest row with
T <= t, and never a later one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import sys
from dataclasses import asdict, dataclass, field
from types import ModuleType

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DataType

from parity import pii, quality, transforms
from parity.conf import Expectation, NotNullExpectation, SourceQualityConf, TablesConf
from parity.quality import MissingColumnsError, apply_expectations, require_columns
from parity.schema import (
    AMOUNT,
    CREDIT_LIMIT,
    CUSTOMER_ID,
    EVENT_TS,
    FEATURE_TS,
    NOTE,
    PII_COLUMNS,
    RAW_EVENTS,
    REGION,
    SEGMENT,
    SIGNUP_TS,
    UPDATED_AT,
)
from parity.tables import Catalog

CONTACT_FLAG = "note_has_contact"
TENURE_DAYS = "tenure_days"


@dataclass(frozen=True)
class FeatureSet:
    """A declared feature set: one Delta table keyed by entity and feature time."""

    name: str
    table_key: str  # the TablesConf field naming its table
    entity: str
    timestamp: str
    features: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    description: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> FeatureSet:
        """Rebuild a declaration from its plain-data form (as stored in a feature spec)."""
        fields = dict(data)
        for key in ("features", "categorical"):
            fields[key] = tuple(fields.get(key) or ())  # type: ignore[arg-type]
        return cls(**fields)  # type: ignore[arg-type]


@dataclass(frozen=True)
class RequestTimeFeature:
    """A feature computed when the spine is known (training label time or scoring time)."""

    name: str
    function: str
    inputs: tuple[str, ...]


def activity_feature_names(windows_days: list[int]) -> tuple[str, ...]:
    names: list[str] = [transforms.DAYS_SINCE_LAST_EVENT]
    for days in windows_days:
        names += [
            f"n_events_{days}d",
            f"amount_sum_{days}d",
            f"amount_mean_{days}d",
            f"amount_max_{days}d",
            f"contact_notes_{days}d",
        ]
    return tuple(names)


def customer_activity(windows_days: list[int]) -> FeatureSet:
    return FeatureSet(
        name="customer_activity",
        table_key="customer_activity",
        entity=CUSTOMER_ID,
        timestamp=FEATURE_TS,
        features=activity_feature_names(windows_days),
        description="Daily rolling activity per customer, stamped at the end of each UTC day.",
    )


CUSTOMER_PROFILE = FeatureSet(
    name="customer_profile",
    table_key="customer_profile",
    entity=CUSTOMER_ID,
    timestamp=FEATURE_TS,
    features=(SEGMENT, REGION, CREDIT_LIMIT, SIGNUP_TS),
    categorical=(SEGMENT, REGION),
    description="Slowly changing customer attributes without PII, stamped when they changed.",
)

TENURE = RequestTimeFeature(name=TENURE_DAYS, function="parity.transforms.with_tenure_days", inputs=(SIGNUP_TS,))


def feature_sets(windows_days: list[int]) -> list[FeatureSet]:
    return [customer_activity(windows_days), CUSTOMER_PROFILE]


def model_inputs(windows_days: list[int]) -> tuple[list[str], list[str]]:
    """The (numeric, categorical) columns a model consumes, in a fixed order."""
    numeric = list(activity_feature_names(windows_days)) + [CREDIT_LIMIT, TENURE_DAYS]
    categorical = list(CUSTOMER_PROFILE.categorical)
    return numeric, categorical


def transform_code_hash(modules: tuple[ModuleType, ...] | None = None) -> str:
    """A digest of the code behind every feature: transforms, PII redaction, validation, and the
    builds and point-in-time joins here. It changes when any of them changes."""
    digest = hashlib.sha256()
    for module in modules or (transforms, pii, quality, sys.modules[__name__]):
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:16]


def event_expectations(declared: SourceQualityConf) -> list[Expectation]:
    """The declared expectations of raw events, after the two the feature build cannot do without."""
    structural: list[Expectation] = [
        NotNullExpectation(rule="not_null", column=CUSTOMER_ID),
        NotNullExpectation(rule="not_null", column=EVENT_TS),
    ]
    return structural + [e for e in declared.expectations if e not in structural]


def validate_events(
    events: DataFrame, declared: SourceQualityConf, *, source: str = "raw events"
) -> tuple[DataFrame, DataFrame]:
    """Split raw events into (valid, quarantined with rule and reason); notes in quarantine are redacted.

    Columns beyond the raw-events contract are dropped here (jobs report them).

    Raises:
        MissingColumnsError: a required column is missing or retyped.
    """
    require_columns(events, RAW_EVENTS, source=source)
    valid, quarantined = apply_expectations(
        events.select(*RAW_EVENTS.fieldNames()), event_expectations(declared), source=source
    )
    return valid, quarantined.withColumn(NOTE, pii.redact(F.col(NOTE)))


def latest_event_day(events: DataFrame) -> dt.date:
    """The UTC day of the newest event: where the daily activity grid ends (runs a Spark job).

    Raises:
        ValueError: there are no events.
    """
    latest = events.agg(F.max(EVENT_TS).alias("latest")).first()
    if latest is None or latest["latest"] is None:
        raise ValueError("no valid events to build features from")
    return latest["latest"].date()


def build_customer_activity(events: DataFrame, *, windows_days: list[int], end_day: dt.date) -> DataFrame:
    """Daily rolling activity features per customer from validated events.

    Needs: customer_id, event_ts, amount, note. Returns: customer_id, feature_ts, and the
    columns of `activity_feature_names(windows_days)`, one row per customer and day from
    the customer's first event to `end_day`.
    """
    daily = (
        events.transform(transforms.with_redacted_text, column=NOTE, flag_column=CONTACT_FLAG)
        .transform(transforms.with_day, ts_column=EVENT_TS)
        .transform(
            transforms.add_daily_activity,
            entity=CUSTOMER_ID,
            amount_column=AMOUNT,
            note_column=NOTE,
            contact_flag_column=CONTACT_FLAG,
        )
    )
    features = (
        daily.transform(transforms.add_daily_grid, entity=CUSTOMER_ID, end_day=end_day)
        .transform(transforms.add_rolling_windows, entity=CUSTOMER_ID, windows_days=windows_days)
        .transform(transforms.with_days_since_last_event, entity=CUSTOMER_ID)
        .transform(transforms.with_day_end_ts, output=FEATURE_TS)
    )
    return features.select(CUSTOMER_ID, FEATURE_TS, *activity_feature_names(windows_days))


def build_customer_profile(customers: DataFrame) -> DataFrame:
    """Customer attributes without PII, one row per customer and change.

    Needs: customer_id, updated_at, segment, region, credit_limit, signup_ts. Returns:
    customer_id, feature_ts (= updated_at), segment, region, credit_limit, signup_ts. The PII
    columns (name, email, phone) are dropped here and never reach a feature table.
    """
    return customers.drop(*PII_COLUMNS).select(
        CUSTOMER_ID, F.col(UPDATED_AT).alias(FEATURE_TS), *CUSTOMER_PROFILE.features
    )


def as_of_join(
    spine: DataFrame,
    features: DataFrame,
    *,
    entity: str,
    spine_ts: str,
    feature_ts: str,
    columns: list[str],
    max_age: dt.timedelta | None = None,
) -> DataFrame:
    """Attach to every spine row the newest feature row with feature_ts <= spine_ts.

    No spine row is ever dropped or duplicated: a row without an earlier feature row (or with
    only rows older than `max_age`) keeps its place with null features. Feature rows stamped
    exactly at the spine time count as known at that time; later rows are never used.

    Needs: `entity` and `spine_ts` in `spine`; `entity`, `feature_ts` and `columns` in
    `features`. Adds: `columns`.

    Raises:
        MissingColumnsError: a needed column is absent.
    """
    for frame, needed, side in ((spine, [entity, spine_ts], "spine"), (features, [entity, feature_ts, *columns], "features")):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise MissingColumnsError(f"as_of_join {side}: missing column(s) {', '.join(missing)}")
    clash = [c for c in columns if c in spine.columns]
    if clash:
        raise ValueError(f"as_of_join: spine already has column(s) {', '.join(clash)}")

    # One sorted pass per entity: feature rows and spine rows interleaved by time, feature rows
    # first on ties; each spine row takes the last feature struct seen before it.
    spine_rows = spine.select(
        F.col(entity).alias("_entity"),
        F.col(spine_ts).alias("_ts"),
        F.lit(1).alias("_kind"),
        F.lit(None).cast(_struct_type(features, feature_ts, columns)).alias("_feature"),
        F.struct(*[F.col(c) for c in spine.columns]).alias("_spine"),
    )
    feature_rows = features.filter(F.col(entity).isNotNull() & F.col(feature_ts).isNotNull()).select(
        F.col(entity).alias("_entity"),
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
    return joined.select(*selected)


def _struct_type(features: DataFrame, feature_ts: str, columns: list[str]) -> DataType:
    return features.select(F.struct(F.col(feature_ts).alias("_feature_ts"), *columns).alias("s")).schema["s"].dataType


def add_request_time_features(df: DataFrame, *, as_of_column: str) -> DataFrame:
    """Features that depend on the spine's time: tenure in days at `as_of_column`.

    Needs: `as_of_column`, signup_ts. Adds: tenure_days.
    """
    return df.transform(transforms.with_tenure_days, as_of_column=as_of_column, since_column=SIGNUP_TS, output=TENURE_DAYS)


@dataclass
class FeatureLookup:
    """One feature set to join onto a spine, from a table pinned at a version."""

    feature_set: FeatureSet
    table: str
    version: int
    frame: DataFrame = field(repr=False)


def assemble_features(
    spine: DataFrame, lookups: list[FeatureLookup], *, entity: str, spine_ts: str, max_age: dt.timedelta | None = None
) -> DataFrame:
    """As-of join every feature set onto the spine, then add request-time features.

    Training sets and scoring both call this, so a model sees the same features in both.
    """
    assembled = spine
    for lookup in lookups:
        assembled = as_of_join(
            assembled,
            lookup.frame,
            entity=entity,
            spine_ts=spine_ts,
            feature_ts=lookup.feature_set.timestamp,
            columns=list(lookup.feature_set.features),
            max_age=max_age,
        )
    return assembled.transform(add_request_time_features, as_of_column=spine_ts)


def describe_lookups(lookups: list[FeatureLookup]) -> list[dict[str, object]]:
    """The lookups as plain data, for feature specs and lineage."""
    return [
        {"feature_set": asdict(lookup.feature_set), "table": lookup.table, "version": lookup.version}
        for lookup in lookups
    ]


def read_feature_lookups(catalog: Catalog, sources: list[tuple[FeatureSet, str]]) -> list[FeatureLookup]:
    """Read each (feature set, table name) at the table's newest version, pinned for the whole job."""
    lookups = []
    for feature_set, name in sources:
        frame, version = catalog.read_versioned(name)
        lookups.append(FeatureLookup(feature_set, name, version, frame))
    return lookups


def feature_sources(sets: list[FeatureSet], tables: TablesConf) -> list[tuple[FeatureSet, str]]:
    """Pair each declared feature set with the table conf names for it."""
    return [(feature_set, getattr(tables, feature_set.table_key)) for feature_set in sets]
