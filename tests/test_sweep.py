"""Sweeps: declarations, the parallel engine (failed trials, timeouts, early stop), both
execution modes, MLflow logging of every trial, and the transform-code check on load."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from pyspark.ml.functions import vector_to_array
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from parity.core.conf import ConfError, Settings, load_settings
from parity.core.hashing import HASH_SCHEME_KEY, SCHEME
from parity.governance import configure_mlflow, log_trial
from parity.model import FeatureSpec, TransformCodeChangedError, log_packaged_model
from parity.training import learners
from parity.training.search_space import build_space, flatten
from parity.training.splits import LabelledColumns, spark_time_split, time_split
from parity.training.sweep import (
    DriverRunner,
    NoSuccessfulTrialError,
    SparkTaskRunner,
    SweepOptions,
    run_sweep,
)
from tests.support import CONF_DIR, caller_rows

SPACE = {"x": {"uniform": [0, 1]}, "kind": {"choice": [{"k": "a", "y": {"quniform": [1, 5, 1]}}, {"k": "b"}]}}
COLUMNS = LabelledColumns(
    label_time="label_ts", label="label", available_at=None, numeric=["activity"], categorical=["segment"]
)


def _sweep(runner, on_trial=None, **kw):  # type: ignore[no-untyped-def]
    defaults = {"metric": "score", "direction": "maximize", "max_evals": 6, "parallelism": 2, "seed": 3}
    return run_sweep(runner, build_space(SPACE), SweepOptions(**{**defaults, **kw}), on_trial=on_trial)


def _score(params: dict) -> dict[str, float]:
    return {"score": params["x"]}


def _fails_when_b(params: dict) -> dict[str, float]:
    if params["k"] == "b":
        raise ValueError("kind b is not supported")
    return {"score": params["x"]}


def _sleeps(params: dict) -> dict[str, float]:
    time.sleep(30)
    return {"score": params["x"]}


def _always_fails(params: dict) -> dict[str, float]:
    raise RuntimeError("broken objective")


def test_nested_choices_yield_flat_parameters() -> None:
    assert flatten({"x": 0.5, "kind": {"k": "a", "y": 3.0}}) == {"x": 0.5, "k": "a", "y": 3.0}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"learning_rate": {"loguniform": [0, 1]}}, r"space\.learning_rate: loguniform needs low > 0"),
        ({"learning_rate": {"uniform": [0.3, 0.1]}}, r"space\.learning_rate: uniform needs low < high"),
        ({"max_iter": {"quniform": [1, 5]}}, r"space\.max_iter: quniform takes \[low, high, step\]"),
        (
            {"max_iter": {"normal": [1, 5]}},
            r"space\.max_iter: give exactly one of uniform, loguniform, quniform, choice",
        ),
        (
            {"depth": {"uniform": [1, 5]}},
            r"space sets depth, which learner sklearn.hist_gradient_boosting does not take",
        ),
        ({"shape": {"choice": [{"leaves": 3}]}}, r"space sets leaves, which learner"),
    ],
)
def test_a_malformed_space_fails_on_load_naming_the_parameter(space: dict, message: str) -> None:
    overrides = [f"sweeps.hist_gradient_boosting.space={space}"]
    with pytest.raises(ConfError, match=message):
        load_settings(CONF_DIR, overrides=overrides)


def test_a_sweep_declaration_fails_on_load_naming_the_field() -> None:
    with pytest.raises(
        ConfError, match=r"unknown learner 'sklearn.forest'; known: .*sklearn.hist_gradient_boosting"
    ):
        load_settings(CONF_DIR, overrides=["sweeps.hist_gradient_boosting.learner=sklearn.forest"])
    with pytest.raises(
        ConfError, match=r"sweeps.spark_gbt.*learner spark.gbt is distributed.*set parallelism: 1"
    ):
        load_settings(CONF_DIR, overrides=["sweeps.spark_gbt.parallelism=2"])
    with pytest.raises(
        ConfError,
        match=r"model churn \(models/churn\.yaml\) sweep: undeclared sweep 'nope'; declared: hist_gradient_boosting",
    ):
        load_settings(CONF_DIR, overrides=["models.churn.sweep=nope"])
    with pytest.raises(ConfError, match=r"sweeps.hist_gradient_boosting.objective.direction"):
        load_settings(CONF_DIR, overrides=["sweeps.hist_gradient_boosting.objective.direction=up"])


def test_spark_task_trials_run_in_parallel_and_failures_do_not_stop_the_sweep(spark: SparkSession) -> None:
    seen = []
    result = _sweep(SparkTaskRunner(spark, _fails_when_b, parallelism=2), max_evals=10, on_trial=seen.append)
    statuses = {t.status for t in result.trials}
    assert statuses == {"ok", "failed"} and len(result.trials) == len(seen) == 10
    failed = [t for t in result.trials if t.status == "failed"]
    assert all(t.params["k"] == "b" and "kind b is not supported" in (t.error or "") for t in failed)
    assert result.best.status == "ok" and result.best.metrics["score"] == max(
        t.metrics.get("score", -1) for t in result.trials
    )
    assert result.stopped_by == "max_evals"


def test_a_sweep_whose_every_trial_fails_ends_with_a_clear_error(spark: SparkSession) -> None:
    with pytest.raises(
        NoSuccessfulTrialError, match=r"every one of 4 trials failed; errors: RuntimeError: broken objective"
    ):
        _sweep(SparkTaskRunner(spark, _always_fails, parallelism=2), max_evals=4)


def test_the_timeout_cancels_running_trials(spark: SparkSession) -> None:
    started = time.monotonic()
    with pytest.raises(NoSuccessfulTrialError, match="cancelled at the sweep's timeout"):
        _sweep(SparkTaskRunner(spark, _sleeps, parallelism=2), max_evals=4, timeout_seconds=3)
    assert time.monotonic() - started < 20  # the 30 s trials were cancelled, not waited for
    # The session is still usable: the cancelled job group did not take it down.
    assert spark.range(3).count() == 3


def test_early_stop_ends_a_sweep_that_stopped_improving() -> None:
    result = _sweep(
        DriverRunner(lambda p: {"score": 1.0}, parallelism=1), parallelism=1, max_evals=30, early_stop_evals=3
    )
    assert (
        result.stopped_by == "early_stop" and len(result.trials) == 4
    )  # the first sets the best, 3 more fail to beat it


def test_random_search_and_tpe_minimize_when_asked() -> None:
    for algorithm in ("random", "tpe"):
        result = _sweep(
            DriverRunner(_score, parallelism=1),
            parallelism=1,
            direction="minimize",
            algorithm=algorithm,
            max_evals=8,
        )
        assert result.best.metrics["score"] == min(t.metrics["score"] for t in result.trials)


def _labelled(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    activity = rng.poisson(3, n).astype(float)
    activity[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "label_ts": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10, n) * 7, unit="D"),
            "activity": activity,
            "segment": rng.choice(["a", "b", None], n),
            "label": (np.nan_to_num(activity, nan=0) < 2).astype(int),
        }
    )


def test_a_parallel_sweep_logs_every_trial_as_a_nested_run(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    data = time_split(_labelled(), COLUMNS, validation_fraction=0.3)
    learner = learners.get_learner("sklearn.hist_gradient_boosting")
    shipped = spark.sparkContext.broadcast(data)
    experiment = configure_mlflow(tmp_settings)
    decl = tmp_settings.sweeps["hist_gradient_boosting"]
    with mlflow.start_run(experiment_id=experiment) as parent:
        result = run_sweep(
            SparkTaskRunner(
                spark,
                lambda p: learners.fit_and_evaluate(learner, p, shipped.value, seed=1)[1],
                parallelism=2,
            ),
            build_space(decl.space),
            SweepOptions(metric="val_auc", direction="maximize", max_evals=6, parallelism=2, seed=1),
            on_trial=lambda trial: log_trial(parent.info.run_id, experiment, trial),
        )
    children = MlflowClient().search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == len(result.trials) == 6
    assert {c.data.tags["parity.trial"] for c in children} == {str(t.number) for t in result.trials}
    assert all(
        {"val_auc", "val_log_loss", "train_auc", "trial_seconds"} <= set(c.data.metrics) for c in children
    )
    assert max(c.data.metrics["val_auc"] for c in children) == result.best.metrics["val_auc"] > 0.9
    assert {frozenset(c.data.params) for c in children} >= {
        frozenset({"learning_rate", "max_iter", "min_samples_leaf", "l2_regularization", "max_leaf_nodes"})
    }


def test_spark_time_split_validates_on_later_labels_only(spark: SparkSession) -> None:
    frame = _labelled().assign(label_available_at=lambda f: f["label_ts"] + pd.Timedelta(days=10))
    split = spark_time_split(
        spark.createDataFrame(frame),
        dataclasses.replace(COLUMNS, available_at="label_available_at"),
        validation_fraction=0.3,
    )
    local = time_split(
        frame, dataclasses.replace(COLUMNS, available_at="label_available_at"), validation_fraction=0.3
    )
    assert split.cutoff.tz_localize(None) == local.cutoff.tz_localize(None)
    assert (split.rows_train, split.rows_valid, split.unknown_at_cutoff) == (
        len(local.y_train),
        len(local.y_valid),
        local.unknown_at_cutoff,
    )


def test_a_distributed_learner_sweeps_one_spark_job_at_a_time(spark: SparkSession) -> None:
    """Spark ML trials on the driver, one at a time; the best refits to a model that ranks the
    labels. (That the packaged Spark model predicts what the fitted one does in session is
    test_model_inputs.py's.)"""
    frame = _labelled()
    split = spark_time_split(spark.createDataFrame(frame), COLUMNS, validation_fraction=0.3)
    learner = learners.get_learner("spark.logistic_regression")
    space = {"reg_param": {"loguniform": [0.001, 1.0]}, "max_iter": 20}

    def fit(params: dict) -> dict[str, float]:
        return learners.fit_spark(learner, params, split, seed=1)[1]

    result = run_sweep(
        DriverRunner(fit, parallelism=1, spark=spark),
        build_space(space),
        SweepOptions(metric="val_auc", direction="maximize", max_evals=3, parallelism=1, seed=1),
    )
    assert [t.status for t in result.trials] == ["ok"] * 3 and result.best.metrics["val_auc"] > 0.8

    model, metrics = learners.fit_spark(learner, result.best.params, split, seed=1)
    assert metrics["val_auc"] == result.best.metrics["val_auc"]  # the refit is the trial it repeats
    in_session = model.transform(spark.createDataFrame(frame.head(20)[["activity", "segment"]]))
    predictions = in_session.select(vector_to_array(F.col("probability"))[1].alias("p")).toPandas()["p"]
    assert predictions.between(0, 1).all() and (
        predictions[frame.head(20)["label"] == 1].mean() > predictions[frame.head(20)["label"] == 0].mean()
    )


def test_loading_a_model_whose_transform_code_changed_fails(tmp_settings: Settings, tmp_path: Path) -> None:
    data = time_split(_labelled(), COLUMNS, validation_fraction=0.3)
    learner = learners.get_learner("sklearn.logistic_regression")
    pipeline, _ = learners.fit_and_evaluate(learner, {"C": 1.0}, data, seed=1)
    decl = tmp_settings.feature_sets["customer_profile"]
    lookup = {
        "feature_set": decl.model_dump(mode="json"),
        "table": decl.table,
        "version": 0,
        HASH_SCHEME_KEY: SCHEME,
    }
    lookup["code_hash"] = decl.code_hash()
    spec = FeatureSpec(
        entity="customer_id",
        timestamp="score_ts",
        feature_sets=[lookup],
        request_time=[],
        numeric=["activity"],
        categorical=["segment"],
        code_hash="abc",
        learner=learner.name,
    )
    stale = FeatureSpec(**{**spec.__dict__, "feature_sets": [{**lookup, "code_hash": "0123456789abcdef"}]})
    rows = caller_rows(data.x_valid)
    with mlflow.start_run(experiment_id=configure_mlflow(tmp_settings)):
        current = log_packaged_model(pipeline, spec, rows.head(3), registered_model=None)
        changed = log_packaged_model(pipeline, stale, rows.head(3), registered_model=None)

    assert len(mlflow.pyfunc.load_model(current.model_uri).predict(rows)) == len(rows)
    with pytest.raises(
        TransformCodeChangedError,
        match=r"customer_profile \(trained with 0123456789abcdef, installed code gives ",
    ):
        mlflow.pyfunc.load_model(changed.model_uri)
    allowed = mlflow.pyfunc.load_model(changed.model_uri, model_config={"allow_code_mismatch": True})
    assert len(allowed.predict(rows)) == len(rows)
