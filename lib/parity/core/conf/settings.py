"""The typed settings of one environment, and the checks that tie its declarations together."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from parity.core.conf.base import StrictModel, is_table_name
from parity.core.conf.environment import DataConf, MlflowConf, SparkConf, StorageConf, TablesConf
from parity.core.conf.expectations import SourceQualityConf
from parity.core.conf.feature_sets import FeatureSetDecl
from parity.core.conf.models import ModelDecl, check_model
from parity.core.conf.sweeps import SweepDecl
from parity.core.durations import utc_naive
from parity.core.hashing import json_digest

# Keys that moved into model declarations (conf/models/<name>.yaml): an old conf that sets one
# fails, naming its new place.
MOVED_KEYS = {
    (
        "training",
        "feature_sets",
    ): "models.<name>.features (a list of lookups: feature_set, entity, prefix, features)",
    ("training", "sweep"): "models.<name>.sweep",
    ("training", "as_known_at"): "models.<name>.training.as_known_at",
    ("training", "asof_strategy"): "models.<name>.training.asof_strategy",
    ("training", "labels_known_at"): "models.<name>.training.labels_known_at",
    ("tables", "training_set"): "models.<name>.tables.training_set",
    ("tables", "predictions"): "models.<name>.tables.predictions",
    ("mlflow", "registered_model"): "models.<name>.registered_model",
}


class ScoringConf(StrictModel):
    """How a scoring run resolves its model and its time (the population is the model's)."""

    asof_strategy: Literal["broadcast", "sort"] = "sort"
    allow_code_mismatch: bool = Field(
        False,
        description="Score with a model whose transform code hash differs from the installed code's (not advised).",
    )
    model_version: str = Field(
        "@champion",
        pattern=r"^(latest|[0-9]+|@[A-Za-z_][A-Za-z0-9_-]*)$",
        description=(
            "'@champion' (the version the promotion gate let through), "
            "another '@alias', a version number, or 'latest'."
        ),
    )
    batch_rows: int = Field(
        100_000, ge=1, description="Rows per predict call of a single-node model (parity.scoring.predictor)."
    )

    @field_validator("model_version", mode="before")
    @classmethod
    def _version_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    score_time: dt.datetime | None = Field(
        None, description="A fixed scoring time (UTC); default: the model's scoring.score_time rule."
    )

    @field_validator("score_time")
    @classmethod
    def _in_utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else utc_naive(value)


class GovernanceConf(StrictModel):
    """What the promotion gate asks of this environment."""

    require_approval: bool = Field(
        False,
        description=(
            "A promotion needs a recorded approval (parity approve) "
            "by someone other than the trainer (prod: true)."
        ),
    )
    require_authenticated_identity: bool = Field(
        False,
        description=(
            "Approvals, promotions and rollbacks act only as a user the tracking server authenticated, "
            "never as the OS user (prod: true)."
        ),
    )


class Settings(StrictModel):
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
    sweeps: dict[str, SweepDecl] = Field(
        default_factory=dict, description="Declared sweeps, from conf/sweeps/*.yaml, by name."
    )
    quality: dict[str, SourceQualityConf] = Field(
        default_factory=dict, description="Per source, keyed by its `tables` key (e.g. raw_events)."
    )
    models: dict[str, ModelDecl] = Field(
        default_factory=dict, description="Declared models, from conf/models/*.yaml, by name."
    )
    scoring: ScoringConf = ScoringConf()
    governance: GovernanceConf = GovernanceConf()

    @model_validator(mode="before")
    @classmethod
    def _no_moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for (section, key), place in MOVED_KEYS.items():
                if isinstance(data.get(section), dict) and key in data[section]:
                    raise ValueError(
                        f"conf key '{section}.{key}' moved into the model declaration: set {place} in "
                        "conf/models/<name>.yaml"
                    )
        return data

    @model_validator(mode="after")
    def _quality_keys_name_tables(self) -> Settings:
        unknown = sorted(k for k in self.quality if k not in TablesConf.model_fields and not is_table_name(k))
        if unknown:
            raise ValueError(
                f"quality has no source(s) {', '.join(unknown)}; use keys of tables: (e.g. raw_events) or "
                "logical names (raw.x)"
            )
        return self

    @model_validator(mode="after")
    def _declarations_fit_together(self) -> Settings:
        for kind, declared in (("sweep", self.sweeps), ("model", self.models)):
            for key, decl in declared.items():
                if decl.name != key:
                    raise ValueError(f"{kind} '{key}' declares name '{decl.name}'; they must match")
        writers: dict[str, str] = {}
        for model in self.models.values():
            check_model(model, self.feature_sets, self.sweeps, self.entity_key_type)
            for table in (
                model.training_set(),
                model.predictions(),
                model.scoring_quarantine(),
                model.stream_predictions(),
                model.stream_quarantine(),
            ):
                if table in writers:
                    raise ValueError(
                        f"models {writers[table]} and {model.name} both write {table}; set tables: in one of them"
                    )
                writers[table] = model.name
        return self

    def model(self, name: str | None = None) -> ModelDecl:
        """The declared model `name`; without a name, the only one declared.

        Raises:
            ValueError: no such model, or no name while several (or none) are declared.
        """
        known = ", ".join(sorted(self.models)) or "none (add conf/models/<name>.yaml)"
        if name is None:
            if len(self.models) != 1:
                raise ValueError(f"name the model with --model NAME; declared models: {known}")
            return next(iter(self.models.values()))
        if name not in self.models:
            raise ValueError(f"unknown model '{name}'; declared models: {known}")
        return self.models[name]

    def entity_key_type(self, decl: FeatureSetDecl, key: str) -> str | None:
        """The Spark type of a feature set's entity key, as its source's contract declares it."""
        return self.source_quality(decl.source).columns.get(key)

    @model_validator(mode="after")
    def _feature_sets_fit_together(self) -> Settings:
        tables: dict[str, str] = {}
        for key, decl in self.feature_sets.items():
            if decl.name != key:
                raise ValueError(f"feature set '{key}' declares name '{decl.name}'; they must match")
            if decl.table in tables:
                raise ValueError(f"feature sets {tables[decl.table]} and {key} both write {decl.table}")
            tables[decl.table] = key
            self.source_table(decl.source)
        return self

    def source_table(self, source: str) -> str:
        """The logical table name of a source given as a `tables:` key or as a logical name.

        Raises:
            ValueError: the source is neither.
        """
        if source in TablesConf.model_fields:
            return str(getattr(self.tables, source))
        if is_table_name(source) and source.startswith("raw."):
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
        return json_digest(self.model_dump(mode="json"))
