"""score_stream on the pipeline's tables, through spark-submit: a kill -9 mid-batch, a restart
that resumes from the checkpoint, requests appended while the stream runs, malformed requests
quarantined, and a final drain with --available-now (in the tests' driver): every request
scored exactly once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from pyspark.sql import SparkSession

from parity.app.stream_run import PAUSE_FILE_ENV, checkpoint_location
from parity.core.catalog import Catalog, table_path
from tests.conftest import PipelineRun
from tests.support import REPO, SUBMIT, JobRun, run_here, set_args

AT = dt.datetime(2026, 5, 20)
SCHEMA = "customer_id bigint, requested_at timestamp, request_id string"


def _append(catalog: Catalog, rows: list[tuple]) -> None:
    catalog.write(catalog.spark.createDataFrame(rows, SCHEMA), "raw.churn_requests", mode="append")


def _requests(ids: list[int], tag: str, minutes: int = 0) -> list[tuple]:
    return [(c, AT + dt.timedelta(minutes=minutes + i), f"{tag}-{i}") for i, c in enumerate(ids)]


def _table(pipeline: PipelineRun, name: str) -> pd.DataFrame:
    """The table as delta-rs reads it now; empty while it has no commit yet."""
    try:
        return DeltaTable(table_path(pipeline.settings(), name)).to_pandas()
    except TableNotFoundError:
        return pd.DataFrame(columns=["request_id"])


def _start(pipeline: PipelineRun, logs: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    cmd = [str(SUBMIT), "score_stream", *set_args(pipeline.overrides), "--model", "churn"]
    out, err = open(logs / "stdout", "a"), open(logs / "stderr", "a")
    return subprocess.Popen(
        cmd, cwd=REPO, stdout=out, stderr=err, start_new_session=True, env={**os.environ, **(env or {})}
    )


def _wait(
    condition: Callable[[], bool], what: str, process: subprocess.Popen, logs: Path, timeout: float = 300
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            raise AssertionError(
                f"score_stream exited ({process.returncode}) before {what}:\n{(logs / 'stderr').read_text()[-4000:]}"
            )
        time.sleep(1)
    raise AssertionError(f"no {what} after {timeout}s:\n{(logs / 'stderr').read_text()[-4000:]}")


def _kill(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def test_a_stream_killed_mid_batch_scores_every_request_exactly_once(
    pipeline: PipelineRun, spark: SparkSession, tmp_path: Path
) -> None:
    settings = pipeline.settings()
    catalog = Catalog(spark, settings)
    model = settings.model("churn")
    customers = [
        r[0]
        for r in catalog.read(settings.tables.raw_customers)
        .select("customer_id")
        .distinct()
        .orderBy("customer_id")
        .limit(40)
        .collect()
    ]
    _append(
        catalog,
        _requests(customers[:30], "a") + [(None, AT, "a-bad-key"), (customers[0], None, "a-bad-time")],
    )
    predictions, quarantine = model.stream_predictions(), model.stream_quarantine()

    # 1. The first batch commits its predictions, and the job is killed before the batch ends.
    pause = tmp_path / "paused"
    stream = _start(pipeline, tmp_path, {PAUSE_FILE_ENV: str(pause)})
    _wait(pause.exists, "paused batch", stream, tmp_path)
    _kill(stream)
    assert len(_table(pipeline, predictions)) == 30 and len(_table(pipeline, quarantine)) == 0

    # 2. A restart replays that batch from the checkpoint: its predictions are not written twice,
    #    its quarantined requests are; requests appended while it runs are scored too.
    stream = _start(pipeline, tmp_path)
    _wait(lambda: len(_table(pipeline, quarantine)) == 2, "replayed batch", stream, tmp_path)
    _append(catalog, _requests(customers[30:40], "b", minutes=60) + [(None, AT, "b-bad-key")])
    _wait(
        lambda: len(_table(pipeline, predictions)) == 40 and len(_table(pipeline, quarantine)) == 3,
        "appended requests scored",
        stream,
        tmp_path,
    )
    # Once the checkpoint marks that batch done (else the drain below replays it: also exact, but counted apart).
    _wait(
        lambda: Path(checkpoint_location(settings, model), "commits", "1").exists(),
        "batch 1 marked done",
        stream,
        tmp_path,
    )
    _kill(stream)

    # 3. Requests that arrive while no stream runs are drained by --available-now, which stops
    #    by itself (in this driver: the two runs above proved the job's spark-submit path).
    _append(catalog, _requests(customers[:5], "c", minutes=120))
    drained: JobRun = run_here(
        "score_stream", [*set_args(pipeline.overrides), "--model", "churn", "--available-now"]
    )
    assert drained.returncode == 0, drained.stderr[-4000:]
    assert drained.summary["counts"] == {
        "requests.in": 5,
        "predictions.out": 5,
        "requests.quarantined": 0,
        "requests.already_committed": 0,
        "batches": 1,
        "batches.replayed": 0,
    }

    scored, held = _table(pipeline, predictions), _table(pipeline, quarantine)
    sent = {f"a-{i}" for i in range(30)} | {f"b-{i}" for i in range(10)} | {f"c-{i}" for i in range(5)}
    assert sorted(scored["request_id"]) == sorted(sent)  # each exactly once
    assert sorted(held["request_id"]) == ["a-bad-key", "a-bad-time", "b-bad-key"]
    assert set(held["quarantine_rule"]) == {"not_null:customer_id", "not_null:requested_at"}
    assert scored["prediction"].between(0, 1).all() and set(scored["model_version"]) == {
        pipeline.summary("train")["model_version"]
    }
    # Each prediction is as of its own request's time, and carries the batch and run that wrote it.
    assert scored.set_index("request_id").loc["c-3", "score_ts"] == pd.Timestamp(
        AT + dt.timedelta(minutes=123), tz="UTC"
    )
    assert scored["stream_batch"].nunique() >= 3 and scored["scoring_run_id"].nunique() == 3
