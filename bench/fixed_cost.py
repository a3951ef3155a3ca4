"""What the demo's five jobs cost above the floor of a job, measured in one run.

The floor is a spark-submit of an empty job (bench/empty_job.py: JVM, driver, conf, session
with Delta, one trivial action) with exactly the spark-submit arguments spark-submit.sh gives
a job; it is measured before and after the five jobs, which run through spark-submit.sh as
`make demo` does (demo data, a fresh folder). Each round prints every job's wall time, its
time above the floor, and the total above the floor (goal: at most 100 s).

    .venv/bin/python bench/fixed_cost.py --rounds 2 [--set key=value ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The churn model's flow, as the demo runs it (the demo then runs the other declared models' three jobs too).
JOBS = (
    ("generate_data",),
    ("build_features", "--full-refresh"),
    ("build_training_set", "--model", "churn"),
    ("train", "--model", "churn"),
    ("score", "--model", "churn"),
)


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:3])} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started


def _floor(overrides: list[str], env: dict[str, str]) -> float:
    """spark-submit of the empty job, with the arguments spark-submit.sh computes (its one Python start included)."""
    python = str(REPO / ".venv" / "bin" / "python")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        sets = [a for item in overrides for a in ("--set", item)]
        submit = subprocess.run(
            [
                python,
                "-m",
                "parity.app.cli",
                "submit-args",
                "--conf-dir",
                str(REPO / "conf"),
                "--package-out",
                f"{tmp}/lib.zip",
                *sets,
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            env=env,
            check=True,
        ).stdout.splitlines()
        spark_submit = str(REPO / ".venv" / "bin" / "spark-submit")
        _timed(
            [
                spark_submit,
                *submit,
                "--py-files",
                f"{tmp}/lib.zip",
                str(REPO / "bench" / "empty_job.py"),
                *overrides,
            ],
            env,
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    env = {**os.environ, "TZ": "UTC", "PYSPARK_PYTHON": str(REPO / ".venv" / "bin" / "python")}
    for round_ in range(1, args.rounds + 1):
        root = Path(tempfile.mkdtemp(prefix="parity-fixed-cost-"))
        overrides = [
            f"storage.root={root}/data",
            f"mlflow.tracking_uri=sqlite:///{root}/mlflow.db",
            f"mlflow.artifact_root={root}/mlartifacts",
            *args.overrides,
        ]
        sets = [a for item in overrides for a in ("--set", item)]
        floors = [_floor(overrides, env)]
        seconds = {
            " ".join(job): _timed([str(REPO / "spark-submit.sh"), job[0], *sets, *job[1:]], env)
            for job in JOBS
        }
        floors.append(_floor(overrides, env))
        floor = statistics.mean(floors)
        above = {job: s - floor for job, s in seconds.items()}
        print(
            f"\nround {round_}: floor {floor:.1f} s (empty job, mean of {', '.join(f'{f:.1f}' for f in floors)})"
        )
        print("| job | wall (s) | above the floor (s) |\n| --- | ---: | ---: |")
        for job, s in seconds.items():
            print(f"| {job} | {s:.1f} | {above[job]:.1f} |")
        print(
            f"| **five jobs** | **{sum(seconds.values()):.1f}** | **{sum(above.values()):.1f}** (goal: at most 100) |",
            flush=True,
        )
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
