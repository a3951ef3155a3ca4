"""Incremental feature builds: which output rows a build recomputes, and what it reads.

Builds are incremental and idempotent. Each build records a watermark (the newest source
event time it processed) with its Delta commit; the next build recomputes only the output
rows from `lookback` before the start of the watermark's period (hour or day, the set's
grain) onwards, reading just the source history its transforms need. A backfill recomputes
a chosen range of days and leaves the rest of the table untouched. A table built under
another declaration must be rebuilt in full. A snapshot set (no event time) compares every
entity with its newest row instead (`parity.features.snapshots`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from parity.core.columns import FEATURE_DATE
from parity.core.conf import FeatureSetDecl
from parity.core.durations import floor_to_grain, grain_end
from parity.core.hashing import SCHEME, recorded_scheme
from parity.features.compute import compute_feature_set, history

BUILD_STATE_KEY = "parity.build"


class DeclarationChangedError(RuntimeError):
    """A feature table was built from another version of its declaration or transforms (or
    before its rows kept their landing times): only a full refresh rebuilds it.

    `table` names it, `why` says what differs; `recorded` and `now` are the table hashes it was
    built under and this build's, where those are what differ.
    """

    def __init__(self, why: str, *, table: str, recorded: str | None = None, now: str | None = None) -> None:
        super().__init__(f"{why}; rebuild it with full_refresh=True")
        self.why, self.table, self.recorded, self.now = why, table, recorded, now


class BuildOptionError(ValueError):
    """Build options that do not fit the feature sets or the tables being built.

    `template` says what is wrong with a `{...}` slot for each option it names (the keys of
    `OPTIONS`) and for each of its `values` (the table, the day): the library says an option as
    the build's parameter (`full_refresh=True`), the command line as its flag (`parity.app.wording`).
    """

    OPTIONS: ClassVar[Mapping[str, str]] = {
        "full_refresh": "full_refresh=True",
        "assume_valid_since": "assume_valid_since",
        "feature_sets": "names",
    }

    def __init__(self, template: str, **values: object) -> None:
        self.template, self.values = template, values
        super().__init__(self.say(self.OPTIONS))

    def say(self, options: Mapping[str, str]) -> str:
        """The message, each option said as `options` says it."""
        return self.template.format(**options, **self.values)


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
    up_to_date: bool = (
        False  # the table already holds what this source version gives: nothing to read or write
    )

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
            parts += [
                f"{alias}.{FEATURE_DATE} >= DATE '{self.start.date()}'",
                f"{alias}.`{column}` > TIMESTAMP '{self.start}'",
            ]
        if self.end is not None:
            parts += [
                f"{alias}.{FEATURE_DATE} <= DATE '{self.end.date()}'",
                f"{alias}.`{column}` <= TIMESTAMP '{self.end}'",
            ]
        return " AND ".join(parts) or None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "read_from": iso(self.read_from),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class BuildInputs:
    """What a build's output follows from besides its declaration: the source table (its name,
    the version read, and Delta's id for it, new if the table is ever created again), the digest
    of the source's quality conf (its rules decide which rows are quarantined), the digest of
    parity's feature code (`transform_code_hash`), and Delta's id for the quarantine table as
    the build left it (new if it was deleted and created again)."""

    source: str
    source_version: int
    source_id: str | None
    quality: str
    code: str
    quarantine_id: str | None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: object) -> BuildInputs | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(**data)
        except TypeError:  # recorded by another version of parity: never taken as the same
            return None


@dataclass(frozen=True)
class BuildState:
    """What a feature table's last build recorded with its commit: the watermark, the
    declaration's hash, and the inputs it read (absent after a backfill, which builds part of
    the source only, and from the records of builds made before parity recorded them).
    `hash_scheme` is the scheme of its code digests (`parity.core.hashing`; the source text for
    a build recorded before schemes were): they are checked with it."""

    watermark: dt.datetime | None
    declaration_hash: str
    inputs: BuildInputs | None = None
    hash_scheme: str = SCHEME

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any]) -> BuildState | None:
        state = metadata.get(BUILD_STATE_KEY)
        if not isinstance(state, dict):
            return None
        mark = state.get("watermark")
        return cls(
            dt.datetime.fromisoformat(mark) if mark else None,
            str(state.get("declaration_hash", "")),
            BuildInputs.from_dict(state.get("inputs")),
            recorded_scheme(state),
        )


def iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def period_end(decl: FeatureSetDecl, moment: dt.datetime | None) -> dt.datetime | None:
    """Where a build's output ends: the end of the hour or day (the set's grain) of the newest
    source event (None without one)."""
    return None if moment is None else grain_end(moment, decl.grain)


def plan_build(
    decl: FeatureSetDecl,
    state: BuildState | None,
    *,
    backfill: tuple[dt.date, dt.date] | None = None,
    full_refresh: bool = False,
    inputs: BuildInputs | None = None,
) -> BuildRange:
    """Decide which output rows a build recomputes.

    - No table yet, or `full_refresh`: everything.
    - `backfill` (first day, last day): the output rows of those days, whatever the watermark.
    - `inputs` are those `state` recorded: nothing (`up_to_date`). The caller passes them only
      when the commit holding `state` is the table's newest, their code digest of the scheme
      `state` records; then the table holds what these inputs give under this declaration, and
      recomputing would change no row.
    - Otherwise: from `lookback` before the start of the watermark's period onwards; for a
      snapshot set, the entities whose values changed since the last build (its watermark).

    Raises:
        ValueError: a backfill of a snapshot set, which has no past.
        DeclarationChangedError: the table was built under another table hash (see
            `FeatureSetDecl.table_hash`, recomputed with the scheme `state` records) and this
            is not a full refresh: mixing rows of two definitions would be silent skew.
    """
    if backfill is not None and decl.kind == "snapshot":
        raise BuildOptionError(
            "feature set {name} is a snapshot: it has no past to backfill (rebuild it with {full_refresh}, "
            "and {assume_valid_since} DAY if you vouch for its values)",
            name=decl.name,
        )
    reads = history(decl)
    if full_refresh or state is None:
        return BuildRange(None, None, None, "full refresh" if full_refresh else "first build")
    current = decl.table_hash(state.hash_scheme)
    if state.declaration_hash != current:
        raise DeclarationChangedError(
            f"feature set {decl.name} changed since {decl.table} was built (declaration hash "
            f"{state.declaration_hash} -> {current})",
            table=decl.table,
            recorded=state.declaration_hash,
            now=current,
        )
    if backfill is not None:
        first, last = backfill
        start = midnight(first)
        return BuildRange(
            start, midnight(last + dt.timedelta(days=1)), start - reads, f"backfill {first}..{last}"
        )
    if inputs is not None and state.inputs == inputs:
        return BuildRange(
            None,
            None,
            None,
            f"up to date: {inputs.source} version {inputs.source_version} already built",
            up_to_date=True,
        )
    if state.watermark is None:
        return BuildRange(None, None, None, "no watermark recorded")
    if decl.kind == "snapshot":  # every entity, against its newest row: those that changed get a row
        return BuildRange(
            state.watermark,
            None,
            None,
            f"snapshot: the entities changed since the build of {state.watermark.isoformat()}",
        )
    start = floor_to_grain(floor_to_grain(state.watermark, decl.grain) - decl.lookback_delta, decl.grain)
    return BuildRange(start, None, start - reads, f"incremental from watermark {state.watermark.isoformat()}")


def read_slice(source: DataFrame, decl: FeatureSetDecl, build: BuildRange) -> DataFrame:
    """The source rows a build reads: from `read_from` up to its end, plus rows without an event time
    (so that validation quarantines them)."""
    if decl.event_time is None:  # a snapshot: all of it, every build
        return source
    time = F.col(decl.event_time)
    keep = F.lit(True)
    if build.read_from is not None:
        keep &= time >= F.lit(build.read_from)
    if build.end is not None:
        keep &= time < F.lit(build.end)
    return source.filter(keep | time.isNull())


def new_rows(rows: DataFrame, decl: FeatureSetDecl, build: BuildRange) -> DataFrame:
    """The rows of a slice that are this build's own (not history read for context)."""
    return rows if build.start is None or decl.event_time is None else rows.filter(own_row(decl, build))


def own_row(decl: FeatureSetDecl, build: BuildRange) -> Column:
    """Whether a row of a slice is this build's own (see `new_rows`), as a column."""
    if build.start is None or decl.event_time is None:
        return F.lit(True)
    return (F.col(decl.event_time) >= F.lit(build.start)) | F.col(decl.event_time).isNull()


def preview_feature_set(decl: FeatureSetDecl, valid: DataFrame, *, newest: dt.datetime | None) -> DataFrame:
    """What a full build writes from these validated source rows, without writing it: the
    declared columns, up to the end of the period of `newest` (the newest event of the whole source,
    see `newest_event_time`, so that a sample ends where the job's table ends). For notebooks.
    """
    return compute_feature_set(decl, valid).filter(
        BuildRange(None, period_end(decl, newest), None, "preview").output_filter(decl.timestamp)
    )
