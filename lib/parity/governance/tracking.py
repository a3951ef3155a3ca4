"""MLflow tracking: the store set-up, runs and what they log, one nested run per sweep trial,
Delta dataset inputs, and the artifacts runs and model versions hold.

This module and `parity.governance.registry` are parity's one door to MLflow's tracking
store and registry (`.importlinter` holds every other room but `model` and `scoring` to it).

Trials of a sweep run on executors, where there is no active MLflow run and (on a cluster)
no access to the driver's SQLite file. So trials return their results as data, and the
driver logs one nested run per trial under the sweep's parent run, as each trial finishes,
with the experiment and parent run id given explicitly: one writer, no "database is locked".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import mlflow
from mlflow.data.delta_dataset_source import DeltaDatasetSource
from mlflow.data.spark_dataset import SparkDataset
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient
from pyspark.sql import DataFrame

from parity.core.conf import Settings, SweepDecl


class ArtifactNotFoundError(LookupError):
    """MLflow could not give an artifact: `uri` names it, `message` is MLflow's reason."""

    def __init__(self, uri: str, message: str) -> None:
        super().__init__(message)
        self.uri, self.message = uri, message


class FinishedTrial(Protocol):
    """What a trial's nested run records (the sweep engine's `TrialResult` is one)."""

    @property
    def number(self) -> int: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def status(self) -> str: ...
    @property
    def metrics(self) -> dict[str, float]: ...
    @property
    def seconds(self) -> float: ...
    @property
    def error(self) -> str | None: ...


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
    if artifact_root is None:  # the tracking server stores (and serves) the artifacts
        return client.create_experiment(settings.mlflow.experiment)
    location = artifact_root if "://" in artifact_root else Path(artifact_root).as_uri()
    return client.create_experiment(settings.mlflow.experiment, artifact_location=location)


def log_trial(parent_run_id: str, experiment_id: str, trial: FinishedTrial) -> str:
    """One nested run for a finished trial, under the sweep's parent: parameters, metrics, duration, status."""
    client = MlflowClient()
    run = client.create_run(
        experiment_id,
        run_name=f"trial-{trial.number:03d}",
        tags={
            "mlflow.parentRunId": parent_run_id,
            "parity.trial": str(trial.number),
            "parity.trial_status": trial.status,
        },
    )
    run_id = run.info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, now, 0) for k, v in trial.metrics.items()]
        + [Metric("trial_seconds", trial.seconds, now, 0)],
        params=[Param(k, str(v)) for k, v in trial.params.items()],
        tags=[RunTag("parity.error", trial.error[:500])] if trial.error else [],
    )
    status = (
        RunStatus.FINISHED
        if trial.status == "ok"
        else RunStatus.KILLED
        if trial.status == "cancelled"
        else RunStatus.FAILED
    )
    client.set_terminated(run_id, status=RunStatus.to_string(status))
    return run_id


@dataclass(frozen=True)
class DeltaInput:
    """A Delta table version a run read: its logical `table`, where it lives (`path`), the
    `version` read, the content `digest` of that version, and its row count (`rows`, None when
    unknown)."""

    table: str
    path: str
    version: int
    digest: str
    rows: int | None = None


class DeltaVersionDataset(SparkDataset):
    """A pinned Delta table version as an MLflow dataset named `<table>@<version>`, profiled by
    the row count parity already knows (MLflow's own profile would run a Spark job per table to
    estimate it)."""

    def __init__(self, df: DataFrame, delta: DeltaInput, *, targets: str | None = None):
        # As text, as MLflow's from_spark passes it: DeltaDatasetSource.to_dict leaves out a version 0.
        source = DeltaDatasetSource(path=delta.path, delta_table_version=str(delta.version))  # type: ignore[arg-type]
        name, digest = f"{delta.table}@{delta.version}", delta.digest[:36]
        super().__init__(df, source, targets=targets, name=name, digest=digest)
        self._rows = delta.rows

    @property
    def profile(self) -> dict[str, Any] | None:
        return None if self._rows is None else {"num_rows": self._rows}


def log_delta_input(
    spark_frame: DataFrame, delta: DeltaInput, *, context: str, targets: str | None = None
) -> None:
    """Record a Delta table version the active run read, as an MLflow dataset input (source: Delta
    path + version; profile: its `rows`, when known)."""
    mlflow.log_input(DeltaVersionDataset(spark_frame, delta, targets=targets), context=context)


def log_sweep_declaration(decl: SweepDecl) -> None:
    """The sweep's declaration and search space as artifacts of the active run, and its settings as parameters."""
    mlflow.log_dict(decl.model_dump(mode="json"), "sweep.json")
    mlflow.log_dict(decl.space, "search_space.json")
    mlflow.log_params(
        {
            "sweep": decl.name,
            "learner": decl.learner,
            "algorithm": decl.algorithm,
            "max_evals": decl.max_evals,
            "parallelism": decl.parallelism,
            "timeout_seconds": decl.timeout_seconds,
            "seed": decl.seed,
            "objective": f"{decl.objective.direction} {decl.objective.metric}",
            "validation": f"time_split {decl.validation.fraction}",
            "early_stop_evals": decl.early_stop.no_improvement_evals if decl.early_stop else None,
        }
    )


@contextmanager
def start_run(experiment_id: str, run_name: str) -> Iterator[str]:
    """An active run in the experiment, its id given to the block; it ends FINISHED, or FAILED
    when the block raises."""
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        yield run.info.run_id


def set_tags(tags: dict[str, Any]) -> None:
    """Tags on the active run."""
    mlflow.set_tags(tags)


def log_params(params: dict[str, Any]) -> None:
    """Parameters of the active run."""
    mlflow.log_params(params)


def log_metrics(metrics: dict[str, float]) -> None:
    """Metrics of the active run."""
    mlflow.log_metrics(metrics)


def log_dict(data: dict[str, Any], artifact: str) -> None:
    """A JSON artifact of the active run."""
    mlflow.log_dict(data, artifact)


def load_run_dict(run_id: str, artifact: str) -> dict[str, Any]:
    """A JSON artifact a run logged.

    Raises:
        ArtifactNotFoundError: MLflow cannot give it (no such run or artifact).
    """
    uri = f"runs:/{run_id}/{artifact}"
    try:
        return dict(mlflow.artifacts.load_dict(uri))
    except mlflow.exceptions.MlflowException as exc:
        raise ArtifactNotFoundError(uri, exc.message) from exc


def download_artifacts(uri: str, folder: str) -> Path:
    """The artifacts at `uri` (a run's or a model version's, e.g. `models:/name/3`) copied into `folder`.

    Raises:
        ArtifactNotFoundError: MLflow cannot give them.
    """
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder))
    except mlflow.exceptions.MlflowException as exc:
        raise ArtifactNotFoundError(uri, exc.message) from exc


def run_user(run_id: str) -> str | None:
    """The user MLflow recorded on a run (its `mlflow.user` tag)."""
    return MlflowClient().get_run(run_id).data.tags.get("mlflow.user")
