"""MLflow at the boundary: tracking set-up, sweep logging, registration, model resolution.

Trials of a sweep run on executors, where there is no active MLflow run and (on a cluster)
no access to the driver's SQLite file. So trials return their results as data, and the
driver logs one nested run per trial under the sweep's parent run: no concurrent writers,
no "database is locked".
"""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from parity.conf import Settings
from parity.training import SweepResult


class ModelNotFoundError(LookupError):
    """The registry has no model version matching the request."""


def configure_mlflow(settings: Settings) -> str:
    """Point MLflow at the conf's tracking store and return the experiment id (created if new)."""
    uri = settings.mlflow.tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(settings.mlflow.experiment)
    if experiment is not None:
        return experiment.experiment_id
    artifact_root = settings.mlflow.artifact_root
    location = artifact_root if "://" in artifact_root else Path(artifact_root).as_uri()
    return client.create_experiment(settings.mlflow.experiment, artifact_location=location)


def log_trials(parent_run_id: str, experiment_id: str, sweep: SweepResult) -> None:
    """One nested run per trial under the parent: its parameters, metrics, duration and status."""
    client = MlflowClient()
    for trial in sweep.trials:
        run = client.create_run(
            experiment_id,
            run_name=f"trial-{trial.number:03d}",
            tags={"mlflow.parentRunId": parent_run_id, "parity.trial": str(trial.number)},
        )
        for key, value in trial.params.items():
            client.log_param(run.info.run_id, key, value)
        for key, value in trial.metrics.items():
            client.log_metric(run.info.run_id, key, value)
        client.log_metric(run.info.run_id, "trial_seconds", trial.seconds)
        if trial.error:
            client.set_tag(run.info.run_id, "parity.error", trial.error[:500])
        status = RunStatus.to_string(RunStatus.FINISHED if trial.status == "ok" else RunStatus.FAILED)
        client.set_terminated(run.info.run_id, status=status)


def resolve_model_version(settings: Settings) -> tuple[str, str, str]:
    """Resolve `scoring.model_version` ('latest', a number or '@alias') of the registered model.

    Returns:
        (model URI pinned to a version, version, the run that produced it).

    Raises:
        ModelNotFoundError: no such model or version.
    """
    name, wanted = settings.mlflow.registered_model, settings.scoring.model_version
    client = MlflowClient()
    try:
        if wanted == "latest":
            versions = client.search_model_versions(f"name = '{name}'")
            if not versions:
                raise ModelNotFoundError(f"registered model '{name}' has no versions; run the train job first")
            found = max(versions, key=lambda v: int(v.version))
        elif wanted.startswith("@"):
            found = client.get_model_version_by_alias(name, wanted[1:])
        else:
            found = client.get_model_version(name, wanted)
    except mlflow.exceptions.MlflowException as exc:
        raise ModelNotFoundError(f"registered model '{name}' version {wanted}: {exc.message}") from exc
    return f"models:/{name}/{found.version}", str(found.version), str(found.run_id)


def tag_model_version(name: str, version: str, tags: dict[str, str]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def set_alias(name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, alias, version)
