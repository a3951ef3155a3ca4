"""A real Spark standalone cluster on 127.0.0.1: the jobs run unchanged and give the local answers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from parity.core.catalog import table_path
from parity.core.versioned import current_rows
from tests.conftest import PipelineRun
from tests.support import REPO, free_port, submit, wait_for_port

pytestmark = pytest.mark.integration  # runs jobs through spark-submit (not in make test-fast)

SPARK_CLASS = REPO / ".venv" / "bin" / "spark-class"


def _wait_for_workers(log: Path, count: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("Registering worker") >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{count} workers did not register with the master: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A master and two one-core workers, started with spark-class and always stopped."""
    work = tmp_path_factory.mktemp("cluster")
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,  # spark-class finds SPARK_HOME through the venv's pyspark
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TZ": "UTC",
    }
    port = free_port()
    master_url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], log: Path, **extra_env: str) -> None:
        procs.append(
            subprocess.Popen(
                [str(SPARK_CLASS), *args],
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                env={**env, **extra_env},
                start_new_session=True,
            )
        )

    try:
        master_log = work / "master.log"
        start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(free_port())], master_log)
        wait_for_port(port)
        for i in range(2):
            start(
                ["org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1", "--memory", "1536m",
                 "--webui-port", str(free_port()), master_url],
                work / f"worker{i}.log",
                SPARK_WORKER_DIR=str(work / f"worker{i}"),
            )
        _wait_for_workers(master_log, 2)
        yield master_url, work
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_cluster_runs_give_the_local_results(
    cluster: tuple[str, Path], pipeline: PipelineRun, spark: SparkSession, tmp_path: Path
) -> None:
    master_url, work_dir = cluster
    local = pipeline.settings()
    # Same raw inputs and a copy of the MLflow store (the local run's models, in the same
    # artifact folder), but a separate storage root and registry for what the cluster writes.
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    shutil.copyfile(local.mlflow.tracking_uri.removeprefix("sqlite:///"), tmp_path / "mlflow.db")
    # The local training set too (the cluster's feature tables match the local ones, checked
    # below, and build_training_set on a cluster adds nothing the other jobs do not cover).
    churn = local.model("churn")
    for name in (local.tables.raw_customers, local.tables.raw_events, local.tables.raw_labels, churn.training_set()):
        target = tmp_path / "data" / name.replace(".", "/")
        shutil.copytree(table_path(local, name), target)
    overrides = [
        f"storage.root={tmp_path}/data",
        f"mlflow.tracking_uri={tracking}",
        f"mlflow.artifact_root={local.mlflow.artifact_root}",
        f"spark.master={master_url}",
        "spark.conf.spark.driver.host=127.0.0.1",  # the workers and the driver all on loopback
    ] + [o for o in pipeline.overrides if o.startswith(("data.", "models.", "sweeps."))]
    cluster_settings = pipeline.settings().model_copy(update={"storage": local.storage.model_copy(update={"root": f"{tmp_path}/data"})})

    # The sweep runs its trials as Spark tasks on the workers; scoring then pins the model the
    # local run trained, so both runs score with the same model.
    local_model = pipeline.summary("train")["model_version"]
    summaries = {}
    for job in ("build_features", "train", "score"):
        extra = [f"scoring.model_version={local_model}"] if job == "score" else []
        run = submit(job, overrides + extra, env="cluster", extra_job_args=["--model", "churn"] if job != "build_features" else None)
        assert run.returncode == 0, f"{job} on the cluster failed:\n{run.stderr[-4000:]}"
        assert run.summary["status"] == "succeeded"
        summaries[job] = run.summary
    trained = summaries["train"]
    client = MlflowClient(tracking, tracking)
    parent = client.get_run(trained["mlflow_run_id"])
    children = client.search_runs([parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == trained["counts"]["trials"] == local.sweeps[churn.sweep].max_evals
    assert trained["model_version"] != local_model and summaries["score"]["model_version"] == local_model

    def read(settings, name: str):  # a table's rows as of now (feature rows without their landing times)
        return current_rows(spark.read.format("delta").load(table_path(settings, name)))

    for name in ("features.customer_activity", "features.customer_profile", "quarantine.events"):
        assertDataFrameEqual(read(cluster_settings, name), read(local, name))
    assertDataFrameEqual(  # the same predictions, written by another scoring run
        read(cluster_settings, churn.predictions()).drop("scoring_run_id"),
        read(local, churn.predictions()).drop("scoring_run_id"),
        rtol=1e-9,
    )

    # A distributed learner on the cluster: Spark ML trials one after another, then a score
    # with its model, which runs as a distributed transform rather than a pandas UDF.
    distributed = ["models.churn.sweep=spark_gbt", "sweeps.spark_gbt.max_evals=2", "sweeps.spark_gbt.space.max_iter=10"]
    run = submit("train", overrides + distributed, env="cluster", extra_job_args=["--model", "churn"])
    assert run.returncode == 0, f"train (spark_gbt) on the cluster failed:\n{run.stderr[-4000:]}"
    gbt = run.summary
    assert gbt["learner"] == "spark.gbt" and gbt["counts"]["trials"] == 2 and gbt["counts"]["trials.failed"] == 0
    run = submit("score", overrides + [f"scoring.model_version={gbt['model_version']}"], env="cluster", extra_job_args=["--model", "churn"])
    assert run.returncode == 0, f"score with the spark_gbt model on the cluster failed:\n{run.stderr[-4000:]}"
    scored = read(cluster_settings, churn.predictions()).filter(f"model_version = '{gbt['model_version']}'").toPandas()
    assert len(scored) == run.summary["counts"]["predictions.out"] > 0 and scored["prediction"].between(0, 1).all()

    # Every job ran as an application with executors on both workers, not in a local driver.
    for worker in ("worker0", "worker1"):
        apps = [app for app in (work_dir / worker).glob("app-*") if any(d.is_dir() for d in app.iterdir())]
        assert len(apps) == 5, f"{worker} ran executors for {len(apps)} of the 5 jobs"
