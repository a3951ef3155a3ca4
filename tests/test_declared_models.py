"""A model declared on a dataset parity has never seen: a string entity key, a two-column label
key, a renamed key, one feature set looked up twice under two prefixes, and a regression label.
Its training set equals a brute-force as-of oracle, and bad labels go to quarantine."""

from __future__ import annotations

import copy
import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession

from parity.core.catalog import Catalog
from parity.core.conf import Settings, load_settings
from parity.features import build_feature_set
from parity.features.training_sets import build_training_set
from tests.conftest import TEST_SPARK
from tests.support import CONF_DIR, REPO, SubmitOptions, run_here, storage_overrides, submit
from tests.test_feature_sets import MERCHANT_DECLARATION, TRANSACTIONS

TS = dt.datetime
LABELS = "merchant STRING, till STRING, acquirer STRING, label_ts TIMESTAMP, refunds DOUBLE"
MODEL = {
    "name": "till_refunds",
    "description": "Refunds a till will see in the next week (a regression on a two-column key).",
    "task": "regression",
    "labels": {
        "table": "raw.refund_labels",
        "keys": {"merchant": "string", "till": "string"},
        "time": "label_ts",
        "label": {"name": "refunds", "type": "double"},
        "columns": {"acquirer": "string"},
    },
    "features": [
        {"feature_set": "merchant_activity", "entity": {"merchant_id": "merchant"}},
        {
            "feature_set": "merchant_activity",
            "entity": {"merchant_id": "acquirer"},
            "prefix": "acq_",
            "features": ["takings_7d"],
        },
    ],
    "sweep": "till_gbr",
    "registered_model": "till_refunds",
    "scoring": {"population": {"table": "raw.tills"}},
}
SWEEP = {
    "name": "till_gbr",
    "description": "A small regression sweep.",
    "learner": "sklearn.hist_gradient_boosting_regressor",
    "space": {"max_iter": 10, "min_samples_leaf": 2, "learning_rate": {"uniform": [0.05, 0.3]}},
    "objective": {"metric": "val_rmse", "direction": "minimize"},
    "max_evals": 2,
    "parallelism": 1,
}


def merchant_conf(root: Path, model: dict) -> Path:  # type: ignore[type-arg]
    """A copy of conf/ under `root` that declares the merchant dataset, its sweep and `model`."""
    conf = root / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "features" / "merchant_activity.yaml").write_text(yaml.safe_dump(MERCHANT_DECLARATION))
    (conf / "sweeps" / "till_gbr.yaml").write_text(yaml.safe_dump(SWEEP))
    (conf / "models" / f"{model['name']}.yaml").write_text(yaml.safe_dump(model))
    (conf / "dev.yaml").write_text(
        (conf / "dev.yaml").read_text() + "\nquality:\n  raw.transactions:\n"
        "    columns: {merchant_id: string, txn_ts: timestamp, amount: double, memo: string}\n"
    )
    return conf


@pytest.fixture(scope="module")
def project(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    """A project folder holding the new dataset's declarations, its raw tables and its built features."""
    root = tmp_path_factory.mktemp("till_project")
    conf = merchant_conf(root, MODEL)
    overrides = storage_overrides(root) + TEST_SPARK
    settings = load_settings(conf, overrides=overrides)
    catalog = Catalog(spark, settings)
    transactions = [
        (f"m{m}", TS(2026, 3, 1) + dt.timedelta(days=d, hours=m), float(10 * m + d), None, 1)
        for m in range(1, 5)
        for d in range(0, 20, m)
    ]
    catalog.write(spark.createDataFrame(transactions, TRANSACTIONS), "raw.transactions")
    build_feature_set(catalog, settings, settings.feature_sets["merchant_activity"])
    return conf, settings


def _labels() -> list[tuple]:
    good = [
        (
            f"m{m}",
            f"t{t}",
            f"m{(m % 4) + 1}",
            TS(2026, 3, 2) + dt.timedelta(days=d, hours=12 * t),
            float(m * t + d % 3),
        )
        for m in range(1, 5)
        for t in (1, 2)
        for d in range(0, 24, 3)
    ]
    bad = [
        (None, "t1", "m1", TS(2026, 3, 9), 1.0),  # no key
        ("m1", "t1", "m2", TS(2026, 3, 2, 12), 9.0),  # a second label for (m1, t1) at one time
        ("m2", "t1", "m3", TS(2026, 3, 10), None),  # no label
    ]
    return good + bad


@pytest.mark.integration  # a scenario of several builds (make test; the inner loop keeps the unit tests)
def test_the_training_set_joins_as_of_each_label_through_renamed_keys_and_quarantines_bad_labels(
    spark: SparkSession, project: tuple[Path, Settings]
) -> None:
    _, settings = project
    catalog = Catalog(spark, settings)
    catalog.write(spark.createDataFrame(_labels(), LABELS), "raw.refund_labels")
    model = settings.model("till_refunds")
    result = build_training_set(catalog, settings, model)

    counts = result.counts
    assert counts["labels.in"] == len(_labels()) == counts["rows.out"] + counts["labels.quarantined"]
    quarantined = {
        (r.quarantine_rule, r.merchant) for r in catalog.read("quarantine.refund_labels").collect()
    }
    assert quarantined == {
        ("not_null:merchant", None),
        ("unique:merchant+till+label_ts", "m1"),
        ("not_null:refunds", "m2"),
    }

    _assert_training_set_is_the_oracle(catalog, model.training_set(), counts["rows.out"])
    columns = set(catalog.read(model.training_set()).columns)
    assert "acq_weekend_txns_7d" not in columns  # the second lookup keeps only takings_7d
    assert {"merchant", "till", "acquirer", "label_ts", "refunds"} <= columns

    # Rebuilding the same inputs quarantines nothing twice and gives the same rows.
    again = build_training_set(catalog, settings, model, rebuild=result.version)
    assert again.digest == result.digest
    assert catalog.read("quarantine.refund_labels").count() == 3


def _assert_training_set_is_the_oracle(catalog: Catalog, training_set: str, rows: int) -> None:
    """Per label, the newest merchant_activity row of its merchant (and, prefixed acq_, of its
    acquirer) stamped at or before its time, computed here in plain Python."""
    features = [r.asDict() for r in catalog.read("features.merchant_activity").collect()]

    def as_of(merchant: str, at: dt.datetime) -> dict | None:
        known = [f for f in features if f["merchant_id"] == merchant and f["feature_ts"] <= at]
        return max(known, key=lambda f: f["feature_ts"]) if known else None

    training = catalog.read(training_set).collect()
    assert len(training) == rows > 0
    for row in training:
        own, acquirer = as_of(row.merchant, row.label_ts), as_of(row.acquirer, row.label_ts)
        assert row.takings_7d == (own["takings_7d"] if own else None)
        assert row.memos_with_contact_7d == (own["memos_with_contact_7d"] if own else None)
        assert row.merchant_activity_as_of == (own["feature_ts"] if own else None)
        assert row.acq_takings_7d == (acquirer["takings_7d"] if acquirer else None)
        assert row.acq_merchant_activity_as_of == (acquirer["feature_ts"] if acquirer else None)


@pytest.mark.integration
def test_a_project_of_its_own_runs_through_the_unchanged_jobs(spark: SparkSession, tmp_path: Path) -> None:
    """A brand-new project folder (its own conf, tables and MLflow store) runs build_features
    through spark-submit.sh, then build_training_set, train and score, with no code change."""
    conf = tmp_path / "project" / "conf"
    for folder in ("features", "sweeps", "models"):
        (conf / folder).mkdir(parents=True)
    (conf / "base.yaml").write_text(
        yaml.safe_dump(
            {
                "mlflow": {"experiment": "tills"},
                "spark": {
                    "jars_dir": str(REPO / ".jars"),
                    "conf": {"spark.sql.session.timeZone": "UTC", "spark.sql.shuffle.partitions": 2},
                },
                "quality": {
                    "raw.transactions": {
                        "columns": {
                            "merchant_id": "string",
                            "txn_ts": "timestamp",
                            "amount": "double",
                            "memo": "string",
                        }
                    }
                },
            }
        )
    )
    (conf / "dev.yaml").write_text(
        yaml.safe_dump(
            {
                "storage": {"root": "data"},  # relative: under the project folder
                "mlflow": {"tracking_uri": "sqlite:///mlflow.db", "artifact_root": "mlartifacts"},
                "spark": {"master": "local[2]", "conf": {"spark.ui.enabled": False}},
            }
        )
    )
    declaration = copy.deepcopy(MERCHANT_DECLARATION)
    declaration["transforms"] = declaration["transforms"][1:]  # parity's transforms only: nothing to ship
    declaration["transforms"][1]["params"]["aggregates"] = [
        a for a in declaration["transforms"][1]["params"]["aggregates"] if a["column"] != "weekend"
    ]
    declaration["features"] = [f for f in declaration["features"] if f["name"] != "weekend_txns_7d"]
    (conf / "features" / "merchant_activity.yaml").write_text(yaml.safe_dump(declaration))
    (conf / "sweeps" / "till_gbr.yaml").write_text(yaml.safe_dump(SWEEP))
    (conf / "models" / "till_refunds.yaml").write_text(yaml.safe_dump(MODEL))
    settings = load_settings(conf)
    assert settings.storage.root == str(tmp_path / "project" / "data")
    catalog = Catalog(spark, settings)
    transactions = [
        (f"m{m}", TS(2026, 3, 1) + dt.timedelta(days=d, hours=m), float(10 * m + d), None, 1)
        for m in range(1, 5)
        for d in range(0, 20, m)
    ]
    catalog.write(spark.createDataFrame(transactions, TRANSACTIONS).drop("extra"), "raw.transactions")
    catalog.write(spark.createDataFrame(_labels(), LABELS), "raw.refund_labels")
    tills = [(f"m{m}", f"t{t}", f"m{(m % 4) + 1}") for m in range(1, 5) for t in (1, 2)]
    catalog.write(spark.createDataFrame(tills, "merchant STRING, till STRING, acquirer STRING"), "raw.tills")

    # The spark-submit path of a project of its own once (PARITY_CONF_DIR, the project's
    # relative paths); the jobs after it run in this driver, as the pipeline proves each one's
    # spark-submit path.
    run = submit("build_features", [], options=SubmitOptions(conf_dir=conf))
    assert run.returncode == 0, f"build_features failed:\n{run.stderr[-4000:]}"
    summaries = {"build_features": run.summary}
    for job, args in (
        ("build_training_set", ["--model", "till_refunds"]),
        ("train", []),  # one model declared: --model may be left out
        ("score", ["--model-version", "latest"]),  # no champion in this project: the newest version
    ):
        run = run_here(job, args, conf_dir=conf)
        assert run.returncode == 0, f"{job} failed:\n{run.stderr[-4000:]}"
        summaries[job] = run.summary
    built = summaries["build_training_set"]
    assert built["model"] == "till_refunds" and built["counts"]["labels.quarantined"] == 3
    _assert_training_set_is_the_oracle(catalog, "training.till_refunds", built["counts"]["rows.out"])
    assert set(summaries["train"]["best_metric"]) == {"val_rmse"}
    predictions = catalog.read("predictions.till_refunds").toPandas()
    assert list(predictions.columns[:3]) == ["merchant", "till", "score_ts"]
    assert sorted(zip(predictions["merchant"], predictions["till"], strict=True)) == sorted(
        (m, t) for m, t, _ in tills
    )
    assert (
        predictions["prediction"].notna().all()
        and len(predictions) == summaries["score"]["counts"]["predictions.out"]
    )
