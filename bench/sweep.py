"""Sweep throughput and quality, in one run: parity's parallel trials against serial Trials.

1. Throughput, on a fixed-cost objective (each trial sleeps `--trial-seconds`, default 2 s),
   the same 32-trial TPE sweep three ways:
   - hyperopt's serial `Trials` (fmin in the driver): the baseline;
   - parity's engine, one Spark task per trial, parallelism 2 (`SparkTaskRunner`);
   - hyperopt's own `SparkTrials`, parallelism 2, for reference.
   It prints trials per minute, the ratio to serial, and the overhead per trial: the wall time
   each parallel slot spends per trial beyond the trial's own cost.
2. Quality: the best validation AUC after 32 trials of the demo's learner (HistGradientBoosting)
   on a synthetic, time-split classification set, TPE against random search of the same budget,
   over several seeds.

    .venv/bin/python bench/sweep.py                # make bench runs it too
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--trial-seconds", type=float, default=2.0)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3, help="quality: sweeps per algorithm")
    parser.add_argument("--rows", type=int, default=20_000, help="quality: labelled rows")
    args = parser.parse_args(argv)

    from hyperopt import STATUS_OK, SparkTrials, Trials, fmin, tpe

    from parity.core.conf import load_settings
    from parity.core.session import get_spark
    from parity.training import learners
    from parity.training.search_space import build_space
    from parity.training.splits import LabelledColumns, time_split
    from parity.training.sweep import SparkTaskRunner, SweepOptions, run_sweep

    logging.getLogger("hyperopt").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="parity-bench-sweep-"))
    settings = load_settings(
        REPO / "conf",
        overrides=[f"storage.root={work}/data", "spark.master=local[2]", "spark.conf.spark.ui.enabled=false"],
    )
    spark = get_spark(settings)
    space = build_space({"x": {"uniform": [0, 1]}, "y": {"loguniform": [0.01, 1]}})
    pause = args.trial_seconds

    def fixed_cost(params: dict) -> dict[str, float]:
        time.sleep(pause)
        return {"score": params["x"]}

    def hyperopt_objective(params: dict) -> dict:
        time.sleep(pause)
        return {"loss": -params["x"], "status": STATUS_OK}

    spark.sparkContext.parallelize([0], 1).map(lambda x: x).collect()  # Python workers up before timing
    timings: dict[str, float] = {}
    started = time.perf_counter()
    fmin(
        hyperopt_objective,
        space,
        algo=tpe.suggest,
        max_evals=args.trials,
        trials=Trials(),
        rstate=np.random.default_rng(1),
        show_progressbar=False,
    )
    timings["serial hyperopt Trials"] = time.perf_counter() - started
    started = time.perf_counter()
    run_sweep(
        SparkTaskRunner(spark, fixed_cost, parallelism=args.parallelism),
        space,
        SweepOptions(
            metric="score", direction="maximize", max_evals=args.trials, parallelism=args.parallelism, seed=1
        ),
    )
    timings[f"parity engine, Spark tasks, parallelism {args.parallelism}"] = time.perf_counter() - started
    started = time.perf_counter()
    fmin(
        hyperopt_objective,
        space,
        algo=tpe.suggest,
        max_evals=args.trials,
        trials=SparkTrials(parallelism=args.parallelism, spark_session=spark),
        rstate=np.random.default_rng(1),
        show_progressbar=False,
    )
    timings[f"hyperopt SparkTrials, parallelism {args.parallelism}"] = time.perf_counter() - started

    serial = timings["serial hyperopt Trials"]
    print(f"\nThroughput: {args.trials} trials of {pause:g} s each\n")
    print("| method | wall (s) | trials/min | vs serial | overhead per trial (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, seconds in timings.items():
        slots = 1 if name.startswith("serial") else args.parallelism
        overhead = seconds * slots / args.trials - pause
        print(
            f"| {name} | {seconds:.1f} | {args.trials / seconds * 60:.1f} | {serial / seconds:.2f} | {overhead:.2f} |"
        )

    # Quality: TPE against random search, same budget, same engine, several seeds.
    rng = np.random.default_rng(0)
    n = args.rows
    x = rng.normal(size=(n, 8))
    logit = (
        1.5 * x[:, 0] - x[:, 1] + 0.8 * x[:, 2] * x[:, 3] + 0.5 * np.sin(3 * x[:, 4]) - 0.6 * (x[:, 5] > 0.5)
    )
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(8)]).assign(
        label=(rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
        label_ts=pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 120, n), unit="D"),
        segment=rng.choice(["a", "b", "c"], n),
    )
    data = time_split(
        frame,
        LabelledColumns(
            label_time="label_ts",
            label="label",
            available_at=None,
            numeric=[f"x{i}" for i in range(8)],
            categorical=["segment"],
        ),
        validation_fraction=0.25,
    )
    decl = settings.sweeps["hist_gradient_boosting"]
    learner = learners.get_learner(decl.learner)
    shipped = spark.sparkContext.broadcast(data)
    best: dict[str, list[float]] = {"tpe": [], "random": []}
    for seed in range(args.seeds):
        for algorithm in ("tpe", "random"):

            def objective(params: dict, seed: int = seed) -> dict[str, float]:
                return learners.fit_and_evaluate(learner, params, shipped.value, seed=seed)[1]

            result = run_sweep(
                SparkTaskRunner(spark, objective, parallelism=args.parallelism),
                build_space(decl.space),
                SweepOptions(
                    metric="val_auc",
                    direction="maximize",
                    max_evals=args.trials,
                    parallelism=args.parallelism,
                    seed=seed,
                    algorithm=algorithm,  # type: ignore[arg-type]
                ),
            )
            best[algorithm].append(result.best.metrics["val_auc"])
            print(
                f"quality: seed {seed} {algorithm}: best val_auc {best[algorithm][-1]:.4f} after "
                f"{len(result.trials)} trials ({result.seconds:.0f} s)",
                flush=True,
            )
    print(
        f"\nQuality: best validation AUC after {args.trials} trials "
        f"({learner.name}, {n:,} rows, time split), {args.seeds} seeds\n"
    )
    print("| search | mean best val_auc | per seed |")
    print("| --- | ---: | --- |")
    for algorithm, values in best.items():
        print(f"| {algorithm} | {statistics.mean(values):.4f} | {', '.join(f'{v:.4f}' for v in values)} |")
    print(f"\nTPE - random: {statistics.mean(best['tpe']) - statistics.mean(best['random']):+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
