"""Feature-set declarations (conf/features/*.yaml): transforms by dotted path, typed outputs.

A transform is named by its dotted path and resolved (imported) when the declaration loads,
so a typo fails on load; its parameters are checked against the function's signature.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator, model_validator

from parity.core.conf.base import SparkType, StrictModel, check_table_name
from parity.core.hashing import declaration_digest


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
        raise ValueError(f"{path} takes no parameter(s) {', '.join(unknown)}; it takes {', '.join(sorted(keyword))}")
    missing = sorted(n for n, p in keyword.items() if p.default is p.empty and n not in params and n not in supplied)
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
    keys, `timestamp` and every declared feature with its declared type. Incremental builds
    reprocess `lookback_days` before the recorded watermark (for late events) plus the
    history the transforms read; `max_age_days` bounds how old a joined value may be.
    """

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    description: str = Field(min_length=1)
    table: str
    source: str = Field(description="A key of `tables:` (e.g. raw_events) or a logical table name (raw.x).")
    entity: list[str] = Field(min_length=1)
    event_time: str = Field(description="The source's event-time column: what watermarks and backfills use.")
    timestamp: str = "feature_ts"
    transforms: list[TransformStep] = Field(min_length=1)
    features: list[FeatureColumn] = Field(min_length=1)
    request_time: list[RequestTimeFeature] = Field(default_factory=list)
    lookback_days: int = Field(2, ge=0)
    history_days: int | None = Field(None, ge=0, description="Override the history the transforms declare.")
    max_age_days: int | None = Field(None, gt=0)

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
            raise ValueError(f"feature set {self.name} declares its key or time column(s) {', '.join(keys)} as features")
        return self

    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def code_hash(self) -> str:
        """A digest of this whole declaration and the source code of every transform it names
        (request-time ones included): what a model's feature spec records."""
        functions = [step.function() for step in self.transforms] + [r.function() for r in self.request_time]
        return declaration_digest(self.model_dump(mode="json"), functions)

    def table_hash(self) -> str:
        """A digest of what decides the rows of the feature table: entity, source, times,
        transforms (with their code) and the outputs' names and types. Descriptions, the
        lookback, the TTL and request-time features do not change a row, so they are left out;
        a table built under another table hash must be rebuilt in full."""
        decides = self.model_dump(mode="json", include={"table", "source", "entity", "event_time", "timestamp", "transforms", "history_days"})
        decides["features"] = [[f.name, f.type] for f in self.features]
        return declaration_digest(decides, [step.function() for step in self.transforms])

