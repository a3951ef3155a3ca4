"""A real Spark standalone cluster on 127.0.0.1: each engine path runs on its executors and gives
the local answer.

The paths, each run once on tiny data: the Arrow feature engine of `add_rolling_aggregates`
(mapInArrow over partitions) and Delta commits whose files the executors write (build_features,
through spark-submit.sh, as a user submits a job to a cluster); a sweep's trials as Spark tasks
and the vectorized predictor of batch scoring (build_training_set, train and score, in one more
driver connected to the cluster, the library shipped as spark-submit.sh ships it: one JVM for
three jobs). The local answers come from this process, on the tests' local session: the same
jobs (generate_data, build_features, and score with the model the cluster trained), and the
same sweep on the training set the cluster built. The applications' event logs show that each
path ran as tasks on the executors.
"""

from __future__ import annotations

import json
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
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from parity.core.catalog import Catalog, table_path
from parity.core.conf import ModelDecl, Settings, load_settings
from parity.core.versioned import current_rows
from parity.training.declared_sweep import LabelledColumns, run_declared_sweep
from parity.training.inputs import model_inputs_of
from tests.spark_events import AppEvents, read_apps
from tests.support import CONF_DIR, REPO, SubmitOptions, free_port, load_job, set_args, submit, wait_for_port

pytestmark = pytest.mark.integration  # runs jobs through spark-submit (not in make test-fast)

SPARK_CLASS = REPO / ".venv" / "bin" / "spark-class"
# Tiny, yet every label date has both classes and the validation split is not empty.
TINY_DATA = [
    "data.customers=100",
    "data.days=150",
    "data.label_every_days=7",
    "sweeps.hist_gradient_boosting.max_evals=2",  # one trial per executor
]
FEATURE_TABLES = ("features.customer_activity", "features.customer_profile", "quarantine.events")


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
        start(
            [
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--webui-port",
                str(free_port()),
            ],
            master_log,
        )
        wait_for_port(port)
        for i in range(2):
            start(
                [
                    "org.apache.spark.deploy.worker.Worker",
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    "1",
                    "--memory",
                    "1536m",
                    "--webui-port",
                    str(free_port()),
                    master_url,
                ],
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


def _run_here(job: str, overrides: list[str], capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    """Run a job's main() in this process, on the tests' local session, and return its summary."""
    code = load_job(job).main([*set_args(overrides), *args])
    out, err = capsys.readouterr()
    assert code == 0, f"{job} (local) failed:\n{err[-4000:]}"
    return json.loads(out.strip().splitlines()[-1])


def _run_driver(plan: dict, work: Path) -> list[dict]:
    """Run jobs in one more driver, connected to the cluster (tests/cluster_driver.py)."""
    (work / "plan.json").write_text(json.dumps(plan))
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "TZ": "UTC",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "tests.cluster_driver", str(work / "plan.json")],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO,
        env=env,
    )
    assert proc.returncode == 0, f"the cluster driver failed:\n{proc.stderr[-4000:]}"
    results: list[dict] = json.loads(proc.stdout.strip().splitlines()[-1])
    for result in results:
        assert result["returncode"] == 0, f"{result['job']} on the cluster failed:\n{proc.stderr[-4000:]}"
    assert [r["job"] for r in results] == [job for job, _ in plan["jobs"]]
    return results


def _trials(tracking_uri: str, parent_run_id: str) -> dict[str, tuple[dict, dict]]:
    """A sweep's trials as MLflow logged them: number -> (params, metrics but durations)."""
    client = MlflowClient(tracking_uri)
    parent = client.get_run(parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'"
    )
    return {run.data.tags["parity.trial"]: (run.data.params, _results(run.data.metrics)) for run in children}


def _results(metrics: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k not in ("fit_seconds", "trial_seconds")}


def _local_sweep(spark: SparkSession, settings: Settings, model: ModelDecl) -> dict[str, tuple[dict, dict]]:
    """The model's sweep run here, on the tests' local session, on the newest training set."""
    catalog = Catalog(spark, settings)
    frame, version = catalog.read_versioned(model.training_set())
    lookups = catalog.commit_metadata(model.training_set(), version)["feature_lookups"]
    assert isinstance(lookups, list)
    columns = LabelledColumns.of(model, *model_inputs_of(lookups))
    trained = run_declared_sweep(spark, settings.sweeps[model.sweep], frame, columns)
    return {
        str(t.number): ({k: str(v) for k, v in t.params.items()}, _results(t.metrics))
        for t in trained.sweep.trials
    }


def _executors_ran(app: AppEvents, jobs: set[int], what: str) -> None:
    """These jobs ran as tasks on the application's executors (on the workers of 127.0.0.1)."""
    tasks = app.tasks_of(jobs)
    assert jobs and tasks, f"no task of {what} in {app.app_name} ({app.app_id})"
    ran_on = {t.executor for t in tasks}
    assert (
        "driver" not in ran_on and ran_on <= set(app.executors) and {t.host for t in tasks} == {"127.0.0.1"}
    ), tasks


def test_each_engine_path_runs_on_the_cluster_and_gives_the_local_answer(
    cluster: tuple[str, Path], spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    master_url, work_dir = cluster

    # The local side: the jobs in this process, on the tests' local session. One MLflow store
    # serves both sides: the cluster trains, and both score with that model.
    local_root, cluster_root = tmp_path / "local", tmp_path / "cluster"
    mlflow_store = [
        f"mlflow.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
        f"mlflow.artifact_root={tmp_path}/mlartifacts",
    ]
    local_overrides = [f"storage.root={local_root}/data", *mlflow_store, *TINY_DATA]
    local = load_settings(CONF_DIR, overrides=local_overrides)
    _run_here("generate_data", local_overrides, capsys)
    shutil.copytree(local_root / "data", cluster_root / "data")  # the same raw sources
    _run_here("build_features", local_overrides, capsys)

    events = work_dir / "events"
    events.mkdir()
    cluster_overrides = [
        f"storage.root={cluster_root}/data",
        *mlflow_store,
        f"spark.master={master_url}",
        "spark.conf.spark.driver.host=127.0.0.1",  # the workers and the driver all on loopback
        "spark.conf.spark.eventLog.enabled=true",
        f"spark.conf.spark.eventLog.dir=file://{events}",
        "spark.conf.spark.eventLog.compress=false",
        "spark.conf.spark.eventLog.rolling.enabled=false",  # one JSON-lines file per application
        "spark.conf.spark.executorEnv.TZ=UTC",
        *TINY_DATA,
    ]
    on_cluster = load_settings(CONF_DIR, env="cluster", overrides=cluster_overrides)
    # A job through spark-submit.sh to the cluster's master: the Arrow feature engine and Delta commits.
    run = submit("build_features", cluster_overrides, options=SubmitOptions(env="cluster", timeout=1200))
    assert run.returncode == 0, f"build_features on the cluster failed:\n{run.stderr[-4000:]}"
    assert run.summary["status"] == "succeeded"
    # Then the sweep's trials and the vectorized predictor, in one driver connected to the cluster.
    churn = ["--model", "churn"]
    plan = {
        "package": str(work_dir / "parity-lib.zip"),
        "env": "cluster",
        "overrides": cluster_overrides,
        "jobs": [
            ["build_training_set", churn],
            ["train", churn],
            ["score", [*churn, "--model-version", "latest"]],
        ],
    }
    _, trained, scored = (r["summary"] for r in _run_driver(plan, work_dir))
    version = trained["model_version"]
    assert scored["model_version"] == version
    _run_here("score", local_overrides, capsys, *churn, "--model-version", version)

    def read(
        settings: Settings, name: str
    ) -> DataFrame:  # a table's rows as of now (feature rows without landing times)
        return current_rows(spark.read.format("delta").load(table_path(settings, name)))

    for name in FEATURE_TABLES:
        assertDataFrameEqual(read(on_cluster, name), read(local, name))
    # The same trials as a sweep run here on the same training set (its seed draws the same
    # parameters), with the same metrics.
    churn_decl = local.model("churn")
    cluster_trials = _trials(on_cluster.mlflow.tracking_uri, trained["mlflow_run_id"])
    local_trials = _local_sweep(spark, on_cluster, churn_decl)
    assert trained["counts"]["trials"] == len(cluster_trials) == len(local_trials) == 2
    for number, (params, metrics) in cluster_trials.items():
        assert params == local_trials[number][0]
        assert metrics == pytest.approx(local_trials[number][1], rel=1e-9)
    assertDataFrameEqual(  # the same predictions, written by another scoring run
        read(on_cluster, churn_decl.predictions()).drop("scoring_run_id"),
        read(local, churn_decl.predictions()).drop("scoring_run_id"),
        rtol=1e-9,
    )

    # Where each path ran: two applications, each with an executor on both workers.
    apps = read_apps(events)
    assert len(apps) == 2, sorted(apps)
    for worker in ("worker0", "worker1"):
        ran = {
            app.name for app in (work_dir / worker).glob("app-*") if any(d.is_dir() for d in app.iterdir())
        }
        assert ran == set(apps), f"{worker} ran executors for {sorted(ran)}, not for each of {sorted(apps)}"
    built, driven = sorted(apps.values(), key=lambda app: app.app_id)
    _executors_ran(built, built.jobs_mapping_in_arrow("kernel"), "the Arrow feature engine")
    written = sum(t.records_written for t in built.tasks if t.executor in built.executors)
    assert written >= sum(read(on_cluster, name).count() for name in FEATURE_TABLES), (
        "the executors wrote fewer rows than the tables hold"
    )
    trial_jobs = driven.jobs_in_group("parity-sweep-")
    assert len(trial_jobs) == 2, trial_jobs  # one Spark job per trial
    _executors_ran(driven, trial_jobs, "the sweep's trials")
    _executors_ran(driven, driven.jobs_mapping_in_arrow("predict"), "the vectorized predictor")
