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
calls `evaluate` records the outcome (`parity.governance.model_events`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import mlflow
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from parity.core.catalog import Catalog
from parity.core.columns import PREDICTION, SCORE_TS
from parity.core.conf import HOLDOUT_METRICS, FeatureSetDecl, ModelDecl, Settings
from parity.features.sources import validate_source
from parity.features.training_sets import label_expectations
from parity.governance.model_events import APPROVED, CheckResult, ModelEvent, same_identity
from parity.governance.registry import ResolvedModel
from parity.model.spec import changed_transforms
from parity.scoring import batch
from parity.training.learners import holdout_metric

MANIFEST_ARTIFACT = "manifest.json"  # the train job's record of a model's training set, inputs and data checks
_LABEL = "__parity_label"


def evaluate(
    spark: SparkSession,
    catalog: Catalog,
    settings: Settings,
    model: ModelDecl,
    candidate: ResolvedModel,
    champion: ResolvedModel | None,
    *,
    events: list[ModelEvent],
    trainer: str | None,
) -> list[CheckResult]:
    """Every check of the gate for `candidate` against `champion` (None: there is none yet)."""
    return [
        validation_check(spark, catalog, model, candidate, champion),
        data_check(candidate),
        spec_check(catalog, candidate),
        approval_check(settings, events, candidate.version, trainer),
    ]


def training_cutoff(catalog: Catalog, model: ModelDecl, spec_training_set: dict[str, Any]) -> dt.datetime:
    """The newest label time in the training set a model was trained on."""
    table, version = str(spec_training_set["table"]), int(spec_training_set["version"])
    row = catalog.snapshot(table, version).agg(F.max(model.labels.time)).first()
    if row is None or row[0] is None:
        raise ValueError(f"{table}@{version} holds no labels")
    return row[0]


def holdout_labels(catalog: Catalog, model: ModelDecl, after: dt.datetime) -> DataFrame:
    """The model's valid labels (its declared filter and label checks) later than `after`, from the labels table as it is now."""
    labels = catalog.read(model.labels.table)
    if model.labels.filter:
        labels = labels.filter(model.labels.filter)
    labels = labels.filter(F.col(model.labels.time) > F.lit(after))
    valid, _ = validate_source(labels, label_expectations(model), source=model.labels.table)
    return valid


def measure(spark: SparkSession, catalog: Catalog, model: ModelDecl, resolved: ResolvedModel, labels: DataFrame, metric: str) -> float:
    """A model version's `metric` on `labels`, its features assembled from its own spec as of
    each label's time (as its training set joined them)."""
    spec = resolved.spec
    missing = [c for c in spec.caller_columns if c not in labels.columns]
    if missing:
        raise ValueError(f"version {resolved.version} needs column(s) {', '.join(missing)}, which {model.labels.table} lacks")
    spine = labels.select(
        *spec.caller_columns, F.col(model.labels.time).alias(SCORE_TS), F.col(model.labels.label.name).cast("double").alias(_LABEL)
    )
    predicted = batch.score(
        spark, spine, batch.read_lookups(catalog, spec, as_trained=True), spec, model_uri=resolved.uri, model_name=resolved.name,
        model_version=resolved.version, model_run_id=resolved.run_id, allow_code_mismatch=True, carry=[_LABEL],
    )
    rows: pd.DataFrame = predicted.select(PREDICTION, _LABEL).toPandas()
    return holdout_metric(metric, rows[_LABEL].to_numpy(), rows[PREDICTION].to_numpy())


def validation_check(
    spark: SparkSession, catalog: Catalog, model: ModelDecl, candidate: ResolvedModel, champion: ResolvedModel | None
) -> CheckResult:
    """The candidate against the champion (or the floor) on the labels it never trained on."""
    declared = model.promotion
    metric = declared.metric_for(model.task)
    higher = HOLDOUT_METRICS[model.task][metric] == "higher"
    measuring = candidate
    try:
        # Labels neither version trained on: later than the later of the two training cutoffs.
        cutoff = max(training_cutoff(catalog, model, version.spec.training_set) for version in [candidate, *([champion] if champion else [])])
        labels = holdout_labels(catalog, model, cutoff).cache()
        try:
            count = labels.count()
            where = f"{count} labels after the training cutoff {cutoff:%Y-%m-%d %H:%M:%S}"
            if count < declared.min_labels:
                return CheckResult("validation", False, f"{where}; promotion.min_labels is {declared.min_labels}")
            mine = measure(spark, catalog, model, candidate, labels, metric)
            measuring = champion or candidate
            theirs = None if champion is None else measure(spark, catalog, model, champion, labels, metric)
        finally:
            labels.unpersist()
    except Exception as exc:  # a version that cannot be measured is not promoted; the refusal says why
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:500]
        return CheckResult("validation", False, f"cannot measure version {measuring.version}: {type(exc).__name__}: {first}")
    measured = f"{metric} {mine:.4f} on {where}"
    if champion is None or theirs is None:
        if declared.floor is None:
            return CheckResult("validation", False, f"{measured}; there is no champion yet and promotion.floor is not declared")
        passed = mine >= declared.floor if higher else mine <= declared.floor
        return CheckResult("validation", passed, f"{measured}; no champion yet, floor {declared.floor:g} ({'higher' if higher else 'lower'} is better)")
    bound = theirs - declared.margin if higher else theirs + declared.margin
    passed = mine >= bound if higher else mine <= bound
    return CheckResult(
        "validation", passed, f"{measured}; champion version {champion.version}: {theirs:.4f}, margin {declared.margin:g}, so at {'least' if higher else 'most'} {bound:.4f}"
    )


def data_check(candidate: ResolvedModel) -> CheckResult:
    """The data checks the train job recorded for the candidate's training set."""
    try:
        manifest = mlflow.artifacts.load_dict(f"runs:/{candidate.run_id}/{MANIFEST_ARTIFACT}")
    except mlflow.exceptions.MlflowException as exc:
        return CheckResult("data_checks", False, f"the training run {candidate.run_id} has no {MANIFEST_ARTIFACT}: {exc.message}")
    checks = manifest.get("checks")
    if not isinstance(checks, dict) or not checks:
        return CheckResult("data_checks", False, "the model's manifest records no data checks; retrain it on a training set built by this parity")
    details = [f"{name} {c['share']:.2%} (max {c['max']:.2%}, {c['detail']})" for name, c in sorted(checks.items())]
    failed = [name for name, c in sorted(checks.items()) if not c["passed"]]
    return CheckResult("data_checks", not failed, ("failed " + ", ".join(failed) + ": " if failed else "") + "; ".join(details))


def spec_check(catalog: Catalog, candidate: ResolvedModel) -> CheckResult:
    """The candidate's feature spec against today's transform code and feature tables."""
    problems = [f"code changed: {changed}" for changed in changed_transforms(candidate.spec)]
    for lookup in candidate.spec.feature_sets:
        decl = FeatureSetDecl.model_validate(lookup["feature_set"])
        version = catalog.version(decl.table)
        if version is None:
            problems.append(f"{decl.table} does not exist")
            continue
        columns = set(catalog.snapshot(decl.table, version).columns)
        missing = [c for c in [*decl.entity, decl.timestamp, *decl.feature_names()] if c not in columns]
        if missing:
            problems.append(f"{decl.table}@{version} lacks {', '.join(missing)}")
    names = ", ".join(str(lookup["feature_set"]["name"]) for lookup in candidate.spec.feature_sets)
    return CheckResult("feature_spec", not problems, "; ".join(problems) or f"feature sets {names} resolve against today's code and tables")


def approval_check(settings: Settings, events: list[ModelEvent], version: str, trainer: str | None) -> CheckResult:
    """An approval of the version by someone other than its trainer, where the environment requires one."""
    if not settings.governance.require_approval:
        return CheckResult("approval", True, f"not required in env {settings.env} (governance.require_approval: false)")
    if trainer is None:
        return CheckResult("approval", False, f"who trained version {version} is not recorded, so no approval can be shown to be someone else's")
    approvals = [e for e in events if e.event == APPROVED and e.version == version and not same_identity(e.actor, trainer)]
    if not approvals:
        return CheckResult(
            "approval", False, f"no approval of version {version} by someone other than its trainer ({trainer or 'unknown'}); run parity approve"
        )
    last = approvals[-1]
    return CheckResult("approval", True, f"approved by {last.actor} at {last.at:%Y-%m-%d %H:%M:%S} UTC: {last.reason}")
