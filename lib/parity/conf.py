"""Typed, strict configuration: `base.yaml`, overlaid by `<env>.yaml`, then by `--set k=v`.

The conf folder is always passed in by the caller (a job, a notebook, a test); the library
never guesses where it lives. Every model forbids unknown keys, so a typo fails on load with
the dotted name of the offending key. Relative paths in the conf are resolved against the
project root, the folder that holds the conf folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_ENV = "dev"
ZONES = ("raw", "features", "training", "predictions", "quarantine", "monitoring", "audit")


class ConfError(ValueError):
    """The configuration cannot be loaded; the message names the key and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConf(_Strict):
    root: str = Field(description="Folder or URI under which every Delta table lives.")


class MlflowConf(_Strict):
    tracking_uri: str
    artifact_root: str = Field(description="Where the experiment stores run artifacts.")
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
    customer_activity: str = "features.customer_activity"
    customer_profile: str = "features.customer_profile"
    events_quarantine: str = "quarantine.events"
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


class SourceQualityConf(_Strict):
    """Expectations of one raw source. Failing rows are quarantined with the rule and a reason;
    a source older than `max_staleness_hours` (by `time_column`) fails the job before any write."""

    expectations: list[Expectation] = Field(default_factory=list)
    time_column: str | None = None
    max_staleness_hours: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _freshness_needs_a_time_column(self) -> SourceQualityConf:
        if self.max_staleness_hours is not None and self.time_column is None:
            raise ValueError("max_staleness_hours needs time_column")
        return self


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


class FeaturesConf(_Strict):
    windows_days: list[int] = Field(default_factory=lambda: [7, 30])

    @field_validator("windows_days")
    @classmethod
    def _positive_sorted(cls, value: list[int]) -> list[int]:
        if not value or any(w <= 0 for w in value):
            raise ValueError("windows_days must be a non-empty list of positive day counts")
        return sorted(set(value))


class TrainingConf(_Strict):
    validation_fraction: float = Field(0.25, gt=0, lt=1)
    max_evals: int = Field(8, gt=0)
    parallelism: int = Field(2, gt=0)
    seed: int = 11
    max_feature_age_days: int | None = Field(None, gt=0)
    labels_known_at: dt.datetime | None = Field(
        None, description="Train only on labels whose outcome was known by then (label_available_at); default: all."
    )


class ScoringConf(_Strict):
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
    features: FeaturesConf = FeaturesConf()
    quality: dict[str, SourceQualityConf] = Field(
        default_factory=dict, description="Per source, keyed by its `tables` key (e.g. raw_events)."
    )
    training: TrainingConf = TrainingConf()
    scoring: ScoringConf = ScoringConf()

    @model_validator(mode="after")
    def _quality_keys_name_tables(self) -> Settings:
        unknown = sorted(set(self.quality) - set(TablesConf.model_fields))
        if unknown:
            raise ValueError(f"quality has no table key(s) {', '.join(unknown)}; use keys of tables: (e.g. raw_events)")
        return self

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
            messages.append(f"conf key '{key}': {error['msg']} (got {error.get('input')!r})")
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
    for item in overrides or []:
        parts, value = parse_override(item)
        _apply_override(tree, parts, value)
    for reserved in ("env", "project_root"):
        if reserved in tree:
            raise ConfError(f"conf key '{reserved}' is set by the loader and cannot be given in conf")
    root = conf_path.parent
    _resolve_paths(tree, root)
    tree["env"], tree["project_root"] = env, str(root)
    sources = f"base.yaml + {env}.yaml" + (" + --set" if overrides else "")
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfError(_describe(exc, sources)) from None
