"""The learners a sweep may name: what conf needs to validate a declaration, and nothing more.

Each entry gives a learner's task, its execution mode and the hyperparameters a search space
may set; `TASK_METRICS` lists what every trial of a task reports (a sweep's objective names one).
How a learner is built and fitted lives in `parity.training.learners`, which registers one
factory for every name here (a test holds the two to each other).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["single_node", "distributed"]
Task = Literal["binary", "regression"]

# What every trial reports, by task (besides fit_seconds).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("val_auc", "val_log_loss", "train_auc"),
    "regression": ("val_rmse", "val_mae", "train_rmse"),
}
# What the promotion gate can measure a model by on labels it never saw, by task, and which
# way is better (parity.training.learners.holdout_metric computes them).
HOLDOUT_METRICS: dict[str, dict[str, Literal["higher", "lower"]]] = {
    "binary": {"auc": "higher", "log_loss": "lower"},
    "regression": {"rmse": "lower", "mae": "lower"},
}


@dataclass(frozen=True)
class LearnerInfo:
    """A learner's name, how its trials run, the hyperparameters a space may set, and its task."""

    name: str
    mode: Mode
    hyperparameters: frozenset[str]
    description: str
    task: Task = "binary"


# The hyperparameters a classifier and its regressor share.
_HIST_GRADIENT_BOOSTING = frozenset(
    {"learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization", "max_iter", "max_depth"}
)
_SPARK_GBT = frozenset({"max_depth", "max_iter", "step_size", "subsampling_rate", "min_instances_per_node"})

LEARNER_NAMES: dict[str, LearnerInfo] = {
    info.name: info
    for info in (
        LearnerInfo(
            "sklearn.hist_gradient_boosting",
            "single_node",
            _HIST_GRADIENT_BOOSTING,
            "scikit-learn HistGradientBoostingClassifier",
        ),
        LearnerInfo(
            "sklearn.logistic_regression",
            "single_node",
            frozenset({"C", "penalty", "max_iter"}),
            "scikit-learn LogisticRegression (penalty l1 or l2)",
        ),
        LearnerInfo(
            "spark.gbt",
            "distributed",
            _SPARK_GBT,
            "Spark ML GBTClassifier",
        ),
        LearnerInfo(
            "spark.logistic_regression",
            "distributed",
            frozenset({"reg_param", "elastic_net_param", "max_iter"}),
            "Spark ML LogisticRegression",
        ),
        LearnerInfo(
            "sklearn.hist_gradient_boosting_regressor",
            "single_node",
            _HIST_GRADIENT_BOOSTING | {"loss"},
            "scikit-learn HistGradientBoostingRegressor",
            "regression",
        ),
        LearnerInfo(
            "spark.gbt_regressor",
            "distributed",
            _SPARK_GBT,
            "Spark ML GBTRegressor",
            "regression",
        ),
    )
}


def learner_info(name: str) -> LearnerInfo:
    """The learner registered under `name`.

    Raises:
        ValueError: naming the known learners.
    """
    if name not in LEARNER_NAMES:
        raise ValueError(f"unknown learner '{name}'; known: {', '.join(sorted(LEARNER_NAMES))}")
    return LEARNER_NAMES[name]
