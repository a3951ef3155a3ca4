"""The sweep engine: hyperopt's suggestions, trials run `parallelism` at a time, results as data.

hyperopt's `fmin` with SparkTrials pays about 1.5 s per trial in dispatch and polling, so two
2-second trials in parallel barely beat one after the other. This engine keeps hyperopt's
search (`tpe.suggest` or `rand.suggest` on a plain `Trials` object, so TPE sees every finished
trial) and replaces the dispatch: each trial is handed to a runner as soon as a slot frees,
and the driver wakes the moment a trial finishes. Two runners:

- `SparkTaskRunner` (single-node learners): each trial is a one-task Spark job started from a
  driver thread, in its own job group; the training data travels once, as a broadcast.
- `DriverRunner` (distributed learners): each trial runs on the driver, where it launches
  its own distributed Spark jobs; with parallelism 1 the trials run one after another.

A trial that raises is recorded as failed and the sweep goes on; `NoSuccessfulTrialError`
ends a sweep in which every trial failed. At the timeout, running trials are cancelled
(their Spark job groups too) and recorded as cancelled. An early-stop rule ends the sweep
when the best objective has not improved for N finished trials.

Nothing here logs to MLflow: `on_trial` receives each finished trial on the driver thread,
so a caller logs from one place, as trials finish, with no concurrent writers.
"""

from __future__ import annotations

import concurrent.futures as cf
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from hyperopt import JOB_STATE_DONE, JOB_STATE_RUNNING, STATUS_FAIL, STATUS_OK, Trials, rand, space_eval, tpe
from hyperopt.base import Domain
from pyspark.sql import SparkSession

from parity.training.search_space import flatten

TrialStatus = Literal["ok", "failed", "cancelled"]
Objective = Callable[[dict[str, Any]], Mapping[str, float]]
ALGORITHMS = {"tpe": tpe.suggest, "random": rand.suggest}


class NoSuccessfulTrialError(RuntimeError):
    """Every trial of a sweep failed (or was cancelled)."""


@dataclass
class TrialResult:
    """One trial: its flat parameters, its metrics, and how it ended."""

    number: int
    params: dict[str, Any]
    status: TrialStatus
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None


@dataclass
class SweepResult:
    trials: list[TrialResult]
    best: TrialResult
    stopped_by: Literal["max_evals", "timeout", "early_stop"]
    seconds: float


def run_trial(objective: Objective, params: dict[str, Any]) -> dict[str, Any]:
    """Call the objective and return its outcome as data, never raising: a trial's failure is a result."""
    started = time.perf_counter()
    try:
        metrics = {k: float(v) for k, v in objective(params).items()}
        return {"status": "ok", "metrics": metrics, "seconds": time.perf_counter() - started}
    except Exception as exc:  # any error of a trial is recorded, and the sweep goes on
        error = f"{type(exc).__name__}: {exc}"
        return {
            "status": "failed",
            "error": error,
            "trace": traceback.format_exc(limit=5),
            "seconds": time.perf_counter() - started,
        }


class Runner(Protocol):
    """Runs trials: `submit` starts one, `cancel` stops every one still running."""

    def submit(self, params: dict[str, Any]) -> cf.Future[dict[str, Any]]: ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class DriverRunner:
    """Trials run in driver threads (`parallelism` at a time): for learners that are Spark jobs themselves."""

    def __init__(self, objective: Objective, *, parallelism: int, spark: SparkSession | None = None) -> None:
        self._objective, self._spark = objective, spark
        self._group = f"parity-sweep-{uuid.uuid4().hex[:8]}"
        self._pool = cf.ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="trial")

    def submit(self, params: dict[str, Any]) -> cf.Future[dict[str, Any]]:
        return self._pool.submit(self._run, params)

    def _run(self, params: dict[str, Any]) -> dict[str, Any]:
        if self._spark is not None:
            self._spark.sparkContext.setJobGroup(self._group, "parity sweep trial", interruptOnCancel=True)
        return run_trial(self._objective, params)

    def cancel(self) -> None:
        if self._spark is not None:
            self._spark.sparkContext.cancelJobGroup(self._group)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class SparkTaskRunner:
    """Each trial is a one-task Spark job, started from a driver thread in the sweep's job group.

    `objective` is shipped with each task (keep it small: read the training data from a
    broadcast it closes over, never capture the data itself).
    """

    def __init__(self, spark: SparkSession, objective: Objective, *, parallelism: int) -> None:
        self._sc = spark.sparkContext
        self._objective = objective
        self._group = f"parity-sweep-{uuid.uuid4().hex[:8]}"
        self._pool = cf.ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="trial")

    def submit(self, params: dict[str, Any]) -> cf.Future[dict[str, Any]]:
        return self._pool.submit(self._run, params)

    def _run(self, params: dict[str, Any]) -> dict[str, Any]:
        self._sc.setJobGroup(self._group, "parity sweep trial", interruptOnCancel=True)
        objective = self._objective
        outcome: dict[str, Any] = (
            self._sc.parallelize([params], 1).map(lambda p: run_trial(objective, p)).collect()[0]
        )
        return outcome

    def cancel(self) -> None:
        self._sc.cancelJobGroup(self._group)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass(frozen=True)
class SweepOptions:
    """How `run_sweep` searches: for the best `metric` (the objective must report it) in
    `direction`, with up to `max_evals` trials, `parallelism` at a time, suggested by
    `algorithm` (hyperopt's TPE or random search) from `seed`; running trials are cancelled
    after `timeout_seconds`, and no new one starts once `early_stop_evals` finished trials in
    a row have not improved on the best."""

    metric: str
    direction: Literal["maximize", "minimize"]
    max_evals: int
    parallelism: int
    seed: int
    algorithm: Literal["tpe", "random"] = "tpe"
    timeout_seconds: float | None = None
    early_stop_evals: int | None = None


def run_sweep(
    runner: Runner,
    space: dict[str, Any],
    options: SweepOptions,
    *,
    on_trial: Callable[[TrialResult], None] | None = None,
) -> SweepResult:
    """Run up to `options.max_evals` trials, `options.parallelism` at a time, and return them
    with the best.

    The objective's metrics must include `options.metric`; hyperopt minimises it (or its
    negative, when `options.direction` is maximize). `on_trial` is called on this thread as
    each trial ends, in the order they end.

    Raises:
        NoSuccessfulTrialError: no trial succeeded.
    """
    metric, direction, max_evals = options.metric, options.direction, options.max_evals
    parallelism, seed, algorithm = options.parallelism, options.seed, options.algorithm
    timeout_seconds, early_stop_evals = options.timeout_seconds, options.early_stop_evals
    sign = -1.0 if direction == "maximize" else 1.0
    suggest = ALGORITHMS[algorithm]
    domain = Domain(lambda _: None, space)
    trials = Trials()
    rng = np.random.default_rng(seed)
    results: list[TrialResult] = []
    running: dict[cf.Future[dict[str, Any]], tuple[dict[str, Any], dict[str, Any]]] = {}
    started = time.monotonic()
    deadline = started + timeout_seconds if timeout_seconds else None
    stopped_by: Literal["max_evals", "timeout", "early_stop"] = "max_evals"
    best_loss, since_best = float("inf"), 0

    def finish(doc: dict[str, Any], params: dict[str, Any], outcome: dict[str, Any]) -> None:
        nonlocal best_loss, since_best
        status = outcome["status"]
        metrics = dict(outcome.get("metrics", {}))
        if status == "ok" and metric not in metrics:
            status, outcome = (
                "failed",
                {
                    **outcome,
                    "error": f"the objective reported no '{metric}' (got {', '.join(metrics) or 'none'})",
                },
            )
        loss = sign * metrics[metric] if status == "ok" else None
        doc["state"] = JOB_STATE_DONE
        doc["result"] = {"status": STATUS_OK, "loss": loss} if loss is not None else {"status": STATUS_FAIL}
        doc["refresh_time"] = time.time()
        trials.refresh()
        result = TrialResult(
            doc["tid"], params, status, metrics, float(outcome.get("seconds", 0.0)), outcome.get("error")
        )
        results.append(result)
        if loss is not None and loss < best_loss:
            best_loss, since_best = loss, 0
        else:
            since_best += 1
        if on_trial is not None:
            on_trial(result)

    try:
        submitted = 0
        while True:
            while len(running) < parallelism and submitted < max_evals and stopped_by == "max_evals":
                tid = trials.new_trial_ids(1)
                docs = suggest(tid, domain, trials, int(rng.integers(2**31 - 1)))
                trials.insert_trial_docs(docs)
                trials.refresh()
                doc = next(d for d in trials.trials if d["tid"] == tid[0])
                doc["state"], doc["book_time"] = JOB_STATE_RUNNING, time.time()
                params = flatten(space_eval(space, {k: v[0] for k, v in doc["misc"]["vals"].items() if v}))
                running[runner.submit(params)] = (doc, params)
                submitted += 1
            if not running:
                break
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = cf.wait(running, timeout=wait, return_when=cf.FIRST_COMPLETED)
            for future in done:
                doc, params = running.pop(future)
                finish(doc, params, _outcome(future))
            if deadline is not None and time.monotonic() >= deadline and stopped_by == "max_evals":
                stopped_by = "timeout"
                runner.cancel()
                for future, (doc, params) in list(running.items()):
                    future.cancel()
                    running.pop(future)
                    seconds = time.time() - doc["book_time"]
                    finish(
                        doc,
                        params,
                        {
                            "status": "cancelled",
                            "error": f"cancelled at the sweep's timeout of {timeout_seconds} s",
                            "seconds": seconds,
                        },
                    )
            if early_stop_evals and since_best >= early_stop_evals and stopped_by == "max_evals":
                stopped_by = "early_stop"  # let running trials finish; start no more
    finally:
        runner.close()
    succeeded = [r for r in results if r.status == "ok"]
    if not succeeded:
        errors = sorted({r.error or r.status for r in results})
        raise NoSuccessfulTrialError(
            f"every one of {len(results)} trials failed; errors: {'; '.join(errors)[:1000]}"
        )
    best = min(succeeded, key=lambda r: sign * r.metrics[metric])
    return SweepResult(sorted(results, key=lambda r: r.number), best, stopped_by, time.monotonic() - started)


def _outcome(future: cf.Future[dict[str, Any]]) -> dict[str, Any]:
    """A finished trial's outcome; a runner's own failure (a lost worker, say) fails the trial."""
    try:
        return future.result()
    except Exception as exc:  # recorded as the trial's failure
        return {"status": "failed", "error": f"{type(exc).__name__}: {str(exc)[:500]}"}
