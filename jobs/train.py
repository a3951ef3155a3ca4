"""Run the declared sweep (conf/sweeps/, chosen by training.sweep), log it to MLflow, and register
the best model as the `challenger`.

Single-node learners run one trial per Spark task, `parallelism` at a time, with the training
split broadcast once; distributed learners run trials one after another, each a Spark ML fit
over the whole training split. Every trial is logged from the driver as a nested run, as it
finishes; the parent run holds the sweep's declaration, the best trial, the conf hash, the git
sha, and the training set and its feature tables as Delta dataset inputs with their versions.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from parity import features, governance, learners, training
from parity.conf import FeatureSetDecl, SweepDecl
from parity.jobkit import JobContext, run_job
from parity.model import FeatureSpec, log_packaged_model
from parity.schema import CUSTOMER_ID, LABEL, LABEL_AVAILABLE_AT, LABEL_TS, SCORE_TS
from parity.sweep import DriverRunner, Runner, SparkTaskRunner, SweepResult, run_sweep

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def body(ctx: JobContext) -> None:
    settings, tables = ctx.settings, ctx.settings.tables
    sweep_decl = settings.sweep()
    learner = learners.get_learner(sweep_decl.learner)
    frame, version = ctx.catalog.read_versioned(tables.training_set)
    built_with = ctx.catalog.commit_metadata(tables.training_set, version)
    lookups = built_with.get("feature_lookups", [])
    if not isinstance(lookups, list) or not lookups:
        raise ValueError(f"{tables.training_set}@{version} records no feature lookups; rebuild it with build_training_set")
    decls = [FeatureSetDecl.model_validate(lookup["feature_set"]) for lookup in lookups]
    numeric, categorical = features.model_inputs(decls)
    split = {
        "ts_column": LABEL_TS, "label_column": LABEL, "available_column": LABEL_AVAILABLE_AT,
        "numeric": numeric, "categorical": categorical, "validation_fraction": sweep_decl.validation.fraction,
    }
    spec = FeatureSpec(
        entity=CUSTOMER_ID,
        timestamp=SCORE_TS,
        feature_sets=list(lookups),
        request_time=[r.model_dump(mode="json") for decl in decls for r in decl.request_time],
        numeric=numeric,
        categorical=categorical,
        code_hash=ctx.record.code_hash,
        training_set={"table": tables.training_set, "version": version, "path": ctx.catalog.path(tables.training_set)},
        learner=learner.name,
        flavor="spark" if learner.mode == "distributed" else "sklearn",
    )

    experiment_id = governance.configure_mlflow(settings)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"sweep-{sweep_decl.name}-{ctx.record.run_id[:8]}") as parent:
        mlflow.set_tags(
            {
                "parity.job_run_id": ctx.record.run_id,
                "parity.conf_hash": ctx.record.conf_hash,
                "parity.git_sha": ctx.record.git_sha,
                "parity.code_hash": ctx.record.code_hash,
                "parity.training_set": f"{tables.training_set}@{version}",
                "parity.sweep": sweep_decl.name,
                "parity.learner": learner.name,
                "parity.execution": learner.mode,
            }
        )
        _log_declaration(sweep_decl)
        mlflow.log_dict(json.loads(spec.to_json()), "feature_spec.json")
        mlflow.log_dict({"training_set": spec.training_set, "inputs": built_with.get("manifest", [])}, "manifest.json")
        _log_inputs(ctx, frame, version, built_with)

        def log(trial: Any) -> None:
            governance.log_trial(parent.info.run_id, experiment_id, trial)

        run = _single_node if learner.mode == "single_node" else _distributed
        trained = run(ctx, sweep_decl, learner, frame, split, log)
        result, metrics = trained.sweep, trained.metrics
        mlflow.log_params({f"best.{k}": v for k, v in result.best.params.items()})
        mlflow.log_metrics({f"best_{k}": v for k, v in metrics.items()})
        mlflow.log_metrics({"best_trial": result.best.number, "failed_trials": _count(result, "failed"), "cancelled_trials": _count(result, "cancelled")})
        mlflow.set_tag("parity.stopped_by", result.stopped_by)
        # The input example: what a caller gives (key, time, and the features it may pass assembled); no PII.
        example = trained.example.rename(columns={LABEL_TS: SCORE_TS})[[CUSTOMER_ID, SCORE_TS, *numeric, *categorical]]
        info = log_packaged_model(trained.model, spec, example, registered_model=settings.mlflow.registered_model)
    model_version = str(info.registered_model_version)
    governance.tag_model_version(
        settings.mlflow.registered_model,
        model_version,
        {"parity.training_run": parent.info.run_id, "parity.training_set": f"{tables.training_set}@{version}", "parity.sweep": sweep_decl.name},
    )
    governance.set_alias(settings.mlflow.registered_model, "challenger", model_version)

    ctx.record.mlflow_run_id, ctx.record.model_version = parent.info.run_id, model_version
    ctx.counts.update({**trained.rows, "trials": len(result.trials), "trials.failed": _count(result, "failed"), "trials.cancelled": _count(result, "cancelled")})
    ctx.summary_extra(
        model_name=settings.mlflow.registered_model,
        sweep=sweep_decl.name,
        learner=learner.name,
        best_metric={sweep_decl.objective.metric: metrics[sweep_decl.objective.metric]},
        best_trial=result.best.number,
        stopped_by=result.stopped_by,
        validation_cutoff=str(trained.cutoff),
    )


@dataclass
class Trained:
    """A finished sweep and its best model, refitted on the training split."""

    sweep: SweepResult
    model: Any
    metrics: dict[str, float]
    example: pd.DataFrame  # a few validation rows of the training set
    rows: dict[str, int]
    cutoff: pd.Timestamp


def _single_node(ctx: JobContext, decl: SweepDecl, learner: learners.Learner, frame: DataFrame, split: dict[str, Any], log: Any) -> Trained:
    """One trial per Spark task; the pandas training split travels once, as a broadcast."""
    labelled: pd.DataFrame = frame.toPandas()
    data = training.time_split(labelled, **split)
    shipped = ctx.spark.sparkContext.broadcast(data)
    seed = decl.seed

    def objective(params: dict[str, Any]) -> dict[str, float]:
        return learners.fit_and_evaluate(learner, params, shipped.value, seed=seed)[1]

    try:
        result = _sweep(SparkTaskRunner(ctx.spark, objective, parallelism=decl.parallelism), decl, log)
    finally:
        shipped.destroy()
    model, metrics = learners.fit_and_evaluate(learner, result.best.params, data, seed=seed)
    rows = {"rows.train": len(data.y_train), "rows.valid": len(data.y_valid), "rows.unknown_at_cutoff": data.unknown_at_cutoff}
    return Trained(result, model, metrics, labelled.loc[data.x_valid.index[:5]], rows, data.cutoff)


def _distributed(ctx: JobContext, decl: SweepDecl, learner: learners.Learner, frame: DataFrame, split: dict[str, Any], log: Any) -> Trained:
    """Trials one after another on the driver, each a Spark ML fit over the whole training split."""
    data = training.spark_time_split(frame, **split)

    def fit(params: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        return learners.fit_spark(learner, params, data.train, data.valid, data.numeric, data.categorical, seed=decl.seed)

    result = _sweep(DriverRunner(lambda params: fit(params)[1], parallelism=decl.parallelism, spark=ctx.spark), decl, log)
    model, metrics = fit(result.best.params)
    example = frame.filter(F.col(LABEL_TS) >= F.lit(data.cutoff.to_pydatetime())).limit(5).toPandas()
    rows = {"rows.train": data.rows_train, "rows.valid": data.rows_valid, "rows.unknown_at_cutoff": data.unknown_at_cutoff}
    return Trained(result, model, metrics, example, rows, data.cutoff)


def _sweep(runner: Runner, decl: SweepDecl, log: Any) -> SweepResult:
    return run_sweep(
        runner,
        decl.search_space(),
        metric=decl.objective.metric,
        direction=decl.objective.direction,
        max_evals=decl.max_evals,
        parallelism=decl.parallelism,
        seed=decl.seed,
        algorithm=decl.algorithm,
        timeout_seconds=decl.timeout_seconds,
        early_stop_evals=decl.early_stop.no_improvement_evals if decl.early_stop else None,
        on_trial=log,
    )


def _count(result: SweepResult, status: str) -> int:
    return sum(t.status == status for t in result.trials)


def _log_declaration(decl: SweepDecl) -> None:
    mlflow.log_dict(decl.model_dump(mode="json"), "sweep.json")
    mlflow.log_dict(decl.space, "search_space.json")
    mlflow.log_params(
        {
            "sweep": decl.name, "learner": decl.learner, "algorithm": decl.algorithm, "max_evals": decl.max_evals,
            "parallelism": decl.parallelism, "timeout_seconds": decl.timeout_seconds, "seed": decl.seed,
            "objective": f"{decl.objective.direction} {decl.objective.metric}", "validation": f"time_split {decl.validation.fraction}",
            "early_stop_evals": decl.early_stop.no_improvement_evals if decl.early_stop else None,
        }
    )


def _log_inputs(ctx: JobContext, frame: Any, version: int, built_with: dict[str, Any]) -> None:
    """The training set and every table its manifest names, as MLflow Delta dataset inputs."""
    table = ctx.settings.tables.training_set
    digest = str(built_with.get("digest") or f"{table}@{version}")
    governance.log_delta_input(frame, table=table, path=ctx.catalog.path(table), version=version, digest=digest, context="training", targets=LABEL)
    for entry in built_with.get("manifest", []):
        name, pinned = entry["table"], int(entry["version"])
        source = ctx.catalog.snapshot(name, pinned)  # lineage already has them, through the training set's manifest
        governance.log_delta_input(source, table=name, path=ctx.catalog.path(name), version=pinned, digest=str(entry.get("digest", "")), context="feature_table")


def main(argv: list[str] | None = None) -> int:
    return run_job("train", argv, body, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
