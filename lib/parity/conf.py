"""Typed, strict configuration: `base.yaml`, overlaid by `<env>.yaml`, then by `--set k=v`.

The conf folder is always passed in by the caller (a job, a notebook, a test); the library
never guesses where it lives. Every model forbids unknown keys, so a typo fails on load with
the dotted name of the offending key. Relative paths in the conf are resolved against the
project root, the folder that holds the conf folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_ENV = "dev"
FEATURES_DIR = "features"
SWEEPS_DIR = "sweeps"
ZONES = ("raw", "features", "training", "predictions", "quarantine", "monitoring", "audit")


class ConfError(ValueError):
    """The configuration cannot be loaded; the message names the key and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConf(_Strict):
    root: str = Field(description="Folder or URI under which every Delta table lives.")


class MlflowConf(_Strict):
    tracking_uri: str = Field(description="sqlite:///file (the embedded default) or http(s):// an `mlflow server`.")
    artifact_root: str | None = Field(
        None, description="Where a new experiment stores run artifacts; unset: the tracking server's own (mlflow server --serve-artifacts)."
    )

    @model_validator(mode="after")
    def _artifacts_somewhere(self) -> MlflowConf:
        if self.artifact_root is None and not self.tracking_uri.startswith(("http://", "https://")):
            raise ValueError("mlflow.artifact_root is required unless mlflow.tracking_uri is an mlflow server (http:// or https://)")
        return self
    experiment: str = "parity"
    registered_model: str = "parity_churn"


class SparkConf(_Strict):
    master: str = "local[*]"
    app_name: str = "parity"
    jars_dir: str = Field(".jars", description="Cached Delta jars (see scripts/fetch_jars.py).")
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
        return value


def _check_table_name(value: str) -> str:
    zone, _, name = value.partition(".")
    if zone not in ZONES or not name or "." in name or "/" in name:
        raise ValueError(f"'{value}' is not a logical table name <zone>.<name> with zone in {', '.join(ZONES)}")
    return value


class TablesConf(_Strict):
    """Logical names of the tables each part reads and writes."""

    raw_customers: str = "raw.customers"
    raw_events: str = "raw.events"
    raw_labels: str = "raw.labels"
    training_set: str = "training.churn"
    predictions: str = "predictions.churn"
    audit_runs: str = "audit.runs"

    @field_validator("*")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return _check_table_name(value)


class NotNullExpectation(_Strict):
    rule: Literal["not_null"]
    column: str


class RangeExpectation(_Strict):
    rule: Literal["range"]
    column: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> RangeExpectation:
        if self.min is None and self.max is None:
            raise ValueError(f"range expectation on '{self.column}' needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range expectation on '{self.column}' has min {self.min} above max {self.max}")
        return self


class AllowedValuesExpectation(_Strict):
    rule: Literal["allowed_values"]
    column: str
    values: list[str | int | float] = Field(min_length=1)


class UniqueExpectation(_Strict):
    rule: Literal["unique"]
    columns: list[str] = Field(min_length=1)


Expectation = Annotated[
    NotNullExpectation | RangeExpectation | AllowedValuesExpectation | UniqueExpectation,
    Field(discriminator="rule"),
]


SPARK_TYPES = ("boolean", "int", "bigint", "float", "double", "string", "date", "timestamp")
SparkType = Literal["boolean", "int", "bigint", "float", "double", "string", "date", "timestamp"]


class SourceQualityConf(_Strict):
    """The contract and expectations of one raw source.

    `columns` are the columns the source must have, with their Spark types: a source missing
    one, or holding it with another type, fails the job before any write. Rows that break an
    expectation are quarantined with the rule and a reason; a source older than
    `max_staleness_hours` (by `time_column`) fails the job before any write.
    """

    columns: dict[str, SparkType] = Field(default_factory=dict)
    expectations: list[Expectation] = Field(default_factory=list)
    time_column: str | None = None
    max_staleness_hours: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _freshness_needs_a_time_column(self) -> SourceQualityConf:
        if self.max_staleness_hours is not None and self.time_column is None:
            raise ValueError("max_staleness_hours needs time_column")
        return self


def _is_table_name(value: str) -> bool:
    try:
        _check_table_name(value)
    except ValueError:
        return False
    return True


class DataConf(_Strict):
    """Scale and shape of the generated sample data (jobs/generate_data.py)."""

    seed: int = 7
    customers: int = Field(2000, gt=0)
    days: int = Field(180, ge=60)
    start: dt.date = dt.date(2026, 1, 1)
    label_horizon_days: int = Field(30, gt=0)
    label_every_days: int = Field(14, gt=0)
    first_label_day: int = Field(45, ge=1)
    bad_row_rate: float = Field(0.002, ge=0, lt=1)


def _resolve_callable(path: str) -> Callable[..., Any]:
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
        for name, p in inspect.signature(_resolve_callable(path)).parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name != "df"
    }
    if any(p.kind == p.VAR_KEYWORD for p in inspect.signature(_resolve_callable(path)).parameters.values()):
        return
    unknown = sorted(set(params) - set(keyword))
    if unknown:
        raise ValueError(f"{path} takes no parameter(s) {', '.join(unknown)}; it takes {', '.join(sorted(keyword))}")
    missing = sorted(n for n, p in keyword.items() if p.default is p.empty and n not in params and n not in supplied)
    if missing:
        raise ValueError(f"{path} needs parameter(s) {', '.join(missing)}")


def _digest(data: dict[str, Any], functions: list[Callable[..., Any]]) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:16]


class FeatureColumn(_Strict):
    """One output column of a feature set."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    type: SparkType
    description: str = Field(min_length=1)


class TransformStep(_Strict):
    """One transform of a feature set: a function's dotted path and its keyword parameters."""

    fn: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fn")
    @classmethod
    def _importable(cls, value: str) -> str:
        _resolve_callable(value)
        return value

    @model_validator(mode="after")
    def _params_match(self) -> TransformStep:
        _check_params(self.fn, self.params)
        return self

    def function(self) -> Callable[..., Any]:
        """The function the step names."""
        return _resolve_callable(self.fn)


class RequestTimeFeature(TransformStep):
    """A feature computed once the spine is known (label time in training, score time in scoring).

    The transform receives `as_of_column` (the spine's time) and `output` on top of `params`.
    """

    output: FeatureColumn

    @model_validator(mode="after")
    def _params_match(self) -> RequestTimeFeature:
        _check_params(self.fn, {**self.params, "output": self.output.name}, supplied=("as_of_column",))
        return self


class FeatureSetDecl(_Strict):
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
        if not _check_table_name(value).startswith("features."):
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
        return _digest(self.model_dump(mode="json"), functions)

    def table_hash(self) -> str:
        """A digest of what decides the rows of the feature table: entity, source, times,
        transforms (with their code) and the outputs' names and types. Descriptions, the
        lookback, the TTL and request-time features do not change a row, so they are left out;
        a table built under another table hash must be rebuilt in full."""
        decides = self.model_dump(mode="json", include={"table", "source", "entity", "event_time", "timestamp", "transforms", "history_days"})
        decides["features"] = [[f.name, f.type] for f in self.features]
        return _digest(decides, [step.function() for step in self.transforms])


class SweepObjective(_Strict):
    metric: Literal["val_auc", "val_log_loss", "train_auc"] = Field(description="A metric every learner reports.")
    direction: Literal["maximize", "minimize"]


class EarlyStop(_Strict):
    no_improvement_evals: int = Field(gt=0, description="Stop when the best objective has not improved for this many finished trials.")


class TimeSplit(_Strict):
    """Validate on the latest labels: every validation label is later than every training label."""

    scheme: Literal["time_split"] = "time_split"
    fraction: float = Field(0.25, gt=0, lt=1, description="The share of distinct label times that validate.")


class SweepDecl(_Strict):
    """A declared hyperparameter sweep: the learner, its search space, the objective and the budget.

    The learner decides how trials run: single-node learners one trial per Spark task,
    `parallelism` at a time; distributed (Spark ML) learners one trial after another, each a
    distributed Spark job, so they take parallelism 1.
    """

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    description: str = Field(min_length=1)
    learner: str
    space: dict[str, Any] = Field(description="Parameter -> constant or {uniform|loguniform|quniform|choice: ...}; see parity.search_space.")
    objective: SweepObjective
    algorithm: Literal["tpe", "random"] = "tpe"
    max_evals: int = Field(gt=0)
    timeout_seconds: float | None = Field(None, gt=0, description="Cancel running trials and stop at this wall time.")
    early_stop: EarlyStop | None = None
    parallelism: int = Field(1, gt=0)
    validation: TimeSplit = TimeSplit()
    seed: int = 11

    @field_validator("learner")
    @classmethod
    def _known_learner(cls, value: str) -> str:
        from parity.learners import get_learner

        get_learner(value)
        return value

    @model_validator(mode="after")
    def _space_fits_learner(self) -> SweepDecl:
        from parity.learners import get_learner
        from parity.search_space import build_space, parameter_names

        learner = get_learner(self.learner)
        try:
            build_space(self.space)
        except ValueError as exc:
            raise ValueError(f"space.{exc}") from None
        unknown = sorted(parameter_names(self.space) - learner.hyperparameters)
        if unknown:
            raise ValueError(
                f"space sets {', '.join(unknown)}, which learner {self.learner} does not take; "
                f"it takes {', '.join(sorted(learner.hyperparameters))}"
            )
        if learner.mode == "distributed" and self.parallelism != 1:
            raise ValueError(
                f"parallelism is {self.parallelism}, but learner {self.learner} is distributed: its trials run one after "
                "another, each a Spark job over the whole training set; set parallelism: 1"
            )
        return self

    def mode(self) -> str:
        from parity.learners import get_learner

        return get_learner(self.learner).mode

    def search_space(self) -> dict[str, Any]:
        """The hyperopt expression of `space`."""
        from parity.search_space import build_space

        return build_space(self.space)


class TrainingConf(_Strict):
    feature_sets: list[str] = Field(
        default_factory=lambda: ["customer_activity", "customer_profile"],
        min_length=1,
        description="The declared feature sets a model is trained on, joined as of each label's time.",
    )
    as_known_at: bool = Field(
        False,
        description="Join features as known at each label's time: only rows whose Delta commit had landed by then. "
        "Right for tables built day by day in production; a table built in one go after the fact knows nothing earlier.",
    )
    asof_strategy: Literal["broadcast", "sort"] = Field(
        "sort", description="sort: one sort per entity, no size limit; broadcast: needs the distinct (entity, label time) keys in memory."
    )
    sweep: str = Field("hist_gradient_boosting", description="The declared sweep (conf/sweeps/*.yaml) the train job runs.")
    labels_known_at: dt.datetime | None = Field(
        None, description="Train only on labels whose outcome was known by then (label_available_at); default: all."
    )


class ScoringConf(_Strict):
    asof_strategy: Literal["broadcast", "sort"] = "sort"
    allow_code_mismatch: bool = Field(
        False, description="Score with a model whose transform code hash differs from the installed code's (not advised)."
    )
    model_version: str = Field("latest", description="'latest', a version number, or '@alias'.")

    @field_validator("model_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    score_time: dt.datetime | None = Field(None, description="Default: the newest feature time.")


class Settings(_Strict):
    env: str
    project_root: str
    storage: StorageConf
    mlflow: MlflowConf
    spark: SparkConf = SparkConf()
    tables: TablesConf = TablesConf()
    data: DataConf = DataConf()
    feature_sets: dict[str, FeatureSetDecl] = Field(
        default_factory=dict, description="Declared feature sets, from conf/features/*.yaml, by name."
    )
    sweeps: dict[str, SweepDecl] = Field(default_factory=dict, description="Declared sweeps, from conf/sweeps/*.yaml, by name.")
    quality: dict[str, SourceQualityConf] = Field(
        default_factory=dict, description="Per source, keyed by its `tables` key (e.g. raw_events)."
    )
    training: TrainingConf = TrainingConf()
    scoring: ScoringConf = ScoringConf()

    @model_validator(mode="after")
    def _quality_keys_name_tables(self) -> Settings:
        unknown = sorted(k for k in self.quality if k not in TablesConf.model_fields and not _is_table_name(k))
        if unknown:
            raise ValueError(
                f"quality has no source(s) {', '.join(unknown)}; use keys of tables: (e.g. raw_events) or logical names (raw.x)"
            )
        return self

    @model_validator(mode="after")
    def _sweep_is_declared(self) -> Settings:
        for key, decl in self.sweeps.items():
            if decl.name != key:
                raise ValueError(f"sweep '{key}' declares name '{decl.name}'; they must match")
        if self.training.sweep not in self.sweeps:
            known = ", ".join(sorted(self.sweeps)) or "none (add conf/sweeps/*.yaml)"
            raise ValueError(f"training.sweep names undeclared sweep '{self.training.sweep}'; declared: {known}")
        return self

    def sweep(self) -> SweepDecl:
        """The sweep the train job runs."""
        return self.sweeps[self.training.sweep]

    @model_validator(mode="after")
    def _feature_sets_fit_together(self) -> Settings:
        owners: dict[str, str] = {}
        tables: dict[str, str] = {}
        for key, decl in self.feature_sets.items():
            if decl.name != key:
                raise ValueError(f"feature set '{key}' declares name '{decl.name}'; they must match")
            if decl.table in tables:
                raise ValueError(f"feature sets {tables[decl.table]} and {key} both write {decl.table}")
            tables[decl.table] = key
            self.source_table(decl.source)
        unknown = [name for name in self.training.feature_sets if name not in self.feature_sets]
        if unknown:
            known = ", ".join(sorted(self.feature_sets)) or "none (add conf/features/*.yaml)"
            raise ValueError(f"training.feature_sets names undeclared feature set(s) {', '.join(unknown)}; declared: {known}")
        # Sets joined into one training set share one namespace of columns.
        for key in self.training.feature_sets:
            decl = self.feature_sets[key]
            for name in decl.feature_names() + [r.output.name for r in decl.request_time]:
                if name in owners:
                    raise ValueError(
                        f"duplicate feature name '{name}': declared by feature sets {owners[name]} and {key}, "
                        "which training.feature_sets joins together"
                    )
                owners[name] = key
        return self

    def source_table(self, source: str) -> str:
        """The logical table name of a source given as a `tables:` key or as a logical name.

        Raises:
            ValueError: the source is neither.
        """
        if source in TablesConf.model_fields:
            return str(getattr(self.tables, source))
        if _is_table_name(source) and source.startswith("raw."):
            return source
        raise ValueError(f"source '{source}' is neither a key of tables: nor a raw.<name> table")

    def source_quality(self, source: str) -> SourceQualityConf:
        """The declared contract and expectations of a source (by `tables:` key or logical name)."""
        table = self.source_table(source)
        for key in (source, table):
            if key in self.quality:
                return self.quality[key]
        named = next((k for k in TablesConf.model_fields if getattr(self.tables, k) == table), "")
        return self.quality.get(named, SourceQualityConf())

    def conf_hash(self) -> str:
        """A stable digest of the effective configuration, recorded in lineage."""
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfError(f"{path.name} is not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(loaded, dict):
        raise ConfError(f"{path.name} must hold a mapping at its top level")
    return loaded


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse one `dotted.key=value`; the value is read as YAML (so 3 is an int, [7, 30] a list)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfError(f"--set expects dotted.key=value, got '{item}'")
    # spark.conf keys contain dots themselves: everything after `spark.conf.` is one key.
    parts = key.strip().split(".")
    if parts[:2] == ["spark", "conf"] and len(parts) > 2:
        parts = ["spark", "conf", ".".join(parts[2:])]
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def _apply_override(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfError(f"--set {'.'.join(parts)}: '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        field = current.model_fields.get(part) if isinstance(current, type) and issubclass(current, BaseModel) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        current = field.annotation
    return sorted(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []


def _describe(exc: ValidationError, sources: str) -> str:
    messages = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(p) for p in loc)
        if error["type"] == "extra_forbidden":
            known = _known_keys(Settings, loc)
            hint = f"; known keys here: {', '.join(known)}" if known else ""
            messages.append(f"unknown conf key '{key}' (from {sources}){hint}")
        elif error["type"] == "missing":
            messages.append(f"conf key '{key}' is required (from {sources}); set it in a conf file or with --set {key}=...")
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
            shown = error.get("input")
            got = f" (got {shown!r})" if not isinstance(shown, dict) else ""
            messages.append(f"conf key '{key}': {text}{got}" if key else f"conf: {text}")
    return "; ".join(messages)


def _resolve_paths(tree: dict[str, Any], root: Path) -> None:
    def local(path: str) -> str:
        if len(urlparse(path).scheme) > 1:  # file:/x, s3://b/x, abfss://...; not a Windows drive
            return path
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (root / p).resolve())

    if isinstance(tree.get("storage"), dict) and isinstance(tree["storage"].get("root"), str):
        tree["storage"]["root"] = local(tree["storage"]["root"])
    mlflow = tree.get("mlflow")
    if isinstance(mlflow, dict):
        if isinstance(mlflow.get("artifact_root"), str):
            mlflow["artifact_root"] = local(mlflow["artifact_root"])
        uri = mlflow.get("tracking_uri")
        if isinstance(uri, str) and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            mlflow["tracking_uri"] = "sqlite:///" + local(uri[len("sqlite:///") :])
    spark = tree.get("spark")
    if isinstance(spark, dict) and isinstance(spark.get("jars_dir"), str):
        spark["jars_dir"] = local(spark["jars_dir"])


def _read_declarations(folder: Path, kind: str) -> dict[str, Any]:
    """Every declaration in a conf subfolder (features/, sweeps/), by name: one per file."""
    found: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        declaration = _read_yaml(path)
        name = declaration.get("name")
        if not isinstance(name, str):
            raise ConfError(f"{folder.name}/{path.name} must give the {kind}'s name")
        if name in found:
            raise ConfError(f"{kind} '{name}' is declared twice: {folder.name}/{origin[name]} and {folder.name}/{path.name}")
        found[name], origin[name] = declaration, path.name
    return found


def load_settings(conf_dir: str | Path, env: str | None = None, overrides: list[str] | None = None) -> Settings:
    """Load `base.yaml`, overlay `<env>.yaml` and the `--set` overrides, then validate.

    Args:
        conf_dir: the folder holding base.yaml and one overlay per environment.
        env: the overlay to apply; `dev` when not given.
        overrides: `dotted.key=value` strings, applied last.

    Raises:
        ConfError: a file is missing or malformed, or a key is unknown or invalid.
    """
    conf_path = Path(conf_dir).resolve()
    env = env or DEFAULT_ENV
    base_file, env_file = conf_path / "base.yaml", conf_path / f"{env}.yaml"
    if not base_file.is_file():
        raise ConfError(f"no base.yaml in conf folder {conf_path}")
    if not env_file.is_file():
        known = sorted(p.stem for p in conf_path.glob("*.yaml") if p.stem != "base")
        raise ConfError(f"unknown env '{env}': no {env}.yaml in {conf_path} (known: {', '.join(known)})")
    tree = _deep_merge(_read_yaml(base_file), _read_yaml(env_file))
    tree["feature_sets"] = _deep_merge(_read_declarations(conf_path / FEATURES_DIR, "feature set"), tree.get("feature_sets") or {})
    tree["sweeps"] = _deep_merge(_read_declarations(conf_path / SWEEPS_DIR, "sweep"), tree.get("sweeps") or {})
    for item in overrides or []:
        parts, value = parse_override(item)
        _apply_override(tree, parts, value)
    for reserved in ("env", "project_root"):
        if reserved in tree:
            raise ConfError(f"conf key '{reserved}' is set by the loader and cannot be given in conf")
    root = conf_path.parent
    _resolve_paths(tree, root)
    tree["env"], tree["project_root"] = env, str(root)
    sources = f"base.yaml + {env}.yaml + features/ + sweeps/" + (" + --set" if overrides else "")
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfError(_describe(exc, sources)) from None
