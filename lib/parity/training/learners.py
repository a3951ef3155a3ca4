"""The learners a sweep can declare, and how each one fits and is measured.

A learner's `mode` decides how its sweep runs:
- `single_node` (scikit-learn): one trial per Spark task, `parallelism` trials at a time; the
  training split travels once, as a broadcast pandas frame.
- `distributed` (Spark ML): one trial after another on the driver, each fitting on the whole
  training split as distributed Spark jobs.

Either way, the fitted pipeline starts with the input preparation (`parity.training.inputs`),
so it takes the input columns as the training set holds them; preprocessing (imputation,
encoding, scaling) follows, part of the unfitted pipeline and fitted on the training split
only. Every trial of a task reports the same metrics (`TASK_METRICS`, plus `fit_seconds`):
binary learners `val_auc`, `val_log_loss` and `train_auc`; regression learners `val_rmse`,
`val_mae` and `train_rmse`. A sweep's objective names one of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, mean_absolute_error, roc_auc_score, root_mean_squared_error
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from parity.core.conf.learner_names import LEARNER_NAMES, Mode, Task, learner_info
from parity.training.inputs import MISSING_LEVEL, PrepareModelInputs, spark_input_column, spark_input_stage

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame

    from parity.training.splits import SparkTrainingData, TrainingData

METRICS = ("val_auc", "val_log_loss", "train_auc", "fit_seconds")  # a binary learner's (see TASK_METRICS)
LABEL = "label"
_EPSILON = 1e-15


@dataclass(frozen=True)
class Learner:
    """A learner: its execution mode, the hyperparameters a space may set, and its factory."""

    name: str
    mode: Mode
    hyperparameters: frozenset[str]
    make: Callable[[dict[str, Any], int], Any]  # (params, seed) -> an unfitted estimator
    description: str
    task: Task = "binary"


def _hist_params(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The hyperparameters HistGradientBoosting's classifier and regressor share."""
    return {
        "learning_rate": float(params.get("learning_rate", 0.1)),
        "max_leaf_nodes": int(params.get("max_leaf_nodes", 31)),
        "min_samples_leaf": int(params.get("min_samples_leaf", 20)),
        "l2_regularization": float(params.get("l2_regularization", 0.0)),
        "max_iter": int(params.get("max_iter", 100)),
        "max_depth": int(params["max_depth"]) if params.get("max_depth") else None,
        "random_state": seed,
    }


def _hist_gradient_boosting(params: dict[str, Any], seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(**_hist_params(params, seed))


def _hist_gradient_boosting_regressor(params: dict[str, Any], seed: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        loss=str(params.get("loss", "squared_error")), **_hist_params(params, seed)
    )


def _logistic_regression(params: dict[str, Any], seed: int) -> LogisticRegression:
    penalty = str(params.get("penalty", "l2"))
    return LogisticRegression(
        C=float(params.get("C", 1.0)),
        l1_ratio=1.0 if penalty == "l1" else 0.0,
        solver="saga" if penalty == "l1" else "lbfgs",
        max_iter=int(params.get("max_iter", 200)),
        random_state=seed,
    )


def _gbt_params(params: dict[str, Any], seed: int) -> dict[str, Any]:
    """The hyperparameters Spark ML's GBTClassifier and GBTRegressor share."""
    return {
        "labelCol": LABEL,
        "maxDepth": int(params.get("max_depth", 5)),
        "maxIter": int(params.get("max_iter", 20)),
        "stepSize": float(params.get("step_size", 0.1)),
        "subsamplingRate": float(params.get("subsampling_rate", 1.0)),
        "minInstancesPerNode": int(params.get("min_instances_per_node", 1)),
        "seed": seed,
    }


def _spark_gbt(params: dict[str, Any], seed: int) -> Any:
    from pyspark.ml.classification import GBTClassifier

    return GBTClassifier(**_gbt_params(params, seed))


def _spark_gbt_regressor(params: dict[str, Any], seed: int) -> Any:
    from pyspark.ml.regression import GBTRegressor

    return GBTRegressor(**_gbt_params(params, seed))


def _spark_logistic_regression(params: dict[str, Any], seed: int) -> Any:
    from pyspark.ml.classification import LogisticRegression as SparkLogisticRegression

    return SparkLogisticRegression(
        labelCol=LABEL,
        regParam=float(params.get("reg_param", 0.0)),
        elasticNetParam=float(params.get("elastic_net_param", 0.0)),
        maxIter=int(params.get("max_iter", 100)),
    )


_FACTORIES: dict[str, Callable[[dict[str, Any], int], Any]] = {
    "sklearn.hist_gradient_boosting": _hist_gradient_boosting,
    "sklearn.logistic_regression": _logistic_regression,
    "spark.gbt": _spark_gbt,
    "spark.logistic_regression": _spark_logistic_regression,
    "sklearn.hist_gradient_boosting_regressor": _hist_gradient_boosting_regressor,
    "spark.gbt_regressor": _spark_gbt_regressor,
}
# One learner per name conf knows (`parity.core.conf.learner_names`): a name without a factory
# fails here, on import.
LEARNERS: dict[str, Learner] = {
    name: Learner(info.name, info.mode, info.hyperparameters, _FACTORIES[name], info.description, info.task)
    for name, info in LEARNER_NAMES.items()
}


def get_learner(name: str) -> Learner:
    """The learner registered under `name`.

    Raises:
        ValueError: naming the known learners.
    """
    return LEARNERS[learner_info(name).name]


# --- single-node (scikit-learn) ---------------------------------------------------------------


def build_pipeline(
    learner: Learner, params: dict[str, Any], numeric: list[str], categorical: list[str], *, seed: int
) -> Pipeline:
    """Unfitted: input preparation, preprocessing (median impute + scale numeric; impute + one-hot
    categorical), then the estimator."""
    preprocess = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            ),
            (
                "categorical",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_LEVEL)),
                        ("encode", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                    ]
                ),
                categorical,
            ),
        ]
    )
    prepare = PrepareModelInputs(numeric, categorical)
    return Pipeline(
        [("prepare", prepare), ("preprocess", preprocess), ("estimator", learner.make(params, seed))]
    )


def fit_and_evaluate(
    learner: Learner, params: dict[str, Any], data: TrainingData, *, seed: int
) -> tuple[Pipeline, dict[str, float]]:
    """Fit on the training split and measure on the validation split (single-node learners)."""
    started = time.perf_counter()
    pipeline = build_pipeline(learner, params, data.numeric, data.categorical, seed=seed)
    pipeline.fit(data.x_train, data.y_train)
    if learner.task == "regression":
        valid_y, train_y = pipeline.predict(data.x_valid), pipeline.predict(data.x_train)
        metrics = {
            "val_rmse": float(root_mean_squared_error(data.y_valid, valid_y)),
            "val_mae": float(mean_absolute_error(data.y_valid, valid_y)),
            "train_rmse": float(root_mean_squared_error(data.y_train, train_y)),
        }
    else:
        valid_p = pipeline.predict_proba(data.x_valid)[:, 1]
        train_p = pipeline.predict_proba(data.x_train)[:, 1]
        metrics = {
            "val_auc": float(roc_auc_score(data.y_valid, valid_p)),
            "val_log_loss": float(log_loss(data.y_valid, valid_p, labels=[0, 1])),
            "train_auc": float(roc_auc_score(data.y_train, train_p)),
        }
    return pipeline, {**metrics, "fit_seconds": time.perf_counter() - started}


def holdout_metric(metric: str, labels: Any, predictions: Any) -> float:
    """One of `HOLDOUT_METRICS` (auc, log_loss, rmse, mae) of predictions against their labels,
    computed as the sweep's trials compute theirs: what the promotion gate compares models by.

    Raises:
        ValueError: an unknown metric, or AUC or log loss of labels that hold one class only.
    """
    if metric in ("auc", "log_loss") and len(set(labels)) < 2:
        raise ValueError(f"{metric} needs labels of both classes; these hold only {sorted(set(labels))}")
    measures: dict[str, Callable[[Any, Any], float]] = {
        "auc": roc_auc_score,
        "log_loss": lambda y, p: log_loss(y, p, labels=[0, 1]),
        "rmse": root_mean_squared_error,
        "mae": mean_absolute_error,
    }
    if metric not in measures:
        raise ValueError(f"unknown holdout metric '{metric}'; one of {', '.join(measures)}")
    return float(measures[metric](labels, predictions))


# --- distributed (Spark ML) -------------------------------------------------------------------


def fit_spark(
    learner: Learner, params: dict[str, Any], data: SparkTrainingData, *, seed: int
) -> tuple[PipelineModel, dict[str, float]]:
    """Fit a Spark ML pipeline on `data.train` and measure it on `data.valid` (both hold the
    inputs, `data.numeric` and `data.categorical`, and `label`).

    The first stage prepares the inputs (`spark_input_stage`); preprocessing mirrors the
    single-node one: median imputation and scaling for numeric inputs, a 'missing' level and
    one-hot encoding (unknown levels kept apart) for categorical.
    """
    from pyspark.ml import Pipeline as SparkPipeline
    from pyspark.ml.evaluation import BinaryClassificationEvaluator
    from pyspark.ml.feature import Imputer, StringIndexer, VectorAssembler
    from pyspark.ml.feature import OneHotEncoder as SparkOneHotEncoder
    from pyspark.ml.feature import StandardScaler as SparkScaler
    from pyspark.ml.functions import vector_to_array
    from pyspark.sql import functions as F

    started = time.perf_counter()
    train, valid, numeric, categorical = data.train, data.valid, data.numeric, data.categorical
    imputed = [f"_imputed_{c}" for c in numeric]
    indexed = [f"_index_{c}" for c in categorical]
    encoded = [f"_onehot_{c}" for c in categorical]
    stages: list[Any] = [spark_input_stage(numeric, categorical)]
    if numeric:
        stages.append(
            Imputer(strategy="median", inputCols=[spark_input_column(c) for c in numeric], outputCols=imputed)
        )
    if categorical:
        inputs = [spark_input_column(c) for c in categorical]
        stages.append(StringIndexer(inputCols=inputs, outputCols=indexed, handleInvalid="keep"))
        stages.append(SparkOneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"))
    stages.append(
        VectorAssembler(inputCols=[*imputed, *encoded], outputCol="_assembled", handleInvalid="keep")
    )
    stages.append(SparkScaler(inputCol="_assembled", outputCol="features", withMean=False, withStd=True))
    stages.append(learner.make(params, seed))

    def labelled(frame: DataFrame) -> DataFrame:  # the label is not a model input: training casts it
        return frame.select(*numeric, *categorical, F.col(LABEL).cast("double").alias(LABEL))

    model = SparkPipeline(stages=stages).fit(labelled(train))
    scored_valid = model.transform(labelled(valid))
    if learner.task == "regression":
        from pyspark.ml.evaluation import RegressionEvaluator

        def error(metric: Literal["rmse", "mae"], scored: DataFrame) -> float:
            return float(
                RegressionEvaluator(labelCol=LABEL, predictionCol="prediction", metricName=metric).evaluate(
                    scored
                )
            )

        metrics = {
            "val_rmse": error("rmse", scored_valid),
            "val_mae": error("mae", scored_valid),
            "train_rmse": error("rmse", model.transform(labelled(train))),
        }
    else:
        evaluator = BinaryClassificationEvaluator(
            labelCol=LABEL, rawPredictionCol="rawPrediction", metricName="areaUnderROC"
        )
        p = F.least(
            F.greatest(vector_to_array(F.col("probability"))[1], F.lit(_EPSILON)), F.lit(1 - _EPSILON)
        )
        loss = scored_valid.select(
            F.avg(-(F.col(LABEL) * F.log(p) + (1 - F.col(LABEL)) * F.log(1 - p)))
        ).first()
        metrics = {
            "val_auc": float(evaluator.evaluate(scored_valid)),
            "val_log_loss": float(loss[0]) if loss and loss[0] is not None else float(np.nan),
            "train_auc": float(evaluator.evaluate(model.transform(labelled(train)))),
        }
    return model, {**metrics, "fit_seconds": time.perf_counter() - started}
