"""Planning a feature set build: read what the plan needs once, then decide with pure functions.

`plan_feature_build` is the two steps in order:

1. `read_build_facts` reads the source and the feature table's history into a `BuildFacts` of
   plain values, and runs the checks that need the data: the source's contract (a missing or
   retyped column), the declaration against the source's schema, and freshness.
2. `decide_build` judges those values with the job's `BuildOptions` and reads nothing: whether
   the table is of the older layout, which build state is live, which rows to recompute
   (`plan_build`), and a snapshot's stamp. Unit tests call it with inline values.

`check_options` judges the options against the declaration before anything is read.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from pyspark.sql import DataFrame

from parity.core.catalog import Catalog
from parity.core.conf import FeatureSetDecl, Settings, SourceQualityConf
from parity.core.durations import utc_naive
from parity.core.hashing import SCHEME, json_digest, package_digest
from parity.core.versioned import is_versioned
from parity.features import quality
from parity.features.compute import check_declaration
from parity.features.incremental import (
    BUILD_STATE_KEY,
    BuildInputs,
    BuildOptionError,
    BuildRange,
    BuildState,
    DeclarationChangedError,
    midnight,
    plan_build,
)
from parity.features.quality import require_columns
from parity.features.snapshots import snapshot_quality
from parity.features.sources import quarantine_table, source_contract


def transform_code_hash(scheme: str = SCHEME) -> str:
    """A digest of the library code behind every feature: every module of `parity.features`
    (transforms, PII redaction, validation, computation, builds, as-of joins, training sets).
    Recorded with every run in `audit.runs`, and in a feature table's build state."""
    return package_digest("parity.features", scheme)


def inputs_as_recorded(inputs: BuildInputs, state: BuildState | None) -> BuildInputs:
    """`inputs` as `state` would have recorded them: their code digest of the scheme it records
    (a build recorded before digest schemes: the source text's), so that it compares as recorded."""
    if state is None or state.hash_scheme == SCHEME:
        return inputs
    return replace(inputs, code=transform_code_hash(state.hash_scheme))


@dataclass(frozen=True)
class BuildOptions:
    """How a build was asked to run: the `build_features` job's flags.

    - `backfill` (first day, last day): recompute the output rows of those days only.
    - `full_refresh`: recompute everything (required after the declaration changed).
    - `now`: the build's time: freshness is checked against it and a snapshot set's rows are
      stamped with it (the wall clock by default; freshness is then not checked).
    - `assume_valid_since`: a snapshot set's first build (or full refresh) is stamped at the
      midnight of this day, which the user vouches its values held since.
    """

    backfill: tuple[dt.date, dt.date] | None = None
    full_refresh: bool = False
    now: dt.datetime | None = None
    assume_valid_since: dt.date | None = None


@dataclass(frozen=True)
class BuildFacts:
    """What planning one build read, as plain values (`decide_build` reads nothing else)."""

    decl: FeatureSetDecl
    source_table: str
    conf: SourceQualityConf  # the checks the source gets (`quality_conf`)
    inputs: BuildInputs  # what a build of the whole source reads now
    table_version: int | None  # the feature table's newest version (None before its first build)
    table_versioned: bool  # its rows carry landing times (True when there is no table yet)
    newest_state: BuildState | None  # the build state of the newest commit, if that is a build's
    live_state: BuildState | None  # the newest build state, further back if a later commit is not a build's
    compared: BuildInputs | None  # `inputs` in the scheme `newest_state` records (None without one)
    clock: dt.datetime  # the build's time (`BuildOptions.now`, or the wall clock when read), UTC


@dataclass(frozen=True)
class BuildDecision:
    """What `decide_build` decided: which rows to recompute, from which build state, and a
    snapshot's stamp."""

    state: BuildState | None
    range: BuildRange
    inputs: BuildInputs | None  # recorded with the build; None for a backfill, which reads part of the source
    stamp: dt.datetime | None = None  # a snapshot set's: the feature time of the rows it writes


@dataclass
class PlannedBuild:
    """A feature set build whose checks have all passed: nothing is written yet."""

    decl: FeatureSetDecl
    source_table: str
    source: DataFrame = field(repr=False)
    conf: SourceQualityConf
    state: BuildState | None
    range: BuildRange
    inputs: BuildInputs | None  # what the build reads; None for a backfill, which reads part of the source
    table_version: int | None  # the feature table's version when planned (None before its first build)
    stamp: dt.datetime | None = None  # a snapshot set's: the feature time of the rows it writes
    assumed_valid_since: dt.date | None = (
        None  # a snapshot's first build, stamped at that day by the user's word
    )


def check_options(decl: FeatureSetDecl, options: BuildOptions) -> None:
    """The options that cannot apply to `decl`, whatever its table holds.

    Raises:
        BuildOptionError: `assume_valid_since` for a set with event times.
    """
    if decl.kind != "snapshot" and options.assume_valid_since is not None:
        raise BuildOptionError(
            "feature set {name} has event times: {assume_valid_since} applies to snapshot sets only",
            name=decl.name,
        )


def quality_conf(settings: Settings, decl: FeatureSetDecl) -> SourceQualityConf:
    """The checks `decl`'s source gets: its declared quality, with a snapshot set's own rules."""
    conf = settings.source_quality(decl.source)
    return snapshot_quality(decl, conf) if decl.kind == "snapshot" else conf


def read_build_facts(
    catalog: Catalog, settings: Settings, decl: FeatureSetDecl, options: BuildOptions
) -> tuple[BuildFacts, DataFrame]:
    """Read what planning a build needs, checking the source on the way.

    Returns:
        The facts, and the source's frame at the version they name (what the build reads).

    Raises:
        MissingColumnsError, DeclarationError, StaleSourceError.
    """
    source_table, conf = settings.source_table(decl.source), quality_conf(settings, decl)
    source, source_version = catalog.read_versioned(source_table)
    if conf.columns:
        require_columns(source, source_contract(conf), source=source_table)
    check_declaration(catalog.spark, decl, source.schema, conf)
    if options.now is not None:
        quality.check_freshness(source, conf, source=source_table, now=options.now)
    inputs = BuildInputs(
        source_table,
        source_version,
        catalog.table_id(source_table),
        json_digest(conf.model_dump(mode="json")),
        transform_code_hash(SCHEME),
        catalog.table_id(quarantine_table(source_table)),
    )
    version = catalog.version(decl.table)
    newest = live = None
    if version is not None:
        newest = BuildState.from_metadata(catalog.commit_metadata(decl.table, version))
        live = newest or BuildState.from_metadata(catalog.latest_commit_metadata(decl.table, BUILD_STATE_KEY))
    facts = BuildFacts(
        decl=decl,
        source_table=source_table,
        conf=conf,
        inputs=inputs,
        table_version=version,
        table_versioned=version is None or is_versioned(catalog.snapshot(decl.table, version)),
        newest_state=newest,
        live_state=live,
        compared=None if newest is None else inputs_as_recorded(inputs, newest),
        clock=utc_naive(options.now or dt.datetime.now(dt.UTC)),
    )
    return facts, source


def decide_build(facts: BuildFacts, options: BuildOptions) -> BuildDecision:
    """Decide a build from what was read, reading nothing.

    The newest commit's build state, if the newest commit is a build's, means nothing (no
    rollback, OPTIMIZE or other writer) has touched the table since, so it may be up to date;
    otherwise the live build state further back decides which rows to recompute.

    Raises:
        DeclarationChangedError: the table was built before rows kept their landing times, or
            under another declaration (see `plan_build`), and this is not a full refresh.
        BuildOptionError: a snapshot table with a history but no build state, or
            `assume_valid_since` for one that exists, without `full_refresh`; a vouched day
            after the build's time.
        ValueError: as `plan_build`; a snapshot stamp not after the table's last build.
    """
    decl, exists = facts.decl, facts.table_version is not None
    if exists and not options.full_refresh and not facts.table_versioned:
        raise DeclarationChangedError(
            f"{decl.table} was built before feature rows kept their landing times (landed_at, superseded_at)",
            table=decl.table,
        )
    build = plan_build(
        decl,
        facts.live_state,
        backfill=options.backfill,
        full_refresh=options.full_refresh,
        inputs=facts.compared,
    )
    inputs = None if options.backfill else facts.inputs
    if decl.kind != "snapshot":
        return BuildDecision(facts.live_state, build, inputs)
    if (
        exists and facts.live_state is None and not options.full_refresh
    ):  # a first build would restart its history
        raise BuildOptionError(
            "{table} holds a snapshot history but no build state; {full_refresh} restarts it, "
            "if that is what you want",
            table=decl.table,
        )
    vouched = options.assume_valid_since
    if vouched is not None and exists and not options.full_refresh:
        raise BuildOptionError(
            "{assume_valid_since} stamps the first build of {table}, which exists already; "
            "add {full_refresh} to restart it",
            table=decl.table,
        )
    stamp = facts.clock
    if vouched is not None:
        if vouched > stamp.date():
            raise BuildOptionError(
                "{assume_valid_since} {day} is after this build ({today}): "
                "values cannot be vouched for in the future",
                table=decl.table,
                day=vouched,
                today=stamp.date(),
            )
        stamp = midnight(vouched)
    if build.start is not None and not build.up_to_date and stamp <= build.start:
        raise ValueError(
            f"{decl.table}: this build's time {stamp.isoformat()} is not after its last build's, "
            f"{build.start.isoformat()}"
        )
    return BuildDecision(facts.live_state, build, inputs, stamp)


def plan_feature_build(
    catalog: Catalog, settings: Settings, decl: FeatureSetDecl, options: BuildOptions | None = None
) -> PlannedBuild:
    """Run every check a build needs before it writes (`check_options`, `read_build_facts`,
    `decide_build`). A job plans all its builds before running any.

    A snapshot set's rows are stamped with `options.now` (the wall clock by default), or, for
    its first build or a full refresh, at the midnight of `options.assume_valid_since`.
    """
    options = options or BuildOptions()
    check_options(decl, options)
    facts, source = read_build_facts(catalog, settings, decl, options)
    decision = decide_build(facts, options)
    return PlannedBuild(
        decl,
        facts.source_table,
        source,
        facts.conf,
        decision.state,
        decision.range,
        decision.inputs,
        facts.table_version,
        decision.stamp,
        options.assume_valid_since if decl.kind == "snapshot" else None,
    )
