"""One model-input contract, inside the model: the fitted pipeline prepares its own inputs, so
the packaged model predicts what the pipeline predicts in session, and models packaged before
that still score as they did."""

from __future__ import annotations

import dataclasses
import datetime as dt

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io
from pyspark.ml import Pipeline as SparkPipeline
from pyspark.ml import PipelineModel
from pyspark.ml.classification import LogisticRegression as SparkLogisticRegression
from pyspark.ml.feature import Imputer, OneHotEncoder, StandardScaler, StringIndexer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from sklearn.pipeline import Pipeline

from parity.core.conf import Settings
from parity.governance import configure_mlflow
from parity.model import FeatureSpec, load_feature_spec, log_packaged_model, predict_frame
from parity.model.packaged import SKOPS_TRUSTED_TYPES, with_input_preparation
from parity.training.inputs import INPUT_CONTRACT, LEGACY_INPUT_CONTRACT, PrepareModelInputs, to_model_input
from parity.training.learners import build_pipeline, fit_and_evaluate, fit_spark, get_learner
from parity.training.splits import LabelledColumns, SparkTrainingData, spark_time_split, time_split

NUMERIC = ["visits", "is_member", "spend"]  # bigint, boolean, double in the training set
CATEGORICAL = ["segment"]
LABELLED = (
    "customer_id bigint, label_ts timestamp, visits bigint, is_member boolean, spend double, segment string, "
    "label int"
)
FEATURES = "customer_id bigint, visits bigint, is_member boolean, spend double, segment string"
# Rows to score: nulls in every input, and a segment training never saw.
SCORING = [
    (1, 0, True, 12.5, "a"),
    (2, 5, False, 40.0, "c"),
    (3, None, True, 3.0, "b"),
    (4, 2, None, None, "c"),
    (5, 1, False, 8.0, None),
    (6, 3, True, 20.0, "zz"),
    (7, None, None, None, None),
]
COLUMNS = LabelledColumns(
    label_time="label_ts", label="label", available_at=None, numeric=NUMERIC, categorical=CATEGORICAL
)
SPLIT = {"columns": COLUMNS, "validation_fraction": 0.3}
HGB_PARAMS = {"max_leaf_nodes": 8, "min_samples_leaf": 5, "max_iter": 30}
SPARK_LR_PARAMS = {"reg_param": 0.01, "max_iter": 30}


def _labelled(spark: SparkSession, n: int = 400, seed: int = 0) -> DataFrame:
    """Labelled rows with the training set's own types (bigint, boolean, double, string), about 10% null per input."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        visits, member, spend = (
            int(rng.poisson(3)),
            bool(rng.random() < 0.5),
            round(float(rng.gamma(2.0, 10.0)), 2),
        )
        segment = str(rng.choice(["a", "b", "c"]))
        label = int(visits < 2 or (member and segment == "c"))
        values = [None if rng.random() < 0.1 else v for v in (visits, member, spend, segment)]
        rows.append(
            (i + 1, dt.datetime(2026, 1, 1) + dt.timedelta(days=7 * int(rng.integers(0, 10))), *values, label)
        )
    return spark.createDataFrame(rows, LABELLED)


def _spec(**overrides: object) -> FeatureSpec:
    fields: dict = {
        "entity": "customer_id",
        "timestamp": "score_ts",
        "feature_sets": [],
        "request_time": [],
        "numeric": NUMERIC,
        "categorical": CATEGORICAL,
        "code_hash": "abc123",
    }
    return FeatureSpec(**{**fields, **overrides})


def _caller_rows() -> pd.DataFrame:
    """SCORING as a caller passes it to the packaged model: keys, a time, and the features as plain Python values."""
    rows = pd.DataFrame(SCORING, columns=["customer_id", *NUMERIC, *CATEGORICAL])
    return rows.assign(score_ts=pd.Timestamp("2026-06-01"))


def _p(scored: DataFrame) -> np.ndarray:
    """P(label = 1) from a Spark ML model's output, in customer_id order."""
    return (
        scored.orderBy("customer_id")
        .select(vector_to_array(F.col("probability"))[1].alias("p"))
        .toPandas()["p"]
        .to_numpy()
    )


def test_the_packaged_spark_model_predicts_what_the_fitted_pipeline_predicts_in_session(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    split = spark_time_split(_labelled(spark), **SPLIT)
    model, metrics = fit_spark(get_learner("spark.logistic_regression"), SPARK_LR_PARAMS, split, seed=1)
    assert metrics["val_auc"] > 0.8
    in_session = _p(model.transform(spark.createDataFrame(SCORING, FEATURES)))

    with mlflow.start_run(experiment_id=configure_mlflow(tmp_settings)):
        info = log_packaged_model(model, _spec(flavor="spark"), _caller_rows().head(3), registered_model=None)
    packaged = mlflow.pyfunc.load_model(info.model_uri).predict(_caller_rows())

    np.testing.assert_allclose(packaged.to_numpy(), in_session, rtol=1e-12)
    assert load_feature_spec(info.model_uri).input_contract == INPUT_CONTRACT
    assert len(set(np.round(in_session, 6))) == len(
        SCORING
    )  # the rows are told apart: the check compares something


def test_the_fitted_pipelines_prepare_raw_inputs_themselves(spark: SparkSession) -> None:
    labelled = _labelled(spark)
    # scikit-learn: the training set as Spark hands it over (bigint with nulls as float, boolean with nulls as objects).
    data = time_split(labelled.toPandas(), **SPLIT)
    pipeline, _ = fit_and_evaluate(get_learner("sklearn.hist_gradient_boosting"), HGB_PARAMS, data, seed=1)
    assert isinstance(pipeline.steps[0][1], PrepareModelInputs)
    raw = pd.DataFrame(
        {
            "visits": pd.array([r[1] for r in SCORING], dtype="Int64"),
            "is_member": pd.array([r[2] for r in SCORING], dtype="boolean"),
            "spend": [r[3] for r in SCORING],
            "segment": pd.array([r[4] for r in SCORING], dtype="string"),
        }
    )
    cast = pd.DataFrame(
        {
            "segment": [r[4] for r in SCORING],
            "spend": [np.nan if r[3] is None else r[3] for r in SCORING],
            "is_member": [np.nan if r[2] is None else float(r[2]) for r in SCORING],
            "visits": [np.nan if r[1] is None else float(r[1]) for r in SCORING],
        }
    )
    np.testing.assert_array_equal(pipeline.predict_proba(raw), pipeline.predict_proba(cast))

    # Spark ML: rows typed as the training set, or pre-cast to double; the caller's columns come back untouched.
    # Fitted and measured on the same rows: a fit reads neither the split's cutoff nor its counts.
    rows = labelled.count()
    whole = SparkTrainingData(labelled, labelled, NUMERIC, CATEGORICAL, pd.Timestamp(0), rows, rows)
    model, _ = fit_spark(get_learner("spark.logistic_regression"), SPARK_LR_PARAMS, whole, seed=1)
    typed = spark.createDataFrame(SCORING, FEATURES)
    precast = spark.createDataFrame(
        [(r[0], *(None if v is None else float(v) for v in r[1:4]), r[4]) for r in SCORING],
        "customer_id bigint, visits double, is_member double, spend double, segment string",
    )
    np.testing.assert_array_equal(_p(model.transform(typed)), _p(model.transform(precast)))
    assert model.transform(typed).select(*typed.columns).collect() == typed.collect()


def test_the_preparation_is_saved_with_skops_as_a_type_trusted_on_purpose(spark: SparkSession) -> None:
    data = time_split(_labelled(spark).toPandas(), **SPLIT)
    pipeline, _ = fit_and_evaluate(get_learner("sklearn.logistic_regression"), {"C": 1.0}, data, seed=1)
    dumped = skops.io.dumps(pipeline)
    assert "parity.training.inputs.PrepareModelInputs" in skops.io.get_untrusted_types(data=dumped)
    loaded = skops.io.loads(dumped, trusted=SKOPS_TRUSTED_TYPES)
    np.testing.assert_array_equal(loaded.predict_proba(data.x_valid), pipeline.predict_proba(data.x_valid))


# --- models packaged before the preparation moved inside ---------------------------------------


def test_a_spec_logged_before_the_contract_existed_reads_as_legacy() -> None:
    before = {k: v for k, v in dataclasses.asdict(_spec()).items() if k != "input_contract"}
    assert FeatureSpec(**before).input_contract == LEGACY_INPUT_CONTRACT
    with pytest.raises(ValueError, match="input contract 99; this parity knows 1 and 2"):
        with_input_preparation(Pipeline([("model", PrepareModelInputs())]), _spec(input_contract=99))


def test_a_legacy_sklearn_model_scores_as_before(spark: SparkSession, tmp_settings: Settings) -> None:
    data = time_split(_labelled(spark).toPandas(), **SPLIT)
    # The layout before: no preparation step; the caller prepared the inputs.
    legacy = Pipeline(
        build_pipeline(
            get_learner("sklearn.hist_gradient_boosting"), HGB_PARAMS, NUMERIC, CATEGORICAL, seed=1
        ).steps[1:]
    )
    legacy.fit(to_model_input(data.x_train, NUMERIC, CATEGORICAL), data.y_train)
    rows = _caller_rows()
    before = legacy.predict_proba(to_model_input(rows, NUMERIC, CATEGORICAL))[:, 1]

    with mlflow.start_run(experiment_id=configure_mlflow(tmp_settings)):
        info = log_packaged_model(legacy, _spec(), rows.head(3), registered_model=None)
    assert (
        load_feature_spec(info.model_uri).input_contract == LEGACY_INPUT_CONTRACT
    )  # read off the model itself
    np.testing.assert_array_equal(mlflow.pyfunc.load_model(info.model_uri).predict(rows).to_numpy(), before)


def _legacy_prepared(frame: DataFrame) -> DataFrame:
    """What a caller did before, outside the model: cast, and 'missing' for null categories."""
    cast = [F.col(c).cast("double").alias(c) for c in NUMERIC]
    levels = [F.coalesce(F.col(c).cast("string"), F.lit("missing")).alias(c) for c in CATEGORICAL]
    return frame.select("customer_id", *cast, *levels, *(["label"] if "label" in frame.columns else []))


def test_a_legacy_spark_model_scores_as_before(spark: SparkSession) -> None:
    labelled = _labelled(spark).withColumn("label", F.col("label").cast("double"))
    imputed, indexed, encoded = (
        [f"_imputed_{c}" for c in NUMERIC],
        [f"_index_{c}" for c in CATEGORICAL],
        [f"_onehot_{c}" for c in CATEGORICAL],
    )
    # The layout before: the stages read the prepared inputs under the feature names.
    stages = [
        Imputer(strategy="median", inputCols=NUMERIC, outputCols=imputed),
        StringIndexer(inputCols=CATEGORICAL, outputCols=indexed, handleInvalid="keep"),
        OneHotEncoder(inputCols=indexed, outputCols=encoded, handleInvalid="keep"),
        VectorAssembler(inputCols=[*imputed, *encoded], outputCol="_assembled", handleInvalid="keep"),
        StandardScaler(inputCol="_assembled", outputCol="features", withMean=False, withStd=True),
        SparkLogisticRegression(labelCol="label", regParam=0.01, maxIter=30),
    ]
    legacy: PipelineModel = SparkPipeline(stages=stages).fit(_legacy_prepared(labelled))
    before = _p(legacy.transform(_legacy_prepared(spark.createDataFrame(SCORING, FEATURES))))

    spec = _spec(flavor="spark")
    assert spec.input_contract == LEGACY_INPUT_CONTRACT
    now = predict_frame(with_input_preparation(legacy, spec), spec, _caller_rows())
    np.testing.assert_array_equal(now.to_numpy(), before)
