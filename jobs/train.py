"""Sweep hyperparameters on Spark (SparkTrials), log to MLflow, and register the best model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow

from parity import features, governance, training
from parity.conf import FeatureSetDecl
from parity.jobkit import JobContext, run_job
from parity.model import FeatureSpec, log_packaged_model
from parity.schema import CUSTOMER_ID, FEATURE_TS, LABEL, LABEL_AVAILABLE_AT, LABEL_TS

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def body(ctx: JobContext) -> None:
    settings, tables = ctx.settings, ctx.settings.tables
    frame, version = ctx.catalog.read_versioned(tables.training_set)
    built_with = ctx.catalog.commit_metadata(tables.training_set, version)
    lookups = built_with.get("feature_lookups", [])
    if not isinstance(lookups, list) or not lookups:
        raise ValueError(f"{tables.training_set}@{version} records no feature lookups; rebuild it with build_training_set")
    decls = [FeatureSetDecl.model_validate(lookup["feature_set"]) for lookup in lookups]
    numeric, categorical = features.model_inputs(decls)
    data = training.time_split(
        frame.toPandas(),
        ts_column=LABEL_TS,
        label_column=LABEL,
        available_column=LABEL_AVAILABLE_AT,
        numeric=numeric,
        categorical=categorical,
        validation_fraction=settings.training.validation_fraction,
    )
    spec = FeatureSpec(
        entity=CUSTOMER_ID,
        timestamp=FEATURE_TS,
        feature_sets=list(lookups),
        request_time=[r.model_dump(mode="json") for decl in decls for r in decl.request_time],
        numeric=numeric,
        categorical=categorical,
        code_hash=ctx.record.code_hash,
        training_set={"table": tables.training_set, "version": version, "path": ctx.catalog.path(tables.training_set)},
    )

    experiment_id = governance.configure_mlflow(settings)
    conf = settings.training
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"sweep-{ctx.record.run_id[:8]}") as parent:
        mlflow.set_tags(
            {
                "parity.job_run_id": ctx.record.run_id,
                "parity.conf_hash": ctx.record.conf_hash,
                "parity.git_sha": ctx.record.git_sha,
                "parity.code_hash": ctx.record.code_hash,
                "parity.training_set": f"{tables.training_set}@{version}",
            }
        )
        mlflow.log_params({"max_evals": conf.max_evals, "parallelism": conf.parallelism, "seed": conf.seed})
        mlflow.log_dict({k: str(v) for k, v in training.SEARCH_SPACE.items()}, "search_space.json")
        mlflow.log_dict(json.loads(spec.to_json()), "feature_spec.json")
        mlflow.log_dict({"training_set": spec.training_set, "inputs": built_with.get("manifest", [])}, "manifest.json")
        sweep = training.run_sweep(
            ctx.spark, data, max_evals=conf.max_evals, parallelism=conf.parallelism, seed=conf.seed
        )
        governance.log_trials(parent.info.run_id, experiment_id, sweep)
        pipeline, metrics = training.fit_and_evaluate(sweep.best.params, data, seed=conf.seed)
        mlflow.log_params({f"best.{k}": v for k, v in sweep.best.params.items()})
        mlflow.log_metrics({f"best_{k}": v for k, v in metrics.items()})
        mlflow.log_metric("failed_trials", sum(t.status != "ok" for t in sweep.trials))
        info = log_packaged_model(
            pipeline, spec, data.x_valid.head(5), registered_model=settings.mlflow.registered_model
        )
    model_version = str(info.registered_model_version)
    governance.tag_model_version(
        settings.mlflow.registered_model,
        model_version,
        {"parity.training_run": parent.info.run_id, "parity.training_set": f"{tables.training_set}@{version}"},
    )
    governance.set_alias(settings.mlflow.registered_model, "challenger", model_version)

    ctx.record.mlflow_run_id, ctx.record.model_version = parent.info.run_id, model_version
    ctx.counts.update(
        {
            "rows.train": len(data.y_train),
            "rows.valid": len(data.y_valid),
            "rows.unknown_at_cutoff": data.unknown_at_cutoff,
            "trials": len(sweep.trials),
            "trials.failed": sum(t.status != "ok" for t in sweep.trials),
        }
    )
    ctx.summary_extra(
        model_name=settings.mlflow.registered_model,
        best_metric={training.OBJECTIVE_METRIC: metrics[training.OBJECTIVE_METRIC]},
        best_trial=sweep.best.number,
        validation_cutoff=str(data.cutoff),
    )


def main(argv: list[str] | None = None) -> int:
    return run_job("train", argv, body, conf_dir=CONF_DIR)


if __name__ == "__main__":
    sys.exit(main())
