"""The typed settings of one environment, and the checks that tie its declarations together."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from parity.core.conf.base import StrictModel, is_table_name
from parity.core.conf.environment import DataConf, MlflowConf, SparkConf, StorageConf, TablesConf
from parity.core.conf.expectations import SourceQualityConf
from parity.core.conf.feature_sets import FeatureSetDecl
from parity.core.conf.sweeps import SweepDecl
from parity.core.hashing import json_digest


class TrainingConf(StrictModel):
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


class ScoringConf(StrictModel):
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
    sweeps: dict[str, SweepDecl] = Field(default_factory=dict, description="Declared sweeps, from conf/sweeps/*.yaml, by name.")
    quality: dict[str, SourceQualityConf] = Field(
        default_factory=dict, description="Per source, keyed by its `tables` key (e.g. raw_events)."
    )
    training: TrainingConf = TrainingConf()
    scoring: ScoringConf = ScoringConf()

    @model_validator(mode="after")
    def _quality_keys_name_tables(self) -> Settings:
        unknown = sorted(k for k in self.quality if k not in TablesConf.model_fields and not is_table_name(k))
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
