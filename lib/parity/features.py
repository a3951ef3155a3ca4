"""Declared feature sets: validating their sources, computing them, and building them incrementally.

A feature set is declared once (conf/features/*.yaml, see `conf.FeatureSetDecl`): its entity,
source, event time, transforms by dotted path, and typed output columns. The same
`compute_feature_set` serves the build job and the notebooks, so a feature is defined once.

Builds are incremental and idempotent. Each build records a watermark (the newest source
event time it processed) with its Delta commit; the next build recomputes only the output
rows from `lookback_days` before that watermark onwards, reading just the source history its
transforms need, and upserts them with a Delta MERGE on (entity, feature time). Rerunning a
build over the same input matches every row and changes none. A backfill recomputes a
chosen range of days and leaves the rest of the table untouched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
import sys
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from parity import asof, pii, quality, transforms
from parity.conf import Expectation, FeatureSetDecl, NotNullExpectation, Settings, SourceQualityConf
from parity.quality import MissingColumnsError, apply_expectations, require_columns
from parity.schema import PII_COLUMNS, QUARANTINE_REASON, QUARANTINE_RULE
from parity.tables import CHANGE_DATA_FEED, Catalog

FEATURE_DATE = "feature_date"  # the partition column of every feature table
SOURCE_ROW_HASH = "source_row_hash"  # with the rule and the occurrence, the key of a quarantine table
SOURCE_ROW_OCCURRENCE = "source_row_occurrence"
BUILD_STATE_KEY = "parity.build"
NUMERIC_TYPES = ("boolean", "int", "bigint", "float", "double")


class DeclarationError(ValueError):
    """A feature set declaration does not fit its source: the message names the set, step and column."""


class DeclarationChangedError(RuntimeError):
    """A feature table was built from another version of its declaration or transforms."""


def transform_code_hash(modules: tuple[ModuleType, ...] | None = None) -> str:
    """A digest of the library code behind every feature: transforms, PII redaction, validation,
    builds and as-of joins. Recorded with every run in `audit.runs`."""
    digest = hashlib.sha256()
    for module in modules or (transforms, pii, quality, asof, sys.modules[__name__]):
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:16]


def history_days(decl: FeatureSetDecl) -> int:
    """Days of source data before an output row's day that computing the row reads."""
    if decl.history_days is not None:
        return decl.history_days
    return max((transforms.history_days(step.function(), step.params) for step in decl.transforms), default=0)


def source_contract(conf: SourceQualityConf) -> T.StructType:
    """The declared columns of a source as a schema (empty when the source declares none)."""
    return T.StructType([T.StructField(name, T._parse_datatype_string(kind)) for name, kind in conf.columns.items()])


def validate_source(
    df: DataFrame, conf: SourceQualityConf, *, source: str, required: list[str] | None = None
) -> tuple[DataFrame, DataFrame]:
    """Split a raw source into (valid, quarantined with rule and reason) by its declared expectations.

    `required` columns (a feature set's entity keys and event time) must not be null, whether
    or not the source declares it: those checks come first.

    Columns beyond the declared contract are dropped (jobs report them). Quarantined rows keep
    the source's columns with free text redacted and PII columns emptied, so quarantine never
    holds PII, and gain a hash of the original row and its occurrence (1 for the first of
    identical rows), which with the rule key the quarantine table.

    Raises:
        MissingColumnsError: a declared column is missing or retyped (names the column).
    """
    contract = source_contract(conf)
    if contract.fields:
        require_columns(df, contract, source=source)
        df = df.select(*contract.fieldNames())
    row_hash = F.xxhash64(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])))
    structural: list[Expectation] = [NotNullExpectation(rule="not_null", column=c) for c in required or []]
    expectations = structural + [e for e in conf.expectations if e not in structural]
    valid, quarantined = apply_expectations(df, expectations, source=source)
    safe = [
        (F.lit(None).cast(kind).alias(name) if name in PII_COLUMNS else pii.redact(F.col(name)).alias(name))
        if kind == "string"
        else F.col(name)
        for name, kind in quarantined.dtypes
        if name not in (QUARANTINE_RULE, QUARANTINE_REASON)
    ]
    keyed = quarantined.select(row_hash.alias(SOURCE_ROW_HASH), *safe, QUARANTINE_RULE, QUARANTINE_REASON)
    identical = Window.partitionBy(SOURCE_ROW_HASH, QUARANTINE_RULE).orderBy(SOURCE_ROW_HASH)
    return valid, keyed.withColumn(SOURCE_ROW_OCCURRENCE, F.row_number().over(identical))


def required_columns(decl: FeatureSetDecl) -> list[str]:
    """The source columns a feature set cannot do without: its entity keys and event time."""
    return [*decl.entity, decl.event_time]


def quarantine_table(source_table: str) -> str:
    """Where the rows of a raw source that fail validation go: quarantine.<source>."""
    return f"quarantine.{source_table.partition('.')[2]}"


def compute_feature_set(decl: FeatureSetDecl, source: DataFrame) -> DataFrame:
    """Run a declaration's transforms over (validated) source rows and select its outputs.

    Returns: the entity keys, the feature timestamp and the declared features, in that order.

    Raises:
        DeclarationError: a transform needs a column the data lacks, or the result misses a
            declared column or holds it with another type.
    """
    df = source
    for index, step in enumerate(decl.transforms):
        try:
            df = df.transform(step.function(), **step.params)
            _ = df.schema  # analyse now, so a missing column is blamed on this step
        except AnalysisException as exc:
            raise DeclarationError(
                f"feature set {decl.name}: transforms[{index}] {step.fn} cannot run: {_first_line(exc)}"
            ) from None
    expected = {decl.timestamp: "timestamp", **{f.name: f.type for f in decl.features}}
    actual = dict(df.dtypes)
    missing = [c for c in [*decl.entity, *expected] if c not in actual]
    if missing:
        raise DeclarationError(f"feature set {decl.name}: its transforms do not produce declared column(s) {', '.join(missing)}")
    retyped = [f"{c} is {actual[c]}, declared {kind}" for c, kind in expected.items() if actual[c] != kind]
    if retyped:
        raise DeclarationError(f"feature set {decl.name}: {'; '.join(retyped)}")
    described = {f.name: f.description for f in decl.features}
    return df.select(
        *decl.entity,
        decl.timestamp,
        *[F.col(name).alias(name, metadata={"comment": text}) for name, text in described.items()],
    )


def sample_entities(df: DataFrame, decl: FeatureSetDecl, *, fraction: float, seed: int = 0) -> DataFrame:
    """Keep every row of a deterministic sample of the entities (all of each entity's rows, so
    windows over its history stay complete).

    Needs: the entity keys. Returns the same columns.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    bucket = F.pmod(F.xxhash64(F.lit(seed), *[F.col(k) for k in decl.entity]), F.lit(10_000))
    return df.filter(bucket < F.lit(int(fraction * 10_000)))


def newest_event_time(decl: FeatureSetDecl, valid: DataFrame) -> dt.datetime | None:
    """The newest event time among validated source rows (runs a Spark job): what a build's watermark becomes."""
    newest = valid.agg(F.max(decl.event_time).alias("newest")).first()
    return None if newest is None else newest["newest"]


def preview_feature_set(decl: FeatureSetDecl, valid: DataFrame, *, newest: dt.datetime | None) -> DataFrame:
    """What a full build writes from these validated source rows, without writing it: the
    declared columns, up to the midnight after `newest` (the newest event of the whole source,
    see `newest_event_time`, so that a sample ends where the job's table ends). For notebooks.
    """
    return compute_feature_set(decl, valid).filter(BuildRange(None, _day_end(newest), None, "preview").output_filter(decl.timestamp))


def check_declaration(
    spark: SparkSession, decl: FeatureSetDecl, source_schema: T.StructType, conf: SourceQualityConf
) -> None:
    """Check a declaration against a source's schema without reading data (Spark analysis only).

    Raises:
        MissingColumnsError: the source lacks a column its contract declares.
        DeclarationError: as `compute_feature_set`.
    """
    empty = spark.createDataFrame([], source_schema)
    valid, _ = validate_source(empty, conf, source=decl.source, required=required_columns(decl))
    if decl.event_time not in valid.columns:
        raise MissingColumnsError(f"feature set {decl.name}: source {decl.source} has no event_time column {decl.event_time}")
    _ = compute_feature_set(decl, valid).schema


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# --- incremental builds ---------------------------------------------------------------------


@dataclass(frozen=True)
class BuildRange:
    """Which output rows a build recomputes: those with start < feature time <= end.

    `None` bounds are open. The build reads source rows with event time from `read_from` on
    (`start` minus the transforms' history).
    """

    start: dt.datetime | None
    end: dt.datetime | None
    read_from: dt.datetime | None
    reason: str

    def output_filter(self, column: str) -> Column:
        condition = F.lit(True)
        if self.start is not None:
            condition &= F.col(column) > F.lit(self.start)
        if self.end is not None:
            condition &= F.col(column) <= F.lit(self.end)
        return condition

    def target_predicate(self, column: str, alias: str = "t") -> str | None:
        """The range as SQL over the target table, partition column included, for MERGE pruning."""
        parts = []
        if self.start is not None:
            parts += [f"{alias}.{FEATURE_DATE} >= DATE '{self.start.date()}'", f"{alias}.`{column}` > TIMESTAMP '{self.start}'"]
        if self.end is not None:
            parts += [f"{alias}.{FEATURE_DATE} <= DATE '{self.end.date()}'", f"{alias}.`{column}` <= TIMESTAMP '{self.end}'"]
        return " AND ".join(parts) or None

    def as_dict(self) -> dict[str, str | None]:
        return {"start": _iso(self.start), "end": _iso(self.end), "read_from": _iso(self.read_from), "reason": self.reason}


@dataclass(frozen=True)
class BuildState:
    """What a feature table's last build recorded with its commit."""

    watermark: dt.datetime | None
    declaration_hash: str

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> BuildState | None:
        state = metadata.get(BUILD_STATE_KEY)
        if not isinstance(state, dict):
            return None
        mark = state.get("watermark")
        return cls(dt.datetime.fromisoformat(mark) if mark else None, str(state.get("declaration_hash", "")))


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def _day_end(moment: dt.datetime | None) -> dt.datetime | None:
    """Where a build's output ends: the midnight after the newest source event (None without one)."""
    return None if moment is None else _midnight(moment.date() + dt.timedelta(days=1))


def plan_build(
    decl: FeatureSetDecl,
    state: BuildState | None,
    *,
    backfill: tuple[dt.date, dt.date] | None = None,
    full_refresh: bool = False,
) -> BuildRange:
    """Decide which output rows a build recomputes.

    - No table yet, or `full_refresh`: everything.
    - `backfill` (first day, last day): the output rows of those days, whatever the watermark.
    - Otherwise: from `lookback_days` before the watermark's day onwards.

    Raises:
        DeclarationChangedError: the table was built under another table hash (see
            `FeatureSetDecl.table_hash`) and this is not a full refresh: mixing rows of two
            definitions would be silent skew.
    """
    history = dt.timedelta(days=history_days(decl))
    current = decl.table_hash()
    if full_refresh or state is None:
        return BuildRange(None, None, None, "full refresh" if full_refresh else "first build")
    if state.declaration_hash != current:
        raise DeclarationChangedError(
            f"feature set {decl.name} changed since {decl.table} was built (declaration hash {state.declaration_hash} -> {current}); "
            "rebuild it with --full-refresh"
        )
    if backfill is not None:
        first, last = backfill
        start = _midnight(first)
        return BuildRange(start, _midnight(last + dt.timedelta(days=1)), start - history, f"backfill {first}..{last}")
    if state.watermark is None:
        return BuildRange(None, None, None, "no watermark recorded")
    start = _midnight(state.watermark.date() - dt.timedelta(days=decl.lookback_days))
    return BuildRange(start, None, start - history, f"incremental from watermark {state.watermark.isoformat()}")


def read_slice(source: DataFrame, decl: FeatureSetDecl, build: BuildRange) -> DataFrame:
    """The source rows a build reads: from `read_from` up to its end, plus rows without an event time
    (so that validation quarantines them)."""
    time = F.col(decl.event_time)
    keep = F.lit(True)
    if build.read_from is not None:
        keep &= time >= F.lit(build.read_from)
    if build.end is not None:
        keep &= time < F.lit(build.end)
    return source.filter(keep | time.isNull())


def new_rows(rows: DataFrame, decl: FeatureSetDecl, build: BuildRange) -> DataFrame:
    """The rows of a slice that are this build's own (not history read for context)."""
    if build.start is None:
        return rows
    return rows.filter((F.col(decl.event_time) >= F.lit(build.start)) | F.col(decl.event_time).isNull())


@dataclass
class BuildResult:
    """What one feature set build did."""

    feature_set: str
    table: str
    version: int
    quarantine_table: str
    range: BuildRange
    watermark: dt.datetime | None
    counts: dict[str, int] = field(default_factory=dict)
    merge: dict[str, int] = field(default_factory=dict)  # empty when nothing changed and Delta made no commit
    quarantine_rules: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # where the build's time went


@dataclass
class PlannedBuild:
    """A feature set build whose checks have all passed: nothing is written yet."""

    decl: FeatureSetDecl
    source_table: str
    source: DataFrame = field(repr=False)
    conf: SourceQualityConf
    state: BuildState | None
    range: BuildRange


def plan_feature_build(
    catalog: Catalog,
    settings: Settings,
    decl: FeatureSetDecl,
    *,
    backfill: tuple[dt.date, dt.date] | None = None,
    full_refresh: bool = False,
    now: dt.datetime | None = None,
) -> PlannedBuild:
    """Run every check a build needs before it writes: the source's contract (a missing or
    retyped column), the declaration against the source's schema, freshness, and whether the
    table was built under this declaration. A job plans all its builds before running any.

    Raises:
        MissingColumnsError, DeclarationError, StaleSourceError, DeclarationChangedError.
    """
    source_table = settings.source_table(decl.source)
    conf = settings.source_quality(decl.source)
    source = catalog.read(source_table)
    if conf.columns:
        require_columns(source, source_contract(conf), source=source_table)
    check_declaration(catalog.spark, decl, source.schema, conf)
    if now is not None:
        quality.check_freshness(source, conf, source=source_table, now=now)
    state = BuildState.from_metadata(catalog.latest_commit_metadata(decl.table, BUILD_STATE_KEY)) if catalog.exists(decl.table) else None
    build = plan_build(decl, state, backfill=backfill, full_refresh=full_refresh)
    return PlannedBuild(decl, source_table, source, conf, state, build)


def run_feature_build(catalog: Catalog, planned: PlannedBuild) -> BuildResult:
    """Validate the planned slice of the source, quarantine its bad rows, and upsert the features.

    The quarantine and the feature table are each written in one commit (none when nothing
    changed); a caller that fails later rolls both back through the catalog.
    """
    decl, source, build, state = planned.decl, planned.source, planned.range, planned.state
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step], clock = round(now - clock, 3), now

    read = read_slice(source, decl, build).cache()  # read once: validated, then counted on its own
    valid, quarantined = validate_source(read, planned.conf, source=planned.source_table, required=required_columns(decl))
    valid = valid.cache()
    own_quarantine = new_rows(quarantined, decl, build).cache()
    try:
        marks = [m for m in (state.watermark if state else None, newest_event_time(decl, valid)) if m is not None]
        watermark = max(marks) if marks else None
        build = BuildRange(build.start, build.end if build.end is not None else _day_end(watermark), build.read_from, build.reason)
        tally = {r[0]: int(r[1]) for r in own_quarantine.groupBy(QUARANTINE_RULE).count().collect()}
        lap("validate")
        quarantine_name = quarantine_table(planned.source_table)
        if tally or not catalog.exists(quarantine_name):
            catalog.merge(own_quarantine, quarantine_name, keys=[SOURCE_ROW_HASH, QUARANTINE_RULE, SOURCE_ROW_OCCURRENCE])
        lap("quarantine")
        computed = compute_feature_set(decl, valid).filter(build.output_filter(decl.timestamp))
        metadata: dict[str, object] = {
            BUILD_STATE_KEY: {
                "watermark": _iso(watermark),
                "declaration_hash": decl.table_hash(),
                "range": build.as_dict(),
                "source": planned.source_table,
            }
        }
        before = catalog.version(decl.table)
        version = catalog.merge(
            computed.withColumn(FEATURE_DATE, F.to_date(decl.timestamp)).repartition(FEATURE_DATE),
            decl.table,
            keys=[*decl.entity, decl.timestamp],
            scope=build.target_predicate(decl.timestamp),
            partition_by=[FEATURE_DATE],
            commit_metadata=metadata,
            replace=build.start is None,
            properties={CHANGE_DATA_FEED: "true"},  # when each row landed, for as-known-at joins
        )
        lap("compute and merge")
        merged = catalog.operation_metrics(decl.table, version) if version != before else {}
        counts = {
            "in": new_rows(read, decl, build).count(),  # counted apart from the split, to reconcile
            "out": new_rows(valid, decl, build).count(),
            "quarantined": sum(tally.values()),
            "rows_written": _rows_written(merged),
        }
        lap("count")
    finally:
        for cached in (read, valid, own_quarantine):
            cached.unpersist()
    return BuildResult(
        feature_set=decl.name,
        table=decl.table,
        version=version,
        quarantine_table=quarantine_name,
        range=build,
        watermark=watermark,
        counts=counts,
        merge=merged,
        quarantine_rules=tally,
        ignored_columns=quality.unexpected_columns(source, source_contract(planned.conf)) if planned.conf.columns else [],
        seconds=seconds,
    )


def _rows_written(metrics: dict[str, int]) -> int:
    """Rows a commit wrote: all of them for a WRITE, those inserted, updated or deleted for a MERGE."""
    if "numTargetRowsInserted" in metrics:
        return sum(metrics.get(k, 0) for k in ("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted"))
    return metrics.get("numOutputRows", 0)


def build_feature_set(
    catalog: Catalog,
    settings: Settings,
    decl: FeatureSetDecl,
    *,
    backfill: tuple[dt.date, dt.date] | None = None,
    full_refresh: bool = False,
    now: dt.datetime | None = None,
) -> BuildResult:
    """Plan and run one feature set build (see `plan_feature_build` and `run_feature_build`)."""
    planned = plan_feature_build(catalog, settings, decl, backfill=backfill, full_refresh=full_refresh, now=now)
    return run_feature_build(catalog, planned)


def model_inputs(decls: list[FeatureSetDecl]) -> tuple[list[str], list[str]]:
    """The (numeric, categorical) columns a model consumes, in declaration order.

    Numeric and boolean features are numeric inputs, string features categorical ones;
    timestamps only feed request-time features.
    """
    numeric: list[str] = []
    categorical: list[str] = []
    for decl in decls:
        for column in [*decl.features, *[r.output for r in decl.request_time]]:
            if column.type in NUMERIC_TYPES:
                numeric.append(column.name)
            elif column.type == "string":
                categorical.append(column.name)
    return numeric, categorical


def declared_sets(settings: Settings, names: list[str] | None = None) -> list[FeatureSetDecl]:
    """The declared feature sets by name (all of them by default), in a stable order.

    Raises:
        ValueError: a name is not declared.
    """
    chosen = names or sorted(settings.feature_sets)
    unknown = [n for n in chosen if n not in settings.feature_sets]
    if unknown:
        raise ValueError(f"no declared feature set(s) {', '.join(unknown)}; declared: {', '.join(sorted(settings.feature_sets))}")
    return [settings.feature_sets[n] for n in chosen]
