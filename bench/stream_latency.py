"""Near-time scoring: the delay from a request's append to its prediction's commit, at steady rates.

The demo's churn model is trained at small scale in a folder of its own (generate_data,
build_features, build_training_set, train through spark-submit.sh). Then `score_stream`
runs as a user runs it (spark-submit, a processing-time trigger every --trigger seconds), and
a producer in this process appends requests to the requests table once a second, at each rate
of --rates (requests/s) for --seconds. A request's delay is the commit time of the predictions
version that first holds it minus the commit time of the requests version that appended it
(both from the tables' Delta logs). For each rate: the rate the producer achieved (when an
append takes longer than a second, fewer requests arrive per second than asked), p50, p95
and max delay, and whether the
delay grew over the run (the last third's p50 against the first third's): the sustained rate
is the highest rate whose delay did not grow.

    .venv/bin/python bench/stream_latency.py --rates 10 100 1000 --seconds 60
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SMALL = [
    "data.customers=2000",
    "sweeps.hist_gradient_boosting.max_evals=2",
]  # the demo's 180 days: the gate holds out six weeks of labels


def _submit(job: str, overrides: list[str], *args: str) -> dict[str, Any]:
    """Run a job through spark-submit.sh; its summary (the last line it prints)."""
    sets = [a for o in overrides for a in ("--set", o)]
    run = subprocess.run(
        [str(REPO / "spark-submit.sh"), job, *sets, *args], cwd=REPO, capture_output=True, text=True
    )
    if run.returncode != 0:
        raise SystemExit(f"{job} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def _commit_times(path: str) -> dict[int, float]:
    """Each version's commit time (seconds since the epoch), from the table's Delta log."""
    from deltalake import DeltaTable

    return {int(h["version"]): h["timestamp"] / 1000.0 for h in DeltaTable(path).history()}


def _first_version_of(path: str, column: str) -> dict[str, int]:
    """Each value of `column` -> the first table version that holds it."""
    from deltalake import DeltaTable

    seen: dict[str, int] = {}
    for version in sorted(_commit_times(path)):
        for value in (
            DeltaTable(path, version=version).to_pyarrow_table(columns=[column]).column(column).to_pylist()
        ):
            seen.setdefault(value, version)
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--seconds", type=int, default=60, help="how long each rate runs")
    parser.add_argument(
        "--trigger", type=float, default=1.0, help="the stream's processing-time trigger (seconds)"
    )
    args = parser.parse_args(argv)

    from pyspark.sql import functions as F

    from parity.core.catalog import Catalog
    from parity.core.conf import load_settings
    from parity.core.session import get_spark

    work = Path(tempfile.mkdtemp(prefix="parity-bench-stream-"))
    overrides = [
        f"storage.root={work}/data",
        f"mlflow.tracking_uri=sqlite:///{work}/mlflow.db",
        f"mlflow.artifact_root={work}/mlartifacts",
        f"models.churn.scoring.stream.trigger_seconds={args.trigger}",
        *SMALL,
    ]
    stream, log = None, None
    try:
        for job, extra in (
            ("generate_data", []),
            ("build_features", ["--full-refresh"]),
            ("build_training_set", ["--model", "churn", "--holdout-days", "42"]),
        ):
            _submit(job, overrides, *extra)
        trained = _submit(
            "train", overrides, "--model", "churn"
        )  # the stream scores with the champion: promote it through the gate
        _submit(
            "promote",
            overrides,
            "--model",
            "churn",
            "--version",
            str(trained["model_version"]),
            "--reason",
            "benchmark",
        )
        settings = load_settings(REPO / "conf", overrides=[*overrides, "spark.master=local[1]"])
        spark = get_spark(settings)
        catalog = Catalog(spark, settings)
        model = settings.model("churn")
        declared = model.scoring.stream
        assert declared is not None
        customers = [
            r[0]
            for r in catalog.read(settings.tables.raw_customers).select("customer_id").distinct().collect()
        ]
        newest = catalog.read("features.customer_activity").agg(F.max("feature_ts")).first()[0]
        schema = f"customer_id bigint, {declared.request_time} timestamp, {declared.request_id} string"
        catalog.write(spark.createDataFrame([], schema), declared.requests)  # the table the stream reads

        log = open(work / "stream.log", "w")
        sets = [a for o in overrides for a in ("--set", o)]
        stream = subprocess.Popen(
            [str(REPO / "spark-submit.sh"), "score_stream", *sets, "--model", "churn"],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(45)  # the stream starts and waits for requests
        rng = np.random.default_rng(1)
        rounds: list[tuple[int, int, list[str]]] = []  # (rate, second, request ids)
        produced: dict[int, float] = {}  # rate -> seconds the producer took to append its requests
        for rate in args.rates:
            began = time.monotonic()
            for second in range(args.seconds):
                started = time.monotonic()
                ids = [f"r{rate}-{second}-{i}" for i in range(rate)]
                picked = rng.choice(customers, size=rate)
                rows = [(int(c), newest, rid) for c, rid in zip(picked, ids, strict=True)]
                catalog.write(spark.createDataFrame(rows, schema), declared.requests, mode="append")
                rounds.append((rate, second, ids))
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
            produced[rate] = time.monotonic() - began
            print(
                f"rate {rate}/s: {rate * args.seconds:,} requests appended in {produced[rate]:.1f} s",
                flush=True,
            )
        predictions = catalog.path(model.stream_predictions())
        total = sum(len(ids) for _, _, ids in rounds)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if stream.poll() is not None:
                raise SystemExit(
                    f"score_stream stopped (exit {stream.returncode}) before scoring every request: see "
                    f"{work / 'stream.log'}"
                )
            if (
                Path(predictions, "_delta_log").exists()
                and catalog.read(model.stream_predictions()).count() >= total
            ):
                break
            time.sleep(5)
        os.killpg(stream.pid, signal.SIGTERM)
        stream.wait(timeout=120)
        stream = None

        requests_path = catalog.path(declared.requests)
        appended_at, scored_at = _commit_times(requests_path), _commit_times(predictions)
        appended_in, scored_in = (
            _first_version_of(requests_path, declared.request_id),
            _first_version_of(predictions, declared.request_id),
        )
        results = []
        for rate in args.rates:
            delays = []
            for r, second, ids in rounds:
                if r == rate:
                    delays += [
                        (second, scored_at[scored_in[i]] - appended_at[appended_in[i]])
                        for i in ids
                        if i in scored_in
                    ]
            frame = pd.DataFrame(delays, columns=["second", "delay"])
            third = args.seconds // 3
            first, last = (
                frame[frame["second"] < third]["delay"].median(),
                frame[frame["second"] >= 2 * third]["delay"].median(),
            )
            results.append(
                {
                    "rate_per_s": rate,
                    "achieved_per_s": round(rate * args.seconds / produced[rate]),
                    "requests": rate * args.seconds,
                    "scored": len(frame),
                    "p50_s": round(float(frame["delay"].quantile(0.5)), 2),
                    "p95_s": round(float(frame["delay"].quantile(0.95)), 2),
                    "max_s": round(float(frame["delay"].max()), 2),
                    "first_third_p50_s": round(float(first), 2),
                    "last_third_p50_s": round(float(last), 2),
                    "grew": bool(last > 1.5 * first + 2 * args.trigger),
                }
            )
            print(json.dumps(results[-1]), flush=True)
        sustained = max(
            (r["achieved_per_s"] for r in results if not r["grew"] and r["scored"] == r["requests"]),
            default=None,
        )
        print(
            json.dumps(
                {
                    "trigger_s": args.trigger,
                    "sustained_rate_per_s": sustained,
                    "at": dt.datetime.now(dt.UTC).isoformat(),
                },
                indent=2,
            )
        )
        return 0
    finally:
        if stream is not None:
            os.killpg(stream.pid, signal.SIGKILL)
        if log is not None:
            log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
