"""Each pipeline job's typed summary reconciles its counts with each other and with the row counts
read at the versions it wrote (what `parity report` checks), from inline values: no Spark, no Delta."""

from __future__ import annotations

from typing import Any

import pytest

from parity.app.summaries import (
    FeatureBuildSummary,
    GenerateDataSummary,
    PromoteSummary,
    RowCount,
    ScoreSummary,
    StreamSummary,
    TrainingSetSummary,
    TrainSummary,
    summary_of,
)
from parity.core.conf import Settings, load_settings
from tests.support import CONF_DIR


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(CONF_DIR)


def _summary(outputs: dict[str, int], counts: dict[str, int], **extra: Any) -> dict[str, Any]:
    outputs_list = [{"table": table, "version": version} for table, version in outputs.items()]
    return {"run_id": "r" * 32, "outputs": outputs_list, "counts": counts, **extra}


def test_generate_data_reconciles_each_table_with_its_rows(settings: Settings) -> None:
    raw = _summary({"raw.customers": 0, "raw.events": 3}, {"raw.customers.rows": 40, "raw.events.rows": 900})
    summary = summary_of("generate_data", raw, settings)
    assert isinstance(summary, GenerateDataSummary)
    assert summary.row_counts() == [RowCount("raw.customers", 0), RowCount("raw.events", 3)]
    assert summary.reconcile({RowCount("raw.customers", 0): 40, RowCount("raw.events", 3): 900}) == []
    assert summary.reconcile({RowCount("raw.customers", 0): 40, RowCount("raw.events", 3): 899}) == [
        "generate_data: raw.events has 899 rows at version 3, summary says 900"
    ]


def _feature_build(activity_in: int) -> dict[str, Any]:
    counts = {
        "customer_activity.in": activity_in,
        "customer_activity.out": 95,
        "customer_activity.quarantined": 5,
        "customer_activity.rows_written": 300,
        "customer_profile.in": 40,
        "customer_profile.out": 40,
        "customer_profile.quarantined": 0,
        "customer_profile.rows_written": 12,
    }
    feature_sets = {
        "customer_activity": {"table": "features.customer_activity", "range": {"start": None, "end": None}},
        "customer_profile": {
            "table": "features.customer_profile",
            "range": {"start": "2026-02-01", "end": None},
        },
    }
    outputs = {"features.customer_activity": 2, "features.customer_profile": 7}
    return _summary(outputs, counts, feature_sets=feature_sets)


def test_a_feature_build_balances_each_set_and_checks_only_whole_table_writes(settings: Settings) -> None:
    summary = summary_of("build_features", _feature_build(activity_in=100), settings)
    assert isinstance(summary, FeatureBuildSummary)
    # the incremental set (a range) holds more than it wrote: only the whole-table write is counted
    rows = {RowCount("features.customer_activity", 2): 300, RowCount("features.customer_profile", 7): 4000}
    assert summary.reconcile(rows) == []
    assert summary.reconcile({**rows, RowCount("features.customer_activity", 2): 301}) == [
        "build_features: features.customer_activity has 301 rows at version 2, summary says 300"
    ]


def test_a_feature_build_whose_rows_in_are_not_out_plus_quarantined_does_not_reconcile(
    settings: Settings,
) -> None:
    summary = summary_of("build_features", _feature_build(activity_in=101), settings)
    rows = {RowCount("features.customer_activity", 2): 300, RowCount("features.customer_profile", 7): 12}
    assert summary.reconcile(rows) == ["build_features: customer_activity: 101 rows in != out + quarantined"]


def test_a_training_set_reconciles_labels_with_rows_and_the_table(settings: Settings) -> None:
    counts = {"labels.in": 500, "rows.out": 490, "labels.quarantined": 10}
    summary = summary_of(
        "build_training_set", _summary({"training.churn": 4}, counts, model="churn"), settings
    )
    assert isinstance(summary, TrainingSetSummary) and summary.training_set == "training.churn"
    assert summary.reconcile({RowCount("training.churn", 4): 490}) == []
    assert summary.reconcile({RowCount("training.churn", 4): 489}) == [
        "build_training_set: training.churn has 489 rows at version 4, summary says 490"
    ]
    unbalanced = summary_of(
        "build_training_set",
        _summary({"training.churn": 4}, {**counts, "labels.quarantined": 9}, model="churn"),
        settings,
    )
    assert unbalanced.reconcile({RowCount("training.churn", 4): 490}) == [
        "build_training_set: 500 labels in != 490 rows out + 9 quarantined"
    ]


def _score(keys_in: int) -> dict[str, Any]:
    counts = {"keys.in": keys_in, "predictions.out": 38, "keys.quarantined": 2}
    outputs = {"predictions.churn": 5, "quarantine.scoring_churn": 1}
    return _summary(outputs, counts, model="churn", score_ts="2026-06-01 00:00:00", model_version="3")


def test_a_score_reconciles_its_slice_and_its_keys(settings: Settings) -> None:
    summary = summary_of("score", _score(keys_in=40), settings)
    assert isinstance(summary, ScoreSummary)
    in_slice = RowCount("predictions.churn", 5, score_ts="2026-06-01 00:00:00", model_version="3")
    assert in_slice in summary.row_counts()
    whole = {RowCount("predictions.churn", 5): 120, RowCount("quarantine.scoring_churn", 1): 2}
    assert summary.reconcile({**whole, in_slice: 38}) == []
    assert summary.reconcile({**whole, in_slice: 37}) == [
        "score: predictions.churn has 37 rows in its slice, summary says 38"
    ]


def test_a_score_whose_keys_in_are_not_scored_plus_quarantined_does_not_reconcile(settings: Settings) -> None:
    summary = summary_of("score", _score(keys_in=41), settings)
    in_slice = RowCount("predictions.churn", 5, score_ts="2026-06-01 00:00:00", model_version="3")
    assert summary.reconcile({in_slice: 38}) == ["score: 41 keys in != 38 scored + 2 quarantined"]


def test_a_stream_accounts_for_every_request(settings: Settings) -> None:
    counts = {
        "requests.in": 202,
        "predictions.out": 190,
        "requests.quarantined": 2,
        "requests.already_committed": 10,
    }
    summary = summary_of("score_stream", _summary({"predictions.churn_stream": 1}, counts), settings)
    assert isinstance(summary, StreamSummary)
    assert summary.reconcile({RowCount("predictions.churn_stream", 1): 0}) == []
    short = summary_of("score_stream", _summary({}, {**counts, "requests.already_committed": 9}), settings)
    assert short.reconcile({}) == [
        "score_stream: 202 requests in != 201 scored, quarantined or already committed"
    ]


def test_train_and_promote_print_what_they_did_and_have_nothing_to_reconcile(settings: Settings) -> None:
    trained = _summary(
        {}, {}, best_metric={"val_auc": 0.8}, mlflow_run_id="m1", model_name="parity_churn", model_version="3"
    )
    train = summary_of("train", trained, settings)
    assert isinstance(train, TrainSummary) and train.reconcile({}) == []
    assert train.details() == ['best {"val_auc": 0.8}  mlflow run m1', "registered parity_churn version 3"]
    checks = [{"check": "validation", "passed": False, "detail": "auc 0.55 < floor 0.6"}]
    promoted = _summary({}, {}, model_name="parity_churn", version="3", outcome="refused", checks=checks)
    promote = summary_of("promote", promoted, settings)
    assert isinstance(promote, PromoteSummary) and promote.reconcile({}) == []
    assert promote.details() == [
        "parity_churn version 3 refused (champion before: None)",
        "validation     FAILED: auc 0.55 < floor 0.6",
    ]
