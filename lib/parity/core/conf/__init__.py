"""Typed, strict configuration: environment settings and the declarations, loaded and checked.

- `base`: strictness, `ConfError`, logical table names, Spark types;
- `environment`: storage, MLflow, Spark, table names, sample data;
- `expectations`: each raw source's column contract and row rules;
- `feature_sets`, `sweeps`, `models`: the declarations in conf/features/, conf/sweeps/ and
  conf/models/ (`learner_names` and `spaces` are what a sweep is checked against);
- `settings`: one environment's `Settings`, with the checks that tie declarations together;
- `loader`: `load_settings` (base.yaml + <env>.yaml + declarations + --set).

Everything a user imports is re-exported here (and from the old path `parity.conf`).
"""

from __future__ import annotations

from parity.core.conf.base import (
    SPARK_TYPES,
    ZONES,
    ConfError,
    SparkType,
    StrictModel,
    check_table_name,
    is_table_name,
)
from parity.core.conf.environment import DataConf, MlflowConf, SparkConf, StorageConf, TablesConf
from parity.core.conf.expectations import (
    AllowedValuesExpectation,
    Expectation,
    NotNullExpectation,
    RangeExpectation,
    SourceQualityConf,
    UniqueExpectation,
)
from parity.core.conf.feature_sets import (
    FeatureColumn,
    FeatureSetDecl,
    RequestTimeFeature,
    TransformStep,
    resolve_callable,
)
from parity.core.conf.learner_names import (
    HOLDOUT_METRICS,
    LEARNER_NAMES,
    TASK_METRICS,
    LearnerInfo,
    learner_info,
)
from parity.core.conf.loader import DEFAULT_ENV, FEATURES_DIR, SWEEPS_DIR, load_settings, parse_override
from parity.core.conf.models import (
    MODELS_DIR,
    FeatureLookupDecl,
    LabelsDecl,
    ModelDecl,
    ModelScoring,
    ModelTables,
    ModelTraining,
    PopulationDecl,
    PromotionDecl,
    StreamDecl,
    TrainingChecks,
)
from parity.core.conf.settings import GovernanceConf, ScoringConf, Settings
from parity.core.conf.sweeps import EarlyStop, SweepDecl, SweepObjective, TimeSplit

# 0.1's `TrainingConf` held a model's training options; they live in each model's declaration now.
TrainingConf = ModelTraining

__all__ = [
    "DEFAULT_ENV",
    "FEATURES_DIR",
    "HOLDOUT_METRICS",
    "LEARNER_NAMES",
    "MODELS_DIR",
    "SPARK_TYPES",
    "SWEEPS_DIR",
    "TASK_METRICS",
    "ZONES",
    "AllowedValuesExpectation",
    "ConfError",
    "DataConf",
    "EarlyStop",
    "Expectation",
    "FeatureColumn",
    "FeatureLookupDecl",
    "FeatureSetDecl",
    "GovernanceConf",
    "LabelsDecl",
    "LearnerInfo",
    "MlflowConf",
    "ModelDecl",
    "ModelScoring",
    "ModelTables",
    "ModelTraining",
    "NotNullExpectation",
    "PopulationDecl",
    "PromotionDecl",
    "RangeExpectation",
    "RequestTimeFeature",
    "ScoringConf",
    "Settings",
    "SourceQualityConf",
    "SparkConf",
    "SparkType",
    "StorageConf",
    "StreamDecl",
    "StrictModel",
    "SweepDecl",
    "SweepObjective",
    "TablesConf",
    "TimeSplit",
    "TrainingChecks",
    "TrainingConf",
    "TransformStep",
    "UniqueExpectation",
    "check_table_name",
    "is_table_name",
    "learner_info",
    "load_settings",
    "parse_override",
    "resolve_callable",
]
