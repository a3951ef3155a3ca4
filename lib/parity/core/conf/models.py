"""Model declarations (conf/models/<name>.yaml): labels, feature lookups, sweep, registry name, tables.

A model is a declaration, as a feature set is: its labels (any table, any keys, a typed label
for its task), the feature sets it looks up and how label columns map onto their entity keys,
the sweep it runs, the name it is registered under, and where its training set, predictions
and scoring population live. Every job that trains or scores takes one (`--model NAME`).

What a declaration can check on its own is checked here; what ties it to the feature sets and
sweeps it names is checked by `Settings` (`check_model`), naming the file and the field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Literal

from pydantic import Field, field_validator, model_validator

from parity.core.conf.base import SparkType, StrictModel, check_table_name
from parity.core.conf.feature_sets import FeatureSetDecl
from parity.core.conf.learner_names import HOLDOUT_METRICS, Task
from parity.core.conf.sweeps import SweepDecl

ScoreTimeRule = Literal["newest_features", "now"]
MODELS_DIR = "models"
NAME_PATTERN = r"^[a-z_][a-z0-9_]*$"

# The label types each task accepts: a binary label holds 0 and 1 (or false and true), a
# regression label any number.
LABEL_TYPES: dict[str, tuple[str, ...]] = {
    "binary": ("boolean", "int", "bigint"),
    "regression": ("int", "bigint", "float", "double"),
}
TIME_TYPES = ("timestamp",)


class LabelColumn(StrictModel):
    name: str
    type: SparkType


class LabelsDecl(StrictModel):
    """Where a model's labels come from, and their typed column contract.

    Every row is one label: its keys (one or several columns, of any type), its time (what
    features are joined as of), its value, and optionally when its outcome became known.
    `columns` are further typed columns the feature lookups may map from (a sender, a store).
    """

    table: str = Field(description="The labels' logical table, in any zone (raw.x, training.y, ...).")
    keys: dict[str, SparkType] = Field(min_length=1, description="Key column -> Spark type, in order.")
    time: str = Field(description="The label time (a timestamp): features are joined as of it, never later.")
    label: LabelColumn
    available_at: str | None = Field(
        None, description="When each label's outcome became known (a timestamp); optional."
    )
    columns: dict[str, SparkType] = Field(
        default_factory=dict, description="Other typed columns the lookups map from."
    )
    filter: str | None = Field(None, description="A Spark SQL condition: only the labels it keeps are used.")

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        return check_table_name(value)

    @model_validator(mode="after")
    def _distinct_columns(self) -> LabelsDecl:
        named = [
            *self.keys,
            self.time,
            self.label.name,
            *([self.available_at] if self.available_at else []),
            *self.columns,
        ]
        twice = sorted({c for c in named if named.count(c) > 1})
        if twice:
            raise ValueError(
                f"labels name column(s) {', '.join(twice)} more than once (keys, time, label, available_at, columns)"
            )
        return self

    def contract(self) -> dict[str, str]:
        """Every column the labels must have, with its Spark type."""
        times = {self.time: "timestamp", **({self.available_at: "timestamp"} if self.available_at else {})}
        return {**self.keys, **self.columns, **times, self.label.name: self.label.type}

    def lookup_columns(self) -> dict[str, str]:
        """The columns a lookup may map from (keys and `columns`), with their types."""
        return {**self.keys, **self.columns}


class FeatureLookupDecl(StrictModel):
    """One declared feature set joined onto the labels (and, in scoring, the population).

    `entity` maps each of the set's entity keys to the label column that supplies it (default:
    the column of the same name). `prefix` goes in front of every column the lookup adds, so
    one set can be joined twice (on a sender and on a receiver). `features` keeps a subset of
    the set's features (and request-time features) as model inputs; default: all.
    """

    feature_set: str
    entity: dict[str, str] = Field(
        default_factory=dict, description="The set's entity key -> the label column that supplies it."
    )
    prefix: str = Field("", pattern=r"^([a-z_][a-z0-9_]*)?$")
    features: list[str] | None = Field(None, min_length=1)

    def name(self) -> str:
        """The lookup's name: its prefix and its set's name (`<prefix><set>`)."""
        return f"{self.prefix}{self.feature_set}"


class ModelTables(StrictModel):
    training_set: str | None = Field(None, description="Default: training.<model>.")
    predictions: str | None = Field(None, description="Default: predictions.<model>.")
    scoring_quarantine: str | None = Field(
        None,
        description="Population keys scoring refused, with the reason. Default: quarantine.scoring_<model>.",
    )
    stream_predictions: str | None = Field(
        None, description="Predictions of the scoring requests. Default: predictions.<model>_stream."
    )
    stream_quarantine: str | None = Field(
        None,
        description="Scoring requests refused, with the reason. Default: quarantine.scoring_<model>_stream.",
    )

    @field_validator(
        "training_set", "predictions", "scoring_quarantine", "stream_predictions", "stream_quarantine"
    )
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        return None if value is None else check_table_name(value)


class TrainingChecks(StrictModel):
    """Thresholds the train job checks its training set against (with the thresholds declared
    when it trains); the result is recorded in the model's manifest, and the promotion gate
    refuses a model trained on a set that failed them."""

    max_without_features: float = Field(
        0.1,
        ge=0,
        le=1,
        description="The largest share of labels that may lack a feature row of any lookup at their time.",
    )
    max_quarantined: float = Field(
        0.01, ge=0, le=1, description="The largest share of labels that may be quarantined."
    )


class ModelTraining(StrictModel):
    as_known_at: bool = Field(
        False,
        description="Join features as known at each label's time: only rows whose Delta commit had landed by then. "
        "Right for tables built day by day in production; "
        "a table built in one go after the fact knows nothing earlier.",
    )
    asof_strategy: Literal["broadcast", "sort"] = Field(
        "sort",
        description=(
            "sort: one sort per entity, no size limit; "
            "broadcast: needs the distinct (keys, label time) in memory."
        ),
    )
    labels_known_at: dt.datetime | None = Field(
        None,
        description="Train only on labels whose outcome was known by then (labels.available_at); default: all.",
    )
    checks: TrainingChecks = Field(
        default_factory=TrainingChecks,
        description="What a training set must pass for its models to be promoted.",
    )


class PromotionDecl(StrictModel):
    """The promotion gate's validation: how a candidate is measured against the champion.

    The candidate and the champion score the labels later than the candidate's training cutoff
    (the newest label time it trained on), with features as of each label's time; the
    candidate passes when its `metric` is at least the champion's within `margin` (and at
    least `min_labels` such labels exist). With no champion yet, it must reach `floor`.
    """

    metric: str | None = Field(
        None, description="auc or log_loss (binary), rmse or mae (regression); default auc / rmse."
    )
    margin: float = Field(
        0.0, ge=0, description="How much worse than the champion's the candidate's metric may be."
    )
    min_labels: int = Field(
        100, ge=1, description="The fewest labels after the candidate's cutoff the gate validates on."
    )
    floor: float | None = Field(
        None,
        description="What a first champion's metric must reach (e.g. auc 0.6); none: a first promotion is refused.",
    )

    def metric_for(self, task: str) -> str:
        return self.metric or next(iter(HOLDOUT_METRICS[task]))


class PopulationDecl(StrictModel):
    """Who is scored: a table holding every column the lookups map from (and the label keys)."""

    table: str
    filter: str | None = Field(None, description="A Spark SQL condition: only the rows it keeps are scored.")
    known_from: str | None = Field(
        None, description="A timestamp column: a row is in the population once the score time reaches it."
    )

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        return check_table_name(value)


class StreamDecl(StrictModel):
    """Near-time scoring (`score_stream`): a Delta table of scoring requests any producer appends to."""

    requests: str = Field(
        description="The requests table: the model's keys (and lookup columns) and a request time per row."
    )
    request_time: str = Field(min_length=1, description="The timestamp column each request is scored as of.")
    request_id: str | None = Field(
        None, description="A column carried to each prediction, naming its request."
    )
    trigger_seconds: float = Field(
        5.0,
        gt=0,
        description="A running stream starts a micro-batch this often (Spark's processing-time trigger).",
    )
    max_files_per_batch: int = Field(
        1000, ge=1, description="New files of the requests table one micro-batch takes at most."
    )
    checkpoint: str | None = Field(
        None,
        description="The stream's checkpoint folder. Default: <storage.root>/_checkpoints/score_stream/<model>.",
    )

    @field_validator("requests")
    @classmethod
    def _table_name(cls, value: str) -> str:
        return check_table_name(value)


class ModelScoring(StrictModel):
    population: PopulationDecl
    stream: StreamDecl | None = Field(
        None, description="Near-time scoring of a requests table; none: the model is scored in batch only."
    )
    score_time: ScoreTimeRule = Field(
        "newest_features",
        description="newest_features: the newest feature time of the first lookup; now: the job's start (UTC). "
        "--set scoring.score_time=... gives a fixed time instead.",
    )


class ModelDecl(StrictModel):
    """A declared model: labels and task, feature lookups, sweep, registry name, tables, population."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(min_length=1)
    task: Task
    labels: LabelsDecl
    features: list[FeatureLookupDecl] = Field(min_length=1)
    sweep: str = Field(description="A declared sweep (conf/sweeps/), whose learner fits the task.")
    registered_model: str = Field(min_length=1, description="The MLflow registered model name.")
    tables: ModelTables = ModelTables()
    training: ModelTraining = ModelTraining()
    promotion: PromotionDecl = PromotionDecl()
    scoring: ModelScoring

    @model_validator(mode="after")
    def _label_fits_task(self) -> ModelDecl:
        allowed = LABEL_TYPES[self.task]
        if self.labels.label.type not in allowed:
            raise ValueError(
                f"labels.label.type is {self.labels.label.type}, which a {self.task} model cannot learn; "
                f"use one of {', '.join(allowed)}"
            )
        metrics = HOLDOUT_METRICS[self.task]
        if self.promotion.metric is not None and self.promotion.metric not in metrics:
            raise ValueError(
                f"promotion.metric is {self.promotion.metric}, which a {self.task} model is not measured "
                f"by; use one of {', '.join(metrics)}"
            )
        return self

    def training_set(self) -> str:
        return self.tables.training_set or f"training.{self.name}"

    def predictions(self) -> str:
        return self.tables.predictions or f"predictions.{self.name}"

    def scoring_quarantine(self) -> str:
        return self.tables.scoring_quarantine or f"quarantine.scoring_{self.name}"

    def stream_predictions(self) -> str:
        return self.tables.stream_predictions or f"predictions.{self.name}_stream"

    def stream_quarantine(self) -> str:
        return self.tables.stream_quarantine or f"quarantine.scoring_{self.name}_stream"


def lookup_outputs(lookup: FeatureLookupDecl, feature_set: FeatureSetDecl) -> dict[str, str]:
    """The model inputs a lookup adds, by name as the set declares it -> name in the training set
    (`prefix` + name): its kept features and request-time features. (It also adds the feature
    time of the row it used, `<lookup name>_as_of`.)"""
    declared = [f.name for f in feature_set.features] + [r.output.name for r in feature_set.request_time]
    kept = declared if lookup.features is None else [n for n in declared if n in lookup.features]
    return {name: f"{lookup.prefix}{name}" for name in kept}


def lookup_keys(lookup: FeatureLookupDecl, feature_set: FeatureSetDecl) -> dict[str, str]:
    """The set's entity key -> the label (or population) column that supplies it."""
    return {key: lookup.entity.get(key, key) for key in feature_set.entity}


def check_model(
    model: ModelDecl,
    feature_sets: dict[str, FeatureSetDecl],
    sweeps: dict[str, SweepDecl],
    key_type: Callable[[FeatureSetDecl, str], str | None],
) -> None:
    """Check that a model fits the feature sets and sweep it names; errors name its file and field.

    `key_type(set, key)` is the Spark type of one of a set's entity keys (from its source's
    contract), or None when the contract does not declare it.

    Raises:
        ValueError: an unknown set or sweep, a key mapping that misses a set's key or has another
        type, an unknown feature in a subset, two lookups adding one column, or a learner that
        does not fit the task.
    """
    where = f"model {model.name} ({MODELS_DIR}/{model.name}.yaml)"
    if model.sweep not in sweeps:
        known = ", ".join(sorted(sweeps)) or "none (add conf/sweeps/*.yaml)"
        raise ValueError(f"{where} sweep: undeclared sweep '{model.sweep}'; declared: {known}")
    sweep = sweeps[model.sweep]
    if sweep.task() != model.task:
        raise ValueError(
            f"{where} sweep: sweep {sweep.name}'s learner {sweep.learner} learns {sweep.task()}, but the "
            f"model's task is {model.task}"
        )
    columns = model.labels.lookup_columns()
    owners = {c: "labels" for c in model.labels.contract()}
    for i, lookup in enumerate(model.features):
        field = f"{where} features[{i}]"
        if lookup.feature_set not in feature_sets:
            known = ", ".join(sorted(feature_sets)) or "none (add conf/features/*.yaml)"
            raise ValueError(
                f"{field}.feature_set: undeclared feature set '{lookup.feature_set}'; declared: {known}"
            )
        decl = feature_sets[lookup.feature_set]
        stray = sorted(set(lookup.entity) - set(decl.entity))
        if stray:
            raise ValueError(
                f"{field}.entity maps {', '.join(stray)}, which feature set {decl.name} is not keyed by; "
                f"its keys: {', '.join(decl.entity)}"
            )
        for key, column in lookup_keys(lookup, decl).items():
            if column not in columns:
                raise ValueError(
                    f"{field}.entity: feature set {decl.name} is keyed by {key}, and no label key or "
                    f"labels.columns entry '{column}' supplies it; map it with entity: {{{key}: <label column>}}"
                )
            wanted = key_type(decl, key)
            if wanted is None:
                raise ValueError(
                    f"{field}.entity: the type of feature set {decl.name}'s key {key} is not declared; add "
                    "it to its source's contract (quality.<source>.columns)"
                )
            if columns[column] != wanted:
                raise ValueError(
                    f"{field}.entity: label column {column} is {columns[column]}, but feature set "
                    f"{decl.name}'s key {key} is {wanted}"
                )
        declared = [f.name for f in decl.features] + [r.output.name for r in decl.request_time]
        shadowed = sorted(set(declared) & set(model.labels.contract()))
        if shadowed:
            raise ValueError(
                f"{field}: feature set {decl.name} has feature(s) named like label column(s) "
                f"{', '.join(shadowed)}; rename one of them"
            )
        unknown = sorted(set(lookup.features or []) - set(declared))
        if unknown:
            raise ValueError(
                f"{field}.features: feature set {decl.name} has no feature(s) {', '.join(unknown)}"
            )
        for name in [*lookup_outputs(lookup, decl).values(), f"{lookup.name()}_as_of"]:
            if name in owners:
                raise ValueError(
                    f"{field}: column '{name}' is added by both {owners[name]} and lookup {lookup.name()}; "
                    "give one of them a prefix"
                )
            owners[name] = f"lookup {lookup.name()}"
