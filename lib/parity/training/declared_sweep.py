"""Running a declared sweep (conf/sweeps/) on a training set: split, trials, and the best model refitted.

The learner's mode decides how trials run:
- single-node learners: one trial per Spark task, `parallelism` at a time, with the pandas
  training split shipped once, as a broadcast;
- distributed learners: one trial after another on the driver, each a Spark ML fit over the
  whole training split, which stays on the cluster.

Nothing here logs to MLflow: `on_trial` receives each finished trial on the driver thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from parity.core.conf import SweepDecl
from parity.training import learners, splits
from parity.training.search_space import build_space
from parity.training.splits import LabelledColumns  # here before it moved to splits; importable from here too
from parity.training.sweep import (
    DriverRunner,
    Runner,
    SparkTaskRunner,
    SweepOptions,
    SweepResult,
    TrialResult,
    run_sweep,
)


@dataclass
class TrainedSweep:
    """A finished sweep and its best model, refitted on the training split."""

    sweep: SweepResult
    model: Any
    metrics: dict[str, float]
    example: pd.DataFrame  # a few validation rows of the training set
    rows: dict[str, int]
    cutoff: pd.Timestamp

    def count(self, status: str) -> int:
        """Trials that ended with `status` (ok, failed or cancelled)."""
        return sum(t.status == status for t in self.sweep.trials)


def run_declared_sweep(
    spark: SparkSession,
    decl: SweepDecl,
    frame: DataFrame,
    columns: LabelledColumns,
    *,
    on_trial: Callable[[TrialResult], None] | None = None,
) -> TrainedSweep:
    """Split `frame` by time as the declaration says, run its trials, and refit the best one.

    Raises:
        NoSuccessfulTrialError: every trial failed.
        ValueError: the split leaves a side empty or with one class.
    """
    learner = learners.get_learner(decl.learner)
    if learner.mode == "single_node":
        return _single_node(spark, decl, learner, frame, columns, on_trial)
    return _distributed(spark, decl, learner, frame, columns, on_trial)


def _single_node(
    spark: SparkSession,
    decl: SweepDecl,
    learner: learners.Learner,
    frame: DataFrame,
    columns: LabelledColumns,
    on_trial: Callable[[TrialResult], None] | None,
) -> TrainedSweep:
    """One trial per Spark task; the pandas training split travels once, as a broadcast."""
    labelled: pd.DataFrame = frame.toPandas()
    data = splits.time_split(
        labelled, columns, validation_fraction=decl.validation.fraction, task=learner.task
    )
    shipped = spark.sparkContext.broadcast(data)
    seed = decl.seed

    def objective(params: dict[str, Any]) -> dict[str, float]:
        return learners.fit_and_evaluate(learner, params, shipped.value, seed=seed)[1]

    try:
        result = _sweep(SparkTaskRunner(spark, objective, parallelism=decl.parallelism), decl, on_trial)
    finally:
        shipped.destroy()
    model, metrics = learners.fit_and_evaluate(learner, result.best.params, data, seed=seed)
    rows = {
        "rows.train": len(data.y_train),
        "rows.valid": len(data.y_valid),
        "rows.unknown_at_cutoff": data.unknown_at_cutoff,
    }
    return TrainedSweep(result, model, metrics, labelled.loc[data.x_valid.index[:5]], rows, data.cutoff)


def _distributed(
    spark: SparkSession,
    decl: SweepDecl,
    learner: learners.Learner,
    frame: DataFrame,
    columns: LabelledColumns,
    on_trial: Callable[[TrialResult], None] | None,
) -> TrainedSweep:
    """Trials one after another on the driver, each a Spark ML fit over the whole training split."""
    data = splits.spark_time_split(
        frame, columns, validation_fraction=decl.validation.fraction, task=learner.task
    )

    def fit(params: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        return learners.fit_spark(learner, params, data, seed=decl.seed)

    result = _sweep(
        DriverRunner(lambda params: fit(params)[1], parallelism=decl.parallelism, spark=spark), decl, on_trial
    )
    model, metrics = fit(result.best.params)
    late = F.col(columns.label_time) >= F.lit(data.cutoff.to_pydatetime())
    example = frame.filter(late).limit(5).toPandas()
    rows = {
        "rows.train": data.rows_train,
        "rows.valid": data.rows_valid,
        "rows.unknown_at_cutoff": data.unknown_at_cutoff,
    }
    return TrainedSweep(result, model, metrics, example, rows, data.cutoff)


def _sweep(runner: Runner, decl: SweepDecl, on_trial: Callable[[TrialResult], None] | None) -> SweepResult:
    """The engine's arguments, from the declaration."""
    options = SweepOptions(
        metric=decl.objective.metric,
        direction=decl.objective.direction,
        max_evals=decl.max_evals,
        parallelism=decl.parallelism,
        seed=decl.seed,
        algorithm=decl.algorithm,
        timeout_seconds=decl.timeout_seconds,
        early_stop_evals=decl.early_stop.no_improvement_evals if decl.early_stop else None,
    )
    return run_sweep(runner, build_space(decl.space), options, on_trial=on_trial)
