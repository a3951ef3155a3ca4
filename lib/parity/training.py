"""Training as plain functions: the time split, the unfitted pipeline, the objective, the sweep.

No MLflow here (that is `governance`): the sweep returns its trials as data and the job logs
them. Preprocessing is declared unfitted and fitted only on the training split, inside the
same sklearn Pipeline as the estimator, so the fitted whole ships with the model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from hyperopt import STATUS_OK, SparkTrials, Trials, fmin, hp, space_eval, tpe
from hyperopt.exceptions import AllTrialsFailed
from pyspark.sql import SparkSession
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SEARCH_SPACE: dict[str, Any] = {
    "learning_rate": hp.loguniform("learning_rate", math.log(0.02), math.log(0.3)),
    "max_leaf_nodes": hp.quniform("max_leaf_nodes", 8, 64, 1),
    "min_samples_leaf": hp.quniform("min_samples_leaf", 10, 200, 5),
    "l2_regularization": hp.loguniform("l2_regularization", math.log(1e-4), math.log(10.0)),
    "max_iter": hp.quniform("max_iter", 50, 250, 25),
}
OBJECTIVE_METRIC = "val_auc"


class NoSuccessfulTrialError(RuntimeError):
    """Every trial of a sweep failed."""


@dataclass
class TrainingData:
    """Model inputs and labels, split by time: every validation label is later than every training label."""

    x_train: pd.DataFrame
    y_train: np.ndarray
    x_valid: pd.DataFrame
    y_valid: np.ndarray
    numeric: list[str]
    categorical: list[str]
    cutoff: pd.Timestamp
    unknown_at_cutoff: int = 0


def to_model_input(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input columns in a fixed order: numeric as float, categorical as string or None."""
    out = pd.DataFrame(index=frame.index)
    for column in numeric:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in categorical:
        out[column] = frame[column].astype("object").where(frame[column].notna(), None)
    return out


def time_split(
    frame: pd.DataFrame,
    *,
    ts_column: str,
    label_column: str,
    numeric: list[str],
    categorical: list[str],
    validation_fraction: float,
    available_column: str | None = None,
) -> TrainingData:
    """Split labelled rows by time: the latest `validation_fraction` of label times validate.

    All rows at the cutoff time go to validation, so no timestamp straddles the split. With
    `available_column` (when each label's outcome became known), training also leaves out
    labels whose outcome was not yet known at the cutoff: they would teach the model about
    the validation period.

    Raises:
        ValueError: the split leaves one side empty or with a single class.
    """
    times = pd.to_datetime(frame[ts_column], utc=True)
    distinct = np.sort(times.unique())
    if len(distinct) < 2:
        raise ValueError(f"a time split needs at least two distinct {ts_column} values, found {len(distinct)}")
    cutoff_index = min(len(distinct) - 1, max(1, round(len(distinct) * (1 - validation_fraction))))
    cutoff = pd.Timestamp(distinct[cutoff_index])
    is_valid = (times >= cutoff).to_numpy()
    is_train = ~is_valid
    if available_column is not None:
        is_train &= (pd.to_datetime(frame[available_column], utc=True) <= cutoff).to_numpy()
    y = frame[label_column].to_numpy(dtype="int64")
    x = to_model_input(frame, numeric, categorical)
    unknown = int((~is_valid & ~is_train).sum())
    data = TrainingData(x[is_train], y[is_train], x[is_valid], y[is_valid], numeric, categorical, cutoff, unknown)
    for side, labels in (("training", data.y_train), ("validation", data.y_valid)):
        if len(np.unique(labels)) < 2:
            raise ValueError(f"the {side} split has {len(labels)} rows and fewer than two classes")
    return data


def build_pipeline(params: dict[str, Any], numeric: list[str], categorical: list[str], *, seed: int) -> Pipeline:
    """Unfitted preprocessing (impute, scale, one-hot) followed by gradient boosting."""
    preprocess = ColumnTransformer(
        [
            ("numeric", Pipeline([("impute", SimpleImputer(strategy="median", keep_empty_features=True)), ("scale", StandardScaler())]), numeric),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ]
    )
    estimator = HistGradientBoostingClassifier(
        learning_rate=float(params["learning_rate"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        min_samples_leaf=int(params["min_samples_leaf"]),
        l2_regularization=float(params["l2_regularization"]),
        max_iter=int(params["max_iter"]),
        random_state=seed,
    )
    return Pipeline([("preprocess", preprocess), ("estimator", estimator)])


def fit_and_evaluate(params: dict[str, Any], data: TrainingData, *, seed: int) -> tuple[Pipeline, dict[str, float]]:
    """Fit on the training split and measure on the validation split."""
    started = time.perf_counter()
    pipeline = build_pipeline(params, data.numeric, data.categorical, seed=seed)
    pipeline.fit(data.x_train, data.y_train)
    valid_p = pipeline.predict_proba(data.x_valid)[:, 1]
    train_p = pipeline.predict_proba(data.x_train)[:, 1]
    metrics = {
        OBJECTIVE_METRIC: float(roc_auc_score(data.y_valid, valid_p)),
        "val_log_loss": float(log_loss(data.y_valid, valid_p, labels=[0, 1])),
        "train_auc": float(roc_auc_score(data.y_train, train_p)),
        "fit_seconds": time.perf_counter() - started,
    }
    return pipeline, metrics


def make_objective(get_data: Callable[[], TrainingData], *, seed: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A hyperopt objective: minimise the negative validation AUC. Data comes from `get_data`."""

    def objective(params: dict[str, Any]) -> dict[str, Any]:
        _, metrics = fit_and_evaluate(params, get_data(), seed=seed)
        return {"loss": -metrics[OBJECTIVE_METRIC], "status": STATUS_OK, "metrics": metrics}

    return objective


@dataclass
class TrialResult:
    number: int
    params: dict[str, Any]
    status: str
    metrics: dict[str, float]
    seconds: float
    error: str | None


@dataclass
class SweepResult:
    trials: list[TrialResult]
    best: TrialResult


def run_sweep(
    spark: SparkSession, data: TrainingData, *, max_evals: int, parallelism: int, seed: int
) -> SweepResult:
    """A TPE sweep whose trials run as Spark tasks (SparkTrials), `parallelism` at a time.

    The training data is broadcast once; each trial reads it from the broadcast instead of
    carrying it in its pickled closure. A trial that raises is recorded as failed and the
    sweep goes on.

    Raises:
        NoSuccessfulTrialError: every trial failed.
    """
    broadcast = spark.sparkContext.broadcast(data)
    try:
        trials: Trials = SparkTrials(parallelism=parallelism, spark_session=spark)
        fmin(
            fn=make_objective(lambda: broadcast.value, seed=seed),
            space=SEARCH_SPACE,
            algo=tpe.suggest,
            max_evals=max_evals,
            trials=trials,
            rstate=np.random.default_rng(seed),
            show_progressbar=False,
        )
    except AllTrialsFailed as exc:
        raise NoSuccessfulTrialError(f"every one of {max_evals} trials failed") from exc
    finally:
        broadcast.destroy()
    results = [_trial_result(i, t) for i, t in enumerate(trials.trials)]
    succeeded = [r for r in results if r.status == "ok"]
    if not succeeded:
        raise NoSuccessfulTrialError(f"every one of {len(results)} trials failed")
    best = max(succeeded, key=lambda r: r.metrics[OBJECTIVE_METRIC])
    return SweepResult(results, best)


def _trial_result(number: int, trial: dict[str, Any]) -> TrialResult:
    vals = {k: v[0] for k, v in trial["misc"]["vals"].items() if v}
    params = space_eval(SEARCH_SPACE, vals)
    result = trial.get("result", {})
    status = "ok" if result.get("status") == STATUS_OK else "failed"
    seconds = 0.0
    if trial.get("book_time") and trial.get("refresh_time"):
        seconds = (trial["refresh_time"] - trial["book_time"]).total_seconds()
    error = None if status == "ok" else str(trial.get("misc", {}).get("error") or result.get("error") or "trial failed")
    return TrialResult(number, params, status, dict(result.get("metrics", {})), seconds, error)
