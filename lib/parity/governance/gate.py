"""The promotion gate: the checks a model version must pass before it becomes `@champion`.

- `validation`: the candidate and the champion score the labels later than both their
  training cutoffs (the newest label time of each one's training set), with features as of
  each label's time, read from today's feature tables; the candidate's metric must be at least the
  champion's within the declared margin (`promotion`), on at least `min_labels` labels. With
  no champion yet, it must reach the declared floor.
- `data_checks`: the candidate's training set passed its declared thresholds (share of labels
  without features, share quarantined), as the train job recorded them in its manifest.
- `feature_spec`: the spec resolves against today's code (each feature set's code hash) and
  today's feature tables (each exists and holds the columns the spec reads).
- `approval`: where the environment requires it, an approval recorded by someone other than
  the version's trainer (`parity approve`).

Every check runs, so a refusal names each that failed, with what it measured. The job that
calls `evaluate` (with a `PromotionRequest`: the model, its candidate and champion, its recorded
events and the candidate's trainer) records the outcome (`parity.governance.model_events`).

Read, then decide: `read_inputs` reads everything once (the labels, each version's metric on
them, the manifest, today's code and tables, the approvals) into the plain values of
`parity.governance.gate_checks`, whose pure functions judge them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from parity.core.catalog import Catalog
from parity.core.columns import PREDICTION, SCORE_TS
from parity.core.conf import HOLDOUT_METRICS, FeatureSetDecl, ModelDecl, Settings
from parity.features.sources import validate_source
from parity.features.training_sets import label_expectations
from parity.governance import tracking
from parity.governance.gate_checks import (
    MANIFEST_ARTIFACT,
    Approvals,
    Bar,
    DataCheck,
    FeatureTable,
    GateInputs,
    Holdout,
    RecordedChecks,
    Score,
    SpecState,
    Unmeasurable,
    judge,
    judge_approval,
    judge_data_checks,
    judge_spec,
    judge_validation,
)
from parity.governance.model_events import CheckResult, ModelEvent
from parity.governance.registry import ResolvedModel
from parity.model.spec import changed_transforms
from parity.scoring import batch
from parity.training.learners import holdout_metric

__all__ = [
    "MANIFEST_ARTIFACT",
    "PromotionRequest",
    "approval_check",
    "data_check",
    "evaluate",
    "holdout_labels",
    "measure",
    "read_inputs",
    "spec_check",
    "training_cutoff",
    "validation_check",
]
_LABEL = "__parity_label"


@dataclass(frozen=True)
class PromotionRequest:
    """What the gate is asked: may a declared `model`'s `candidate` version become @champion in
    place of `champion` (None: there is none yet)? With the model's recorded `events` (its
    approvals among them) and the `trainer` of the candidate (None: unknown)."""

    model: ModelDecl
    candidate: ResolvedModel
    champion: ResolvedModel | None
    events: list[ModelEvent]
    trainer: str | None


def evaluate(
    spark: SparkSession, catalog: Catalog, settings: Settings, request: PromotionRequest
) -> list[CheckResult]:
    """Every check of the gate for the request's candidate against its champion."""
    return judge(read_inputs(spark, catalog, settings, request))


def read_inputs(
    spark: SparkSession, catalog: Catalog, settings: Settings, request: PromotionRequest
) -> GateInputs:
    """What every check of the gate judges, read once."""
    model, candidate = request.model, request.candidate
    bar = promotion_bar(model)
    return GateInputs(
        bar=bar,
        validation=read_validation(spark, catalog, model, bar, candidate, request.champion),
        data=read_recorded_checks(candidate),
        spec=read_spec_state(catalog, candidate),
        approvals=approvals_of(settings, request.events, candidate.version, request.trainer),
    )


def promotion_bar(model: ModelDecl) -> Bar:
    """The model's `promotion` declaration, for its task."""
    declared = model.promotion
    metric = declared.metric_for(model.task)
    higher = HOLDOUT_METRICS[model.task][metric] == "higher"
    return Bar(metric, higher, declared.margin, declared.min_labels, declared.floor)


def training_cutoff(catalog: Catalog, model: ModelDecl, spec_training_set: dict[str, Any]) -> dt.datetime:
    """The newest label time in the training set a model was trained on."""
    table, version = str(spec_training_set["table"]), int(spec_training_set["version"])
    row = catalog.snapshot(table, version).agg(F.max(model.labels.time)).first()
    if row is None or row[0] is None:
        raise ValueError(f"{table}@{version} holds no labels")
    return row[0]


def holdout_labels(catalog: Catalog, model: ModelDecl, after: dt.datetime) -> DataFrame:
    """The model's valid labels (its declared filter and label checks) later than `after`, from the
    labels table as it is now."""
    labels = catalog.read(model.labels.table)
    if model.labels.filter:
        labels = labels.filter(model.labels.filter)
    labels = labels.filter(F.col(model.labels.time) > F.lit(after))
    valid, _ = validate_source(labels, label_expectations(model), source=model.labels.table)
    return valid


def measure(
    spark: SparkSession,
    catalog: Catalog,
    model: ModelDecl,
    resolved: ResolvedModel,
    labels: DataFrame,
    metric: str,
) -> float:
    """A model version's `metric` on `labels`, its features assembled from its own spec as of
    each label's time (as its training set joined them)."""
    spec = resolved.spec
    missing = [c for c in spec.caller_columns if c not in labels.columns]
    if missing:
        raise ValueError(
            f"version {resolved.version} needs column(s) {', '.join(missing)}, which {model.labels.table} lacks"
        )
    spine = labels.select(
        *spec.caller_columns,
        F.col(model.labels.time).alias(SCORE_TS),
        F.col(model.labels.label.name).cast("double").alias(_LABEL),
    )
    predicted = batch.score(
        spark,
        spine,
        batch.read_lookups(catalog, spec, as_trained=True),
        spec,
        model=batch.ScoredModel(resolved.uri, resolved.name, resolved.version, resolved.run_id),
        options=batch.ScoringOptions(allow_code_mismatch=True, carry=[_LABEL]),
    )
    rows: pd.DataFrame = predicted.select(PREDICTION, _LABEL).toPandas()
    return holdout_metric(metric, rows[_LABEL].to_numpy(), rows[PREDICTION].to_numpy())


def read_validation(
    spark: SparkSession,
    catalog: Catalog,
    model: ModelDecl,
    bar: Bar,
    candidate: ResolvedModel,
    champion: ResolvedModel | None,
) -> Holdout | Unmeasurable:
    """The labels later than both versions' training cutoffs, and each version's metric on them
    (neither measured when there are fewer than `bar.min_labels`)."""
    measuring = candidate
    try:
        # Labels neither version trained on: later than the later of the two training cutoffs.
        cutoff = max(
            training_cutoff(catalog, model, version.spec.training_set)
            for version in [candidate, *([champion] if champion else [])]
        )
        labels = holdout_labels(catalog, model, cutoff).cache()
        try:
            count = labels.count()
            if count < bar.min_labels:
                return Holdout(cutoff, count)
            mine = measure(spark, catalog, model, candidate, labels, bar.metric)
            measuring = champion or candidate
            theirs = (
                None
                if champion is None
                else Score(champion.version, measure(spark, catalog, model, champion, labels, bar.metric))
            )
        finally:
            labels.unpersist()
    except Exception as exc:  # a version that cannot be measured is not promoted; the refusal says why
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]
        return Unmeasurable(measuring.version, f"{type(exc).__name__}: {first}")
    return Holdout(cutoff, count, mine, theirs)


def read_recorded_checks(candidate: ResolvedModel) -> RecordedChecks:
    """The data checks the train job recorded in the candidate's manifest."""
    try:
        manifest = tracking.load_run_dict(candidate.run_id, MANIFEST_ARTIFACT)
    except tracking.ArtifactNotFoundError as exc:
        return RecordedChecks(candidate.run_id, None, missing=exc.message)
    checks = manifest.get("checks")
    if not isinstance(checks, dict):
        return RecordedChecks(candidate.run_id, None)
    return RecordedChecks(
        candidate.run_id,
        tuple(
            DataCheck(name, float(c["share"]), float(c["max"]), str(c["detail"]), bool(c["passed"]))
            for name, c in checks.items()
        ),
    )


def read_spec_state(catalog: Catalog, candidate: ResolvedModel) -> SpecState:
    """The candidate's feature sets against today's transform code, and each one's table as it is now."""
    tables = []
    for lookup in candidate.spec.feature_sets:
        decl = FeatureSetDecl.model_validate(lookup["feature_set"])
        needs = (*decl.entity, decl.timestamp, *decl.feature_names())
        version = catalog.version(decl.table)
        columns = frozenset() if version is None else frozenset(catalog.snapshot(decl.table, version).columns)
        tables.append(FeatureTable(str(lookup["feature_set"]["name"]), decl.table, needs, version, columns))
    return SpecState(tuple(changed_transforms(candidate.spec)), tuple(tables))


def approvals_of(
    settings: Settings, events: list[ModelEvent], version: str, trainer: str | None
) -> Approvals:
    """What the approval check weighs for `version`, from the environment's conf and the recorded events."""
    return Approvals(settings.governance.require_approval, settings.env, version, trainer, tuple(events))


# One check at a time, read and judged (each is one part of `evaluate`).


def validation_check(
    spark: SparkSession,
    catalog: Catalog,
    model: ModelDecl,
    candidate: ResolvedModel,
    champion: ResolvedModel | None,
) -> CheckResult:
    """The candidate against the champion (or the floor) on the labels it never trained on."""
    bar = promotion_bar(model)
    return judge_validation(bar, read_validation(spark, catalog, model, bar, candidate, champion))


def data_check(candidate: ResolvedModel) -> CheckResult:
    """The data checks the train job recorded for the candidate's training set."""
    return judge_data_checks(read_recorded_checks(candidate))


def spec_check(catalog: Catalog, candidate: ResolvedModel) -> CheckResult:
    """The candidate's feature spec against today's transform code and feature tables."""
    return judge_spec(read_spec_state(catalog, candidate))


def approval_check(
    settings: Settings, events: list[ModelEvent], version: str, trainer: str | None
) -> CheckResult:
    """An approval of the version by someone other than its trainer, where the environment requires one."""
    return judge_approval(approvals_of(settings, events, version, trainer))
