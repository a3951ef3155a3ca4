"""The train job's flow: run the declared sweep on the newest training set, log it to MLflow,
package the best model with its feature spec, and register it as the `challenger` (the
`registered` event in audit.model_events records who trained it). The promotion gate
(`parity promote`) decides whether it becomes the `champion`.

Every trial is logged from the driver as a nested run, as it finishes; the parent run holds
the sweep's declaration, the best trial, the conf hash, the git sha, and the training set and
its feature tables as Delta dataset inputs with their versions.
"""

from __future__ import annotations

import json
from typing import Any

from pyspark.sql import DataFrame

from parity.app.jobkit import JobContext
from parity.core.catalog import Catalog
from parity.core.columns import SCORE_TS
from parity.core.conf import FeatureSetDecl, ModelDecl, SweepDecl
from parity.core.digests import content_digest, digest_rows
from parity.features.training_sets import check_training_set
from parity.governance import gate, model_events, registry, tracking
from parity.model.packaged import log_packaged_model
from parity.model.spec import FeatureSpec
from parity.training.declared_sweep import LabelledColumns, TrainedSweep, run_declared_sweep
from parity.training.inputs import INPUT_CONTRACT, model_inputs_of
from parity.training.learners import get_learner
from parity.training.sweep import TrialResult


def train(ctx: JobContext, model: ModelDecl) -> None:
    """Train, log and register one declared model from its newest training set (the train job's body)."""
    settings, labels, name = ctx.settings, model.labels, model.training_set()
    sweep_decl = settings.sweeps[model.sweep]
    learner = get_learner(sweep_decl.learner)
    frame, version = ctx.catalog.read_versioned(name)
    built_with = ctx.catalog.commit_metadata(name, version)
    lookups = built_with.get("feature_lookups", [])
    if not isinstance(lookups, list) or not lookups:
        raise ValueError(f"{name}@{version} records no feature lookups; rebuild it with build_training_set")
    numeric, categorical = model_inputs_of(lookups)
    spec = FeatureSpec(
        entity=next(iter(labels.keys)),
        timestamp=SCORE_TS,
        feature_sets=list(lookups),
        request_time=[
            r.model_dump(mode="json")
            for lookup in lookups
            for r in FeatureSetDecl.model_validate(lookup["feature_set"]).request_time
        ],
        numeric=numeric,
        categorical=categorical,
        code_hash=ctx.record.code_hash,
        training_set={"table": name, "version": version, "path": ctx.catalog.path(name)},
        learner=learner.name,
        flavor="spark" if learner.mode == "distributed" else "sklearn",
        input_contract=INPUT_CONTRACT,  # the fitted pipelines of training.learners prepare their own inputs
        model=model.name,
        task=model.task,
        keys=list(labels.keys),
        columns=labels.lookup_columns(),
    )
    columns = LabelledColumns.of(model, numeric, categorical)

    experiment_id = tracking.configure_mlflow(settings)
    trainer = model_events.current_identity(
        settings.mlflow.tracking_uri
    )  # before any work: who trains is recorded with the version
    with tracking.start_run(
        experiment_id, run_name=f"sweep-{sweep_decl.name}-{ctx.record.run_id[:8]}"
    ) as parent_run_id:
        tracking.set_tags(
            {
                "parity.job_run_id": ctx.record.run_id,
                "parity.conf_hash": ctx.record.conf_hash,
                "parity.git_sha": ctx.record.git_sha,
                "parity.code_hash": ctx.record.code_hash,
                "parity.model": model.name,
                "parity.training_set": f"{name}@{version}",
                "parity.sweep": sweep_decl.name,
                "parity.learner": learner.name,
                "parity.execution": learner.mode,
            }
        )
        tracking.log_sweep_declaration(sweep_decl)
        tracking.log_dict(json.loads(spec.to_json()), "feature_spec.json")
        checks = _data_checks(frame, built_with, model)
        tracking.set_tags(
            {
                "parity.data_checks": "passed"
                if checks and all(c["passed"] for c in checks.values())
                else "failed"
            }
        )
        # The digest of the rows trained on: `parity reproduce` rebuilds the set from its manifest and compares.
        trained_on = {**spec.training_set, "digest": content_digest(frame)}
        manifest = {"training_set": trained_on, "inputs": built_with.get("manifest", []), "checks": checks}
        tracking.log_dict(manifest, gate.MANIFEST_ARTIFACT)
        _log_inputs(ctx, model, frame, version, built_with)

        def log(trial: TrialResult) -> None:
            tracking.log_trial(parent_run_id, experiment_id, trial)

        trained = run_declared_sweep(ctx.spark, sweep_decl, frame, columns, on_trial=log)
        _log_outcome(trained)
        # The input example: what a caller gives (keys, mapped columns, time, and the features it may
        # pass assembled); no PII.
        example = trained.example.rename(columns={labels.time: SCORE_TS})[
            [*spec.caller_columns, SCORE_TS, *numeric, *categorical]
        ]
        info = log_packaged_model(trained.model, spec, example, registered_model=model.registered_model)
    model_version = str(info.registered_model_version)
    registry.tag_model_version(
        model.registered_model,
        model_version,
        {
            "parity.training_run": parent_run_id,
            "parity.training_set": f"{name}@{version}",
            "parity.sweep": sweep_decl.name,
        },
    )
    registry.set_alias(model.registered_model, registry.CHALLENGER, model_version)
    registered = model_events.ModelEvent(
        model_events.REGISTERED,
        model.name,
        model.registered_model,
        model_version,
        trainer,
        settings.env,
        ctx.record.run_id,
        reason=f"trained by sweep {sweep_decl.name} on {name}@{version}",
    )
    model_events.append_events(
        Catalog(ctx.spark, settings, run_id=ctx.record.run_id),
        [registered],
        settings.tables.audit_model_events,
    )
    ctx.summary_extra(trained_by=trainer, data_checks=checks)
    _report(ctx, model, sweep_decl, trained, parent_run_id, model_version)


def _data_checks(frame: DataFrame, built_with: dict[str, Any], model: ModelDecl) -> dict[str, dict[str, Any]]:
    """The training set's data checks against the model's thresholds (none for a set built
    before label counts were recorded: the gate refuses such a model)."""
    try:
        return check_training_set(frame, built_with, model.training.checks)
    except ValueError:
        return {}


def _log_outcome(trained: TrainedSweep) -> None:
    """The best trial, its parameters and metrics, and how the sweep stopped, on the parent run."""
    result = trained.sweep
    tracking.log_params({f"best.{k}": v for k, v in result.best.params.items()})
    tracking.log_metrics({f"best_{k}": v for k, v in trained.metrics.items()})
    tracking.log_metrics(
        {
            "best_trial": result.best.number,
            "failed_trials": trained.count("failed"),
            "cancelled_trials": trained.count("cancelled"),
        }
    )
    tracking.set_tags({"parity.stopped_by": result.stopped_by})


def _report(
    ctx: JobContext, model: ModelDecl, decl: SweepDecl, trained: TrainedSweep, run_id: str, model_version: str
) -> None:
    """The job's lineage and summary: the MLflow run, the model version, the counts, the best metric."""
    result = trained.sweep
    ctx.record.mlflow_run_id, ctx.record.model_version = run_id, model_version
    ctx.counts.update(
        {
            **trained.rows,
            "trials": len(result.trials),
            "trials.failed": trained.count("failed"),
            "trials.cancelled": trained.count("cancelled"),
        }
    )
    ctx.summary_extra(
        model=model.name,
        model_name=model.registered_model,
        sweep=decl.name,
        learner=decl.learner,
        best_metric={decl.objective.metric: trained.metrics[decl.objective.metric]},
        best_trial=result.best.number,
        stopped_by=result.stopped_by,
        validation_cutoff=str(trained.cutoff),
    )


def _log_inputs(
    ctx: JobContext, model: ModelDecl, frame: DataFrame, version: int, built_with: dict[str, Any]
) -> None:
    """The training set and every table its manifest names, as MLflow Delta dataset inputs,
    profiled by the row counts their commit and their manifest entries record."""
    table = model.training_set()
    digest = str(built_with.get("digest") or f"{table}@{version}")
    rows = ctx.catalog.operation_metrics(table, version).get(
        "numOutputRows"
    )  # a training set is written whole
    tracking.log_delta_input(
        frame,
        tracking.DeltaInput(table, ctx.catalog.path(table), version, digest=digest, rows=rows),
        context="training",
        targets=model.labels.label.name,
    )
    for entry in built_with.get("manifest", []):
        name, pinned, pinned_digest = entry["table"], int(entry["version"]), str(entry.get("digest", ""))
        source = ctx.catalog.snapshot(
            name, pinned
        )  # lineage already has them, through the training set's manifest
        tracking.log_delta_input(
            source,
            tracking.DeltaInput(
                name, ctx.catalog.path(name), pinned, digest=pinned_digest, rows=digest_rows(pinned_digest)
            ),
            context="feature_table",
        )
