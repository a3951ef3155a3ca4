"""Feature-set declarations (conf/features/*.yaml): transforms by dotted path, typed outputs.

A transform is named by its dotted path and resolved (imported) when the declaration loads,
so a typo fails on load; its parameters are checked against the function's signature.
"""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from parity.core.conf.base import SparkType, StrictModel, check_table_name
from parity.core.durations import Grain, duration_label, parse_duration
from parity.core.hashing import SCHEME, closure_digest, declaration_digest

# What every feature table holds besides its declared columns: the partition date and the row
# version's times (parity.core.columns.FEATURE_DATE, parity.core.versioned.VERSION_COLUMNS;
# conf imports no Spark code, so the names are repeated here, and a test holds them equal).
TABLE_COLUMNS = ("feature_date", "landed_at", "superseded_at")
Duration = Annotated[str, BeforeValidator(duration_label)]  # "6h", "1d", "7d", "2w": a length with its unit
# Fields added after models recorded declarations: left out of the digests while they hold
# their defaults, so that a declaration which does not use them keeps the digests it had.
_ADDED_FIELDS = {"kind": "events", "grain": "day", "lookback": None, "max_age": None, "history": None}


def resolve_callable(path: str) -> Callable[..., Any]:
    """The function a dotted path `module.function` names (imported now).

    Raises:
        ValueError: the module cannot be imported or has no such function.
    """
    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ValueError(f"'{path}' is not a dotted path module.function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"unknown transform '{path}': cannot import {module_name} ({exc})") from None
    fn = getattr(module, attribute, None)
    if not callable(fn):
        raise ValueError(f"unknown transform '{path}': {module_name} has no function {attribute}")
    return fn


def _check_params(path: str, params: dict[str, Any], supplied: tuple[str, ...] = ()) -> None:
    keyword = {
        name: p
        for name, p in inspect.signature(resolve_callable(path)).parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name != "df"
    }
    if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(resolve_callable(path)).parameters.values()):
        return
    unknown = sorted(set(params) - set(keyword))
    if unknown:
        raise ValueError(
            f"{path} takes no parameter(s) {', '.join(unknown)}; it takes {', '.join(sorted(keyword))}"
        )
    missing = sorted(
        n for n, p in keyword.items() if p.default is p.empty and n not in params and n not in supplied
    )
    if missing:
        raise ValueError(f"{path} needs parameter(s) {', '.join(missing)}")


class FeatureColumn(StrictModel):
    """One output column of a feature set."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    type: SparkType
    description: str = Field(min_length=1)


class TransformStep(StrictModel):
    """One transform of a feature set: a function's dotted path and its keyword parameters."""

    fn: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fn")
    @classmethod
    def _importable(cls, value: str) -> str:
        resolve_callable(value)
        return value

    @model_validator(mode="after")
    def _params_match(self) -> TransformStep:
        _check_params(self.fn, self.params)
        return self

    def function(self) -> Callable[..., Any]:
        """The function the step names."""
        return resolve_callable(self.fn)


class RequestTimeFeature(TransformStep):
    """A feature computed once the spine is known (label time in training, score time in scoring).

    The transform receives `as_of_column` (the spine's time) and `output` on top of `params`.
    """

    output: FeatureColumn

    @model_validator(mode="after")
    def _params_match(self) -> RequestTimeFeature:
        _check_params(self.fn, {**self.params, "output": self.output.name}, supplied=("as_of_column",))
        return self


class FeatureSetDecl(StrictModel):
    """A declared feature set: one Delta feature table, keyed by entity and feature time.

    Built from one source by `transforms`, applied in order; the result must hold the entity
    keys, `timestamp` and every declared feature with its declared type. `grain` (hour or day)
    is the period windowed transforms aggregate by; each row is stamped at the end of its
    period. Incremental builds reprocess `lookback` before the recorded watermark (for late
    events) plus the history the transforms read; `max_age` bounds how old a joined value may
    be. Time fields carry their unit (`6h`, `2d`); the older day counts (`lookback_days`,
    `max_age_days`, `history_days`) keep their meaning. A `snapshot` set reads a source without
    event time (a dimension table): each build stamps the rows whose values changed with its
    own time, and its transforms produce everything but `timestamp`.
    """

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    description: str = Field(min_length=1)
    table: str
    source: str = Field(description="A key of `tables:` (e.g. raw_events) or a logical table name (raw.x).")
    entity: list[str] = Field(min_length=1)
    kind: Literal["events", "snapshot"] = Field(
        "events",
        description=(
            "events: rows from timed source events; "
            "snapshot: a source without event time, stamped by each build."
        ),
    )
    event_time: str | None = Field(
        None, description="The source's event-time column: what watermarks and backfills use (events sets)."
    )
    timestamp: str = "feature_ts"
    transforms: list[TransformStep] = Field(min_length=1)
    features: list[FeatureColumn] = Field(min_length=1)
    request_time: list[RequestTimeFeature] = Field(default_factory=list)
    grain: Grain = "day"
    lookback: Duration | None = Field(
        None, description="Reprocess this much before the watermark (late events), e.g. 6h or 2d."
    )
    max_age: Duration | None = Field(
        None, description="A joined row older than this counts as unknown (null)."
    )
    history: Duration | None = Field(None, description="Override the source history the transforms declare.")
    lookback_days: int | None = Field(
        None, ge=0, description="`lookback` in days (the older form); 2 when neither is given."
    )
    history_days: int | None = Field(None, ge=0, description="`history` in days (the older form).")
    max_age_days: int | None = Field(None, gt=0, description="`max_age` in days (the older form).")

    @field_validator("table")
    @classmethod
    def _feature_table(cls, value: str) -> str:
        if not check_table_name(value).startswith("features."):
            raise ValueError(f"'{value}' is not in the features zone (features.<name>)")
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> FeatureSetDecl:
        names = [f.name for f in self.features] + [r.output.name for r in self.request_time]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate feature name(s) {', '.join(duplicates)} in feature set {self.name}")
        keys = sorted(set(names) & {*self.entity, self.timestamp})
        if keys:
            raise ValueError(
                f"feature set {self.name} declares its key or time column(s) {', '.join(keys)} as features"
            )
        reserved = sorted(set(names + [*self.entity, self.timestamp]) & set(TABLE_COLUMNS))
        if reserved:
            raise ValueError(
                f"feature set {self.name} declares column(s) {', '.join(reserved)}, which every feature "
                "table holds itself; rename them"
            )
        return self

    @model_validator(mode="after")
    def _times(self) -> FeatureSetDecl:
        for new, old in (
            ("lookback", "lookback_days"),
            ("max_age", "max_age_days"),
            ("history", "history_days"),
        ):
            if getattr(self, new) is not None and getattr(self, old) is not None:
                raise ValueError(
                    f"feature set {self.name} gives both {new} and {old}: keep {new} (with its unit, e.g. 2d)"
                )
        if self.kind == "events" and self.event_time is None:
            raise ValueError(
                f"feature set {self.name} needs event_time (the source's event-time column), or kind: "
                "snapshot for a source without one"
            )
        if self.kind == "snapshot":
            self._check_snapshot()
        if self.max_age is not None and not parse_duration(self.max_age):
            raise ValueError(f"feature set {self.name}: max_age must be longer than 0")
        for index, step in enumerate(self.transforms):
            takes_grain = "grain" in inspect.signature(step.function()).parameters
            if takes_grain and step.params.get("grain", self.grain) != self.grain:
                raise ValueError(
                    f"feature set {self.name}: transforms[{index}] {step.fn} has grain "
                    f"{step.params['grain']}, the set has grain {self.grain}"
                )
            if (
                not takes_grain
                and self.grain != "day"
                and getattr(step.function(), "reads_history", None) is not None
            ):
                raise ValueError(
                    f"feature set {self.name}: transforms[{index}] {step.fn} computes whole-day windows only; "
                    "at hour grain use parity.transforms.add_rolling_aggregates"
                )
            check = getattr(step.function(), "check_params", None)
            if check is not None:
                check(self.step_params(step))
        return self

    def _check_snapshot(self) -> None:
        if self.event_time is not None:
            raise ValueError(
                f"feature set {self.name} is a snapshot: its rows are stamped by each build, so it takes no event_time"
            )
        if (
            self.max_age_delta is not None
        ):  # an unchanged attribute is not written again, so its row ages while it holds
            raise ValueError(
                f"feature set {self.name} is a snapshot: its rows are written only when values change, so "
                "max_age does not apply"
            )
        for index, step in enumerate(self.transforms):
            if getattr(step.function(), "reads_history", None) is not None:
                raise ValueError(
                    f"feature set {self.name} is a snapshot: transforms[{index}] {step.fn} reads event "
                    "history, which a snapshot has none of"
                )

    @property
    def lookback_delta(self) -> dt.timedelta:
        """How far before the watermark an incremental build reprocesses."""
        if self.lookback is not None:
            return parse_duration(self.lookback)
        return dt.timedelta(days=2 if self.lookback_days is None else self.lookback_days)

    @property
    def max_age_delta(self) -> dt.timedelta | None:
        """How old a joined row may be (None: any age)."""
        if self.max_age is not None:
            return parse_duration(self.max_age)
        return dt.timedelta(days=self.max_age_days) if self.max_age_days else None

    @property
    def history_delta(self) -> dt.timedelta | None:
        """The declared override of the source history the transforms read (None: theirs)."""
        if self.history is not None:
            return parse_duration(self.history)
        return dt.timedelta(days=self.history_days) if self.history_days is not None else None

    def step_params(self, step: TransformStep) -> dict[str, Any]:
        """A step's parameters as it runs: the declared ones, and the set's grain for a
        transform that takes one."""
        if "grain" in inspect.signature(step.function()).parameters:
            return {"grain": self.grain, **step.params}
        return dict(step.params)

    def _digested(self, include: set[str] | None = None) -> dict[str, Any]:
        """The declaration as its digests see it (`_ADDED_FIELDS` left out at their defaults)."""
        data = self.model_dump(mode="json", include=include)
        for name, default in _ADDED_FIELDS.items():
            if data.get(name, default) == default:
                data.pop(name, None)
        return data

    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def code_hash(self, scheme: str = SCHEME) -> str:
        """A digest of this whole declaration and the source code of every transform it names
        (request-time ones included): what a model's feature spec records. `scheme` is the
        digest's (`parity.core.hashing`): a check passes the one the digest was recorded with."""
        functions = [step.function() for step in self.transforms] + [r.function() for r in self.request_time]
        return declaration_digest(self._digested(), functions, scheme)

    def closure_hash(self, scheme: str = SCHEME) -> str:
        """Like `code_hash`, over everything the transforms reach (`parity.core.hashing.closure`):
        the helpers they call, and the helpers those call. What a model's feature spec checks."""
        functions = [step.function() for step in self.transforms] + [r.function() for r in self.request_time]
        return closure_digest(self._digested(), functions, scheme)

    def table_hash(self, scheme: str = SCHEME) -> str:
        """A digest of what decides the rows of the feature table: entity, source, times,
        transforms (with their code) and the outputs' names and types. Descriptions, the
        lookback, the TTL and request-time features do not change a row, so they are left out;
        a table built under another table hash must be rebuilt in full."""
        decides = self._digested(
            {
                "table",
                "source",
                "entity",
                "kind",
                "event_time",
                "timestamp",
                "transforms",
                "history_days",
                "history",
                "grain",
            }
        )
        decides["features"] = [[f.name, f.type] for f in self.features]
        return declaration_digest(decides, [step.function() for step in self.transforms], scheme)
