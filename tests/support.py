"""Helpers shared by the tests: paths, per-test conf overrides, and running jobs as a user would."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import socket
import subprocess
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CONF_DIR = REPO / "conf"
SUBMIT = REPO / "spark-submit.sh"

# Small enough for a quick test, large enough that every label date has both classes.
SMALL_DATA = [
    "data.customers=300",
    "data.days=150",
    "data.label_every_days=7",
    "sweeps.hist_gradient_boosting.max_evals=4",
]


def storage_overrides(root: Path) -> list[str]:
    """Point tables and the MLflow store at a test's own folder."""
    return [
        f"storage.root={root}/data",
        f"mlflow.tracking_uri=sqlite:///{root}/mlflow.db",
        f"mlflow.artifact_root={root}/mlartifacts",
    ]


def set_args(overrides: list[str]) -> list[str]:
    args: list[str] = []
    for item in overrides:
        args += ["--set", item]
    return args


@dataclass
class JobRun:
    returncode: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict:
        lines = [line for line in self.stdout.strip().splitlines() if line.strip()]
        assert lines, f"job printed nothing on stdout; stderr:\n{self.stderr[-3000:]}"
        return json.loads(lines[-1])

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]


@dataclass(frozen=True)
class SubmitOptions:
    """How `submit` runs spark-submit.sh, beyond the job and its arguments: the conf overlay
    `env`, spark-submit's own arguments after `--` (`extra`), the conf folder of a project of
    its own (`conf_dir`, passed as PARITY_CONF_DIR), and how long to wait (`timeout` seconds)."""

    env: str | None = None
    extra: list[str] | None = None
    conf_dir: Path | None = None
    timeout: int = 600


def submit(
    job: str,
    overrides: list[str],
    *,
    extra_job_args: list[str] | None = None,
    options: SubmitOptions = SubmitOptions(),
) -> JobRun:
    """Run `./spark-submit.sh job [--env env] --set ... [job args] [-- extra]` and capture its
    output; with `options.conf_dir`, for the project whose conf folder that is."""
    if os.environ.get("PARITY_TEST_FAST"):
        raise RuntimeError(
            f"make test-fast runs no spark-submit, but this test submits {job}: mark it @pytest.mark.integration"
        )
    overlay = ["--env", options.env] if options.env else []
    cmd = [str(SUBMIT), job] + overlay + set_args(overrides) + (extra_job_args or [])
    cmd += ["--", *options.extra] if options.extra else []
    env = {**os.environ, **({"PARITY_CONF_DIR": str(options.conf_dir)} if options.conf_dir else {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=options.timeout, cwd=REPO, env=env)
    return JobRun(proc.returncode, proc.stdout, proc.stderr)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def caller_rows(
    features: pd.DataFrame, *, entity: str = "customer_id", timestamp: str = "score_ts"
) -> pd.DataFrame:
    """Model inputs as a caller gives them: an entity key and a time in front of the features."""
    keys = pd.DataFrame(
        {entity: range(1, len(features) + 1), timestamp: pd.Timestamp("2026-06-01")}, index=features.index
    )
    return pd.concat([keys, features], axis=1)


def load_job(name: str, tag: str = "") -> ModuleType:
    """A job module (jobs/<name>.py), loaded afresh, to call its `main(argv)` in this process."""
    spec = importlib.util.spec_from_file_location(f"job_{name}{tag}", REPO / "jobs" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_here(job: str, args: list[str], *, conf_dir: Path | None = None) -> JobRun:
    """Run `jobs/<job>.py`'s `main(args)` in this process, on its Spark session (one driver),
    capturing what it prints as `submit` does: for a job whose spark-submit path another run
    proves. With `conf_dir`, for the project whose conf folder that is (PARITY_CONF_DIR)."""
    from parity.app.jobkit import CONF_DIR_ENV

    out, err = io.StringIO(), io.StringIO()
    before = os.environ.get(CONF_DIR_ENV)
    if conf_dir is not None:
        os.environ[CONF_DIR_ENV] = str(conf_dir)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = load_job(job, "_here").main(args)
    finally:
        if before is None:
            os.environ.pop(CONF_DIR_ENV, None)
        else:
            os.environ[CONF_DIR_ENV] = before
    return JobRun(code, out.getvalue(), err.getvalue())
