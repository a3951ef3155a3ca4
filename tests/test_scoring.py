"""Batch scoring's parts on inline rows: the population's keys into quarantine, the predictor
against the packaged model's own `predict` for both flavors, and slices of a predictions table."""

from __future__ import annotations

import datetime as dt

import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from parity.core.catalog import Catalog
from parity.core.conf import Settings
from parity.governance import configure_mlflow
from parity.model import FeatureSpec, log_packaged_model
from parity.scoring import batch
from parity.training.inputs import INPUT_CONTRACT
from parity.training.learners import LABEL, fit_and_evaluate, fit_spark, get_learner
from parity.training.splits import LabelledColumns, SparkTrainingData, time_split

KEYS = {"customer": "bigint", "channel": "string"}
SCORE_TIME = dt.datetime(2026, 6, 1, 12)


def _spec(**fields: object) -> FeatureSpec:
    defaults: dict = {
        "entity": "customer",
        "timestamp": "score_ts",
        "feature_sets": [],
        "request_time": [],
        "numeric": ["activity", "spend"],
        "categorical": ["segment"],
        "code_hash": "",
        "input_contract": INPUT_CONTRACT,
        "keys": list(KEYS),
        "columns": KEYS,
    }
    return FeatureSpec(**{**defaults, **fields})


def test_null_blank_and_malformed_keys_are_quarantined_with_a_reason(spark: SparkSession) -> None:
    # The population keeps its customer ids as text: they are cast, and one that is no number is malformed.
    population = spark.createDataFrame(
        [
            ("1", "web"),
            ("1", "web"),
            ("01", "web"),
            ("2", "web"),
            ("007", "app"),
            (None, "web"),
            ("x1", "web"),
            ("3", None),
            ("3", "  "),
            ("4", "app"),
        ],
        "customer string, channel string",
    )
    valid, quarantined = batch.split_population(population, _spec(), source="raw.population")

    assertDataFrameEqual(
        valid,
        spark.createDataFrame(
            [(1, "web"), (2, "web"), (7, "app"), (4, "app")], "customer bigint, channel string"
        ),
    )
    expected = spark.createDataFrame(
        [
            (None, "web", "not_null:customer", "customer is null"),
            ("x1", "web", "malformed:customer", "customer is not a bigint"),
            ("3", None, "not_null:channel", "channel is null"),
            ("3", "  ", "malformed:channel", "channel is not a string"),
            (
                "1",
                "web",
                "duplicate:customer,channel",
                "another row holds the same key once cast to its declared type",
            ),  # "01" came first
        ],
        "customer string, channel string, quarantine_rule string, quarantine_reason string",
    )
    assertDataFrameEqual(quarantined, expected)
    # Keys in (distinct) = valid + quarantined.
    assert population.distinct().count() == valid.count() + quarantined.count()


def test_a_population_without_a_key_column_is_refused(spark: SparkSession) -> None:
    population = spark.createDataFrame([(1,)], "customer bigint")
    with pytest.raises(ValueError, match=r"raw\.population: missing required column\(s\) channel"):
        batch.split_population(population, _spec(), source="raw.population")


def _training_rows(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    activity = rng.poisson(3, n).astype(float)
    activity[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "label_ts": pd.to_datetime("2026-01-01") + pd.to_timedelta(rng.integers(0, 10, n) * 7, unit="D"),
            "activity": activity,
            "spend": rng.gamma(2.0, 30.0, n),
            "segment": rng.choice(["a", "b", None], n),
            LABEL: (np.nan_to_num(activity, nan=0) + rng.normal(0, 1, n) < 3).astype(int),
        }
    )


def _fitted(spark: SparkSession, flavor: str, spec: FeatureSpec, rows: pd.DataFrame) -> object:
    if flavor == "sklearn":
        data = time_split(
            rows,
            LabelledColumns(
                label_time="label_ts",
                label=LABEL,
                available_at=None,
                numeric=spec.numeric,
                categorical=spec.categorical,
            ),
            validation_fraction=0.3,
        )
        params = {
            "learning_rate": 0.1,
            "max_leaf_nodes": 8,
            "min_samples_leaf": 5,
            "l2_regularization": 0.1,
            "max_iter": 20,
        }
        return fit_and_evaluate(get_learner("sklearn.hist_gradient_boosting"), params, data, seed=1)[0]
    frame = spark.createDataFrame(rows.drop(columns="label_ts"))
    params = {"reg_param": 0.01, "elastic_net_param": 0.0, "max_iter": 20}
    # Fitted and measured on the same rows: a fit reads neither the split's cutoff nor its counts.
    data = SparkTrainingData(
        frame, frame, spec.numeric, spec.categorical, pd.Timestamp(0), len(rows), len(rows)
    )
    return fit_spark(get_learner("spark.logistic_regression"), params, data, seed=1)[0]


@pytest.mark.parametrize(
    "flavor", ["sklearn", pytest.param("spark", marks=pytest.mark.integration)]
)  # a Spark ML fit: make test
def test_the_predictor_gives_what_the_packaged_models_own_predict_gives(
    spark: SparkSession, tmp_settings: Settings, flavor: str
) -> None:
    spec = _spec(flavor=flavor)
    training = _training_rows()
    fitted = _fitted(spark, flavor, spec, training)
    # Rows to score: nulls in every input, a level training never saw, more rows than one predict call takes.
    rows = _training_rows(250, seed=5).drop(columns=["label_ts", LABEL])
    rows.loc[0, ["activity", "spend", "segment"]] = [np.nan, np.nan, None]
    rows.loc[1, "segment"] = "unseen"
    rows.insert(0, "customer", range(len(rows)))
    rows.insert(1, "channel", "web")
    rows.insert(2, "score_ts", pd.Timestamp(SCORE_TIME))
    with mlflow.start_run(experiment_id=configure_mlflow(tmp_settings)):
        info = log_packaged_model(fitted, spec, rows.head(3), registered_model=f"scoring_{flavor}")
    uri = f"models:/scoring_{flavor}/{info.registered_model_version}"

    assembled = spark.createDataFrame(
        rows,
        "customer bigint, channel string, score_ts timestamp, activity double, spend double, segment string",
    )
    got = batch.predict_rows(
        spark, assembled.repartition(3), spec, model_uri=uri, options=batch.ScoringOptions(batch_rows=40)
    ).toPandas()
    own = mlflow.pyfunc.load_model(uri).predict(rows)

    got = got.sort_values("customer").reset_index(drop=True)
    pd.testing.assert_frame_equal(
        got[["customer", "channel", "score_ts"]], rows[["customer", "channel", "score_ts"]], check_dtype=False
    )
    np.testing.assert_allclose(got["prediction"].to_numpy(), own.to_numpy(), rtol=1e-12)
    assert got["prediction"].between(0, 1).all() and got["prediction"].nunique() > 10


def _slice_rows(spark: SparkSession, version: str, at: dt.datetime, predictions: list[float]) -> DataFrame:
    rows = spark.createDataFrame(
        [(i + 1, at, p) for i, p in enumerate(predictions)],
        "customer bigint, score_ts timestamp, prediction double",
    )
    return batch.with_lineage(
        rows,
        model_name="m",
        model_version=version,
        model_run_id=f"train{version}",
        scoring_run_id=f"score{version}",
    )


def test_rescoring_a_slice_replaces_that_slice_only(spark: SparkSession, tmp_settings: Settings) -> None:
    catalog, name = Catalog(spark, tmp_settings), "predictions.sliced"
    later = SCORE_TIME + dt.timedelta(days=1)

    def write(version: str, at: dt.datetime, predictions: list[float]) -> int:
        return batch.write_slice(
            catalog,
            _slice_rows(spark, version, at, predictions),
            name,
            model_name="m",
            model_version=version,
            score_time=at,
        )

    assert write("1", SCORE_TIME, [0.1, 0.2, 0.3]) == 3  # the champion...
    assert write("2", SCORE_TIME, [0.5, 0.6]) == 2  # ...and a challenger shadow-scored at the same time
    assert write("1", later, [0.9]) == 1
    before = catalog.version(name)
    assert write("1", SCORE_TIME, [0.15, 0.25]) == 2  # rescoring the champion's first slice
    assert catalog.version(name) == before + 1  # in one commit

    table = catalog.read(name).select("model_version", "score_ts", "prediction").toPandas()
    got = {(v, ts.to_pydatetime(), p) for v, ts, p in table.itertuples(index=False)}
    assert got == {
        ("1", SCORE_TIME, 0.15),
        ("1", SCORE_TIME, 0.25),
        ("2", SCORE_TIME, 0.5),
        ("2", SCORE_TIME, 0.6),
        ("1", later, 0.9),
    }
    assert catalog.read(name).filter(F.col("scoring_run_id").isNull()).count() == 0
    details = spark.sql(f"DESCRIBE DETAIL delta.`{catalog.path(name)}`").first()
    assert details is not None and details["partitionColumns"] == ["score_date"]


def test_a_predictions_table_from_before_slices_is_rewritten_in_one_commit(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    catalog, name = Catalog(spark, tmp_settings), "predictions.older"
    older = _slice_rows(spark, "1", SCORE_TIME, [0.1, 0.2]).drop("scoring_run_id", "score_date")
    older = older.unionByName(
        _slice_rows(spark, "1", SCORE_TIME - dt.timedelta(days=7), [0.7]).drop("scoring_run_id", "score_date")
    )
    catalog.write(older, name)
    first = catalog.version(name)

    assert (
        batch.write_slice(
            catalog,
            _slice_rows(spark, "1", SCORE_TIME, [0.3]),
            name,
            model_name="m",
            model_version="1",
            score_time=SCORE_TIME,
        )
        == 1
    )
    assert catalog.version(name) == first + 1
    table = (
        catalog.read(name)
        .select("score_ts", "prediction", "scoring_run_id", "score_date")
        .toPandas()
        .sort_values("prediction")
    )
    assert table["prediction"].tolist() == [0.3, 0.7]  # the rescored slice replaced, the older day kept
    assert table["scoring_run_id"].tolist() == ["score1", None]
    assert table["score_date"].astype(str).tolist() == ["2026-06-01", "2026-05-25"]
