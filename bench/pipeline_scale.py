"""Pipeline wall times at several data scales, measured in one run, with ratios to the 1x scale.

For each scale it runs the demo's jobs through spark-submit.sh (as `make demo` does: the
sample data, the feature builds, then for each of the two declared models build_training_set
with the newest six weeks of labels held out, train, promote the version trained through the
gate, and score with it) into its own folder, and reports each job's wall time, the churn model's
scoring throughput (rows scored per second of the score job's scoring step, and per second of
the whole job), and every job's time as a ratio to the same job at the smallest scale.

    .venv/bin/python bench/pipeline_scale.py --scales 1 10
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODELS = ("churn", "channel_spend")
# Each job as reported, and its arguments; "{version}" is the model version the job before it trained.
STEPS = {
    "generate_data": "generate_data",
    "build_features": "build_features --full-refresh",
    **{
        f"{job} --model {model}": f"{job} --model {model}{extra}"
        for model in MODELS
        for job, extra in (
            ("build_training_set", " --holdout-days 42"),
            ("train", ""),
            ("promote", " --version {version} --reason benchmark"),
            ("score", ""),
        )
    },
}
JOBS = tuple(STEPS)
BASE_CUSTOMERS = 2000  # conf/base.yaml's data.customers: the demo's default scale


def run_scale(scale: int, root: Path) -> dict[str, object]:
    shutil.rmtree(root, ignore_errors=True)
    overrides = [
        f"storage.root={root}/data",
        f"mlflow.tracking_uri=sqlite:///{root}/mlflow.db",
        f"mlflow.artifact_root={root}/mlartifacts",
        f"data.customers={BASE_CUSTOMERS * scale}",
    ]
    args = [a for item in overrides for a in ("--set", item)]
    times: dict[str, float] = {}
    summaries: dict[str, dict] = {}
    version = ""
    for job, command in STEPS.items():
        started = time.perf_counter()
        proc = subprocess.run(
            [str(REPO / "spark-submit.sh"), *command.format(version=version).split(), *args],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        times[job] = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"{job} failed at scale {scale}:\n{proc.stderr[-3000:]}")
        summaries[job] = json.loads(proc.stdout.strip().splitlines()[-1])
        version = str(summaries[job].get("model_version", version))
        print(f"  scale {scale:>3}x  {job:<40} {times[job]:7.1f} s", flush=True)
    score = summaries["score --model churn"]
    rows = score["counts"]["predictions.out"]
    return {
        "scale": scale,
        "customers": BASE_CUSTOMERS * scale,
        "events": summaries["build_features"]["counts"]["customer_activity.in"],
        "labels": summaries["build_training_set --model churn"]["counts"]["labels.in"],
        "channel_spend_labels": summaries["build_training_set --model channel_spend"]["counts"]["labels.in"],
        "predictions": rows,
        "seconds": times,
        "total_seconds": sum(times.values()),
        "scoring_rows_per_s": rows / score["seconds"]["scoring"],
        "score_job_rows_per_s": rows / times["score --model churn"],
        "best_val_auc": summaries["train --model churn"]["best_metric"]["val_auc"],
        "best_val_rmse": summaries["train --model channel_spend"]["best_metric"]["val_rmse"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--out", default=str(REPO / ".parity" / "bench"))
    args = parser.parse_args(argv)
    results = [run_scale(scale, Path(args.out) / f"scale-{scale}") for scale in sorted(args.scales)]
    base = results[0]
    print(
        f"\n{'job':<40}"
        + "".join(f"{str(r['scale']) + 'x (s)':>12}" for r in results)
        + "".join(f"{str(r['scale']) + 'x/' + str(base['scale']) + 'x':>10}" for r in results[1:])
    )
    for job in (*JOBS, "total"):
        secs = [r["total_seconds"] if job == "total" else r["seconds"][job] for r in results]  # type: ignore[index]
        print(
            f"{job:<40}"
            + "".join(f"{s:12.1f}" for s in secs)
            + "".join(f"{s / secs[0]:10.2f}" for s in secs[1:])
        )
    for r in results:
        print(
            f"scale {r['scale']}x: {r['customers']} customers, {r['events']} events, {r['labels']} labels, "
            f"{r['predictions']} churn predictions, {r['channel_spend_labels']} channel-spend labels; scoring step "
            f"{r['scoring_rows_per_s']:.0f} rows/s, score job {r['score_job_rows_per_s']:.0f} rows/s; best val AUC "
            f"{r['best_val_auc']:.3f}, channel-spend val RMSE {r['best_val_rmse']:.1f}"
        )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "pipeline_scale.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
