"""Building declared feature sets: plan every check before any write (`build_plan`), then
validate, quarantine and upsert each set's slice with one Delta MERGE on (entity, feature time).

Rerunning a build over the same input matches every row and changes none.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field, replace

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from parity.core.catalog import Catalog
from parity.core.columns import QUARANTINE_RULE
from parity.core.conf import FeatureSetDecl, Settings
from parity.core.hashing import HASH_SCHEME_KEY, SCHEME
from parity.core.versioned import LANDED_AT, LANDED_AT_KEY, SUPERSEDED_AT, current_rows, is_versioned
from parity.features import quality
from parity.features.build_plan import (
    BuildOptions,
    PlannedBuild,
    inputs_as_recorded,
    plan_feature_build,
    transform_code_hash,
)
from parity.features.compute import compute_feature_set, declared_sets
from parity.features.incremental import (
    BUILD_STATE_KEY,
    FEATURE_DATE,
    BuildOptionError,
    BuildRange,
    iso,
    new_rows,
    own_row,
    period_end,
    read_slice,
)
from parity.features.snapshots import changed_rows
from parity.features.sources import (
    SOURCE_ROW_HASH,
    SOURCE_ROW_OCCURRENCE,
    quarantine_table,
    required_columns,
    source_contract,
    validate_source,
)

# What callers imported from here before planning had a module of its own.
__all__ = [
    "BuildOptions",
    "BuildResult",
    "PlannedBuild",
    "build_declared_sets",
    "build_feature_set",
    "inputs_as_recorded",
    "plan_feature_build",
    "run_feature_build",
    "transform_code_hash",
]

log = logging.getLogger(__name__)


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
    landing: dict[str, object] = field(
        default_factory=dict
    )  # a full refresh: the landing times it kept and reset
    assumed_valid_since: dt.date | None = (
        None  # a snapshot's first build, stamped at that day on the user's word
    )

    def summary(self) -> dict[str, object]:
        """What a job reports of this build."""
        return {
            "table": self.table,
            "version": self.version,
            "quarantine_table": self.quarantine_table,
            "range": self.range.as_dict(),
            "watermark": self.watermark,
            "merge": {
                k: v for k, v in self.merge.items() if k.startswith("numTarget") or k == "numOutputRows"
            },
            "quarantine_rules": self.quarantine_rules,
            "ignored_columns": self.ignored_columns,
            "seconds": self.seconds,
            **({"landing": self.landing} if self.landing else {}),
            **(
                {"assumed_valid_since": self.assumed_valid_since.isoformat()}
                if self.assumed_valid_since
                else {}
            ),
        }


def run_feature_build(catalog: Catalog, planned: PlannedBuild) -> BuildResult:
    """Validate the planned slice of the source, quarantine its bad rows, and upsert the features.

    The quarantine and the feature table are each written in one commit (none when nothing
    changed); a caller that fails later rolls both back through the catalog. An up-to-date
    build (see `plan_build`) reads and writes nothing.
    """
    decl, source, build, state = planned.decl, planned.source, planned.range, planned.state
    quarantine_name = quarantine_table(planned.source_table)
    ignored = (
        quality.unexpected_columns(source, source_contract(planned.conf)) if planned.conf.columns else []
    )
    if build.up_to_date and state is not None:  # nothing new since the last build: read and write nothing
        return BuildResult(
            feature_set=decl.name,
            table=decl.table,
            version=planned.table_version or 0,  # the newest commit when planned, whose build state this is
            quarantine_table=quarantine_name,
            range=build,
            watermark=state.watermark,
            counts={"in": 0, "out": 0, "quarantined": 0, "rows_written": 0},
            ignored_columns=ignored,
        )
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step], clock = round(now - clock, 3), now

    read = read_slice(source, decl, build).cache()  # read once: validated, and counted apart from the split
    valid, quarantined = validate_source(
        read, planned.conf, source=planned.source_table, required=required_columns(decl)
    )
    valid = valid.cache()
    own_quarantine = new_rows(
        quarantined, decl, build
    )  # usually empty: tallied only when rows in and out differ
    try:
        newest, valid_count, read_count = _newest_and_counts(
            decl, read, valid, build
        )  # one Spark action for all three
        marks = [m for m in (state.watermark if state else None, newest) if m is not None]
        watermark = planned.stamp or (
            max(marks) if marks else None
        )  # a snapshot's: the time it stamps its rows with
        end = build.end if build.end is not None else (planned.stamp or period_end(decl, watermark))
        build = BuildRange(build.start, end, build.read_from, build.reason)
        tally = (
            {}
            if read_count == valid_count
            else {r[0]: int(r[1]) for r in own_quarantine.groupBy(QUARANTINE_RULE).count().collect()}
        )
        lap("validate")
        if tally or not catalog.exists(quarantine_name):
            catalog.merge(
                own_quarantine,
                quarantine_name,
                keys=[SOURCE_ROW_HASH, QUARANTINE_RULE, SOURCE_ROW_OCCURRENCE],
            )
        lap("quarantine")
        computed = compute_feature_set(decl, valid, stamped_at=planned.stamp).filter(
            build.output_filter(decl.timestamp)
        )
        if decl.kind == "snapshot" and build.start is not None and planned.table_version is not None:
            computed = changed_rows(
                decl, computed, current_rows(catalog.snapshot(decl.table, planned.table_version))
            )
        if planned.assumed_valid_since is not None:
            log.warning(
                "%s: rows stamped %s, on the user's word (--assume-valid-since)", decl.table, planned.stamp
            )
        metadata: dict[str, object] = {
            BUILD_STATE_KEY: {
                "watermark": iso(watermark),
                "declaration_hash": decl.table_hash(SCHEME),
                HASH_SCHEME_KEY: SCHEME,  # of the declaration hash and the inputs' code digest
                "range": build.as_dict(),
                "source": planned.source_table,
                **(
                    {"assumed_valid_since": planned.assumed_valid_since.isoformat()}
                    if planned.assumed_valid_since
                    else {}
                ),
                "inputs": None
                if planned.inputs is None
                else replace(planned.inputs, quarantine_id=catalog.table_id(quarantine_name)).as_dict(),
            }
        }
        before = catalog.version(decl.table)
        dated = computed.withColumn(FEATURE_DATE, F.to_date(decl.timestamp))
        if build.start is None:  # written whole: a file per day (a MERGE repartitions its own writes)
            dated = dated.repartition(FEATURE_DATE)
        version = catalog.merge(
            dated,
            decl.table,
            keys=[*decl.entity, decl.timestamp],
            scope=None
            if decl.kind == "snapshot"
            else build.target_predicate(decl.timestamp),  # a snapshot only adds rows
            partition_by=[FEATURE_DATE],
            commit_metadata=metadata,
            replace=build.start is None,
            versioned=True,  # rows carry when they landed and were superseded: as-known-at joins read that
        )
        lap("compute and merge")
        merged = catalog.operation_metrics(decl.table, version) if version != before else {}
        landing = (
            _landing_report(catalog, decl.table, before, version)
            if build.start is None and before is not None
            else {}
        )
        counts = {
            "in": read_count,  # counted apart from the split, to reconcile
            "out": valid_count,
            "quarantined": sum(tally.values()),
            "rows_written": _rows_written(merged),
        }
        lap("count")
    finally:
        for cached in (read, valid):
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
        ignored_columns=ignored,
        seconds=seconds,
        landing=landing,
        assumed_valid_since=planned.assumed_valid_since,
    )


def _newest_and_counts(
    decl: FeatureSetDecl, read: DataFrame, valid: DataFrame, build: BuildRange
) -> tuple[dt.datetime | None, int, int]:
    """The newest event time among validated rows (what the watermark becomes; None for a
    snapshot), and how many rows are the build's own (`new_rows`) among the validated and
    among those read, in one Spark action. The two counts differ by the rows quarantined."""
    own = own_row(decl, build)
    newest = F.lit(None).cast("timestamp") if decl.event_time is None else F.max(decl.event_time)
    out = valid.agg(newest.alias("newest"), F.count_if(own).alias("out"))
    row = out.crossJoin(read.agg(F.count_if(own).alias("in"))).first()
    return (None, 0, 0) if row is None else (row["newest"], int(row["out"]), int(row["in"]))


def _landing_report(catalog: Catalog, table: str, before: int, version: int) -> dict[str, object]:
    """What a full refresh did to landing times: rows that kept theirs (equal to a current row
    of the table replaced), rows that landed with it, and superseded versions dropped."""
    landed = dt.datetime.fromisoformat(str(catalog.commit_metadata(table, version)[LANDED_AT_KEY]))
    written = (
        catalog.snapshot(table, version)
        .agg(
            F.count_if(F.col(LANDED_AT) < F.lit(landed)).alias("kept"),
            F.count_if(F.col(LANDED_AT) >= F.lit(landed)).alias("reset"),
        )
        .first()
    )
    replaced = catalog.snapshot(table, before)
    report: dict[str, object] = (
        {"kept": int(written["kept"]), "reset": int(written["reset"])} if written is not None else {}
    )
    if is_versioned(replaced):
        report["superseded_dropped"] = replaced.filter(F.col(SUPERSEDED_AT).isNotNull()).count()
    else:
        report["note"] = (
            f"{table}@{before} was of the older layout: landing times kept where its change data feed proves them"
        )
    return report


def _rows_written(metrics: dict[str, int]) -> int:
    """Rows a commit wrote: all of them for a WRITE, those inserted, updated or deleted for a MERGE."""
    if "numTargetRowsInserted" in metrics:
        return sum(
            metrics.get(k, 0)
            for k in ("numTargetRowsInserted", "numTargetRowsUpdated", "numTargetRowsDeleted")
        )
    return metrics.get("numOutputRows", 0)


def build_feature_set(
    catalog: Catalog, settings: Settings, decl: FeatureSetDecl, options: BuildOptions | None = None
) -> BuildResult:
    """Plan and run one feature set build (see `plan_feature_build` and `run_feature_build`)."""
    return run_feature_build(catalog, plan_feature_build(catalog, settings, decl, options))


def build_declared_sets(
    catalog: Catalog,
    settings: Settings,
    names: list[str] | None = None,
    options: BuildOptions | None = None,
) -> list[BuildResult]:
    """Build the named feature sets (every declared one by default), in a stable order.

    Every check of every set runs before the first write, so a bad set stops the build
    with nothing written; a failure after that leaves the rollback to the caller's catalog.
    `options.assume_valid_since` goes to the snapshot sets among them.

    Raises:
        ValueError: a name is not declared; and as `plan_feature_build`.
    """
    options = options or BuildOptions()
    chosen = declared_sets(settings, names)
    if options.assume_valid_since is not None and not any(decl.kind == "snapshot" for decl in chosen):
        raise BuildOptionError(
            "{assume_valid_since} applies to snapshot feature sets, and none is being built"
        )
    restarted = [
        decl.name
        for decl in chosen
        if decl.kind == "snapshot" and options.full_refresh and not names and catalog.exists(decl.table)
    ]
    if restarted:  # a snapshot's source holds only the present: its history cannot be rebuilt
        raise BuildOptionError(
            "{full_refresh} would restart the history of snapshot feature set(s) {sets}; "
            "name them with {feature_sets} to do so",
            sets=", ".join(restarted),
        )
    events_options = replace(options, assume_valid_since=None)
    plans = [
        plan_feature_build(catalog, settings, decl, options if decl.kind == "snapshot" else events_options)
        for decl in chosen
    ]
    return [run_feature_build(catalog, planned) for planned in plans]
