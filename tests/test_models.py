"""Model declarations (conf/models/<name>.yaml): loading, defaults, and errors that name the file and the field."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from parity.core.conf import ConfError, load_settings
from tests.support import CONF_DIR, REPO

REGRESSION_SWEEP = (
    "sweeps.spend_gbr={name: spend_gbr, description: regression, learner: sklearn.hist_gradient_boosting_regressor, "
    "space: {learning_rate: {loguniform: [0.05, 0.3]}}, "
    "objective: {metric: val_rmse, direction: minimize}, max_evals: 2}"
)


def test_the_demo_model_loads_with_its_tables_and_registry_name() -> None:
    settings = load_settings(CONF_DIR)
    churn = settings.model("churn")
    assert (churn.task, churn.training_set(), churn.predictions(), churn.registered_model) == (
        "binary",
        "training.churn",
        "predictions.churn",
        "parity_churn",
    )
    assert churn.labels.contract() == {
        "customer_id": "bigint",
        "label_ts": "timestamp",
        "label_available_at": "timestamp",
        "label": "int",
    }


def test_default_tables_follow_the_models_name(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    text = (conf / "models" / "churn.yaml").read_text()
    (conf / "models" / "churn.yaml").write_text(
        text.replace("tables:\n  training_set: training.churn", "tables:\n  training_set: null")
    )
    (conf / "models" / "churn2.yaml").write_text(
        text.replace("name: churn", "name: churn2")
        .replace("registered_model: parity_churn", "registered_model: parity_churn2")
        .replace("predictions: predictions.churn", "predictions: null")
        .replace("training_set: training.churn", "training_set: null")
    )
    settings = load_settings(conf)
    assert (settings.model("churn").training_set(), settings.model("churn2").training_set()) == (
        "training.churn",
        "training.churn2",
    )
    assert settings.model("churn2").predictions() == "predictions.churn2"
    with pytest.raises(
        ValueError, match=r"name the model with --model NAME; declared models: channel_spend, churn, churn2"
    ):
        settings.model()
    with pytest.raises(
        ValueError, match=r"unknown model 'churn3'; declared models: channel_spend, churn, churn2"
    ):
        settings.model("churn3")
    for name in ("churn2", "channel_spend"):
        (conf / "models" / f"{name}.yaml").unlink()
    only = load_settings(conf)
    assert only.model() is only.model("churn")  # the only one declared: no name needed


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["models.churn.features=[{feature_set: churn_risk}]"],
            r"model churn \(models/churn\.yaml\) features\[0\]\.feature_set: undeclared feature set 'churn_risk'",
        ),
        (["models.churn.sweep=nope"], r"model churn \(models/churn\.yaml\) sweep: undeclared sweep 'nope'"),
        (
            ["models.churn.features=[{feature_set: customer_activity, entity: {customer_id: account}}]"],
            r"features\[0\]\.entity: feature set customer_activity is keyed by customer_id, and no label "
            r"key or labels\.columns entry 'account' supplies it",
        ),
        (
            ["models.churn.features=[{feature_set: customer_activity, entity: {account_id: customer_id}}]"],
            r"features\[0\]\.entity maps account_id, which feature set customer_activity is not keyed by; "
            r"its keys: customer_id",
        ),
        (
            ["models.churn.labels.keys={customer_id: string}"],
            r"features\[0\]\.entity: label column customer_id is string, but feature set "
            r"customer_activity's key customer_id is bigint",
        ),
        (
            ["models.churn.labels.label.type=double"],
            r"models\.churn' \(in models/churn\.yaml\): labels\.label\.type is double, which a binary "
            r"model cannot learn",
        ),
        (
            ["models.churn.features=[{feature_set: customer_activity}, {feature_set: customer_activity}]"],
            r"features\[1\]: column 'n_events_1d' is added by both lookup customer_activity and lookup "
            r"customer_activity; give one of them a prefix",
        ),
        (
            ["models.churn.features=[{feature_set: customer_activity, features: [n_events_9d]}]"],
            r"features\[0\]\.features: feature set customer_activity has no feature\(s\) n_events_9d",
        ),
        (
            [REGRESSION_SWEEP, "models.churn.sweep=spend_gbr"],
            r"sweep: sweep spend_gbr's learner sklearn\.hist_gradient_boosting_regressor learns "
            r"regression, but the model's task is binary",
        ),
        (
            ["models.churn.features=[{feature_set: customer_activity, prefix: Bad}]"],
            r"models\.churn\.features\.0\.prefix' \(in models/churn\.yaml\)",
        ),
        (
            ["models.churn.labels.table=churn_labels"],
            r"models\.churn\.labels\.table' \(in models/churn\.yaml\): 'churn_labels' is not a logical table name",
        ),
    ],
    ids=[
        "unknown-set",
        "unknown-sweep",
        "key-not-covered",
        "not-a-key",
        "key-type",
        "label-type",
        "duplicate-name",
        "unknown-feature",
        "task",
        "prefix",
        "labels-table",
    ],
)
def test_a_bad_model_declaration_fails_on_load_naming_the_file_and_field(
    overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfError, match=message):
        load_settings(CONF_DIR, overrides=overrides)


def test_one_set_joins_twice_under_two_prefixes_and_a_subset() -> None:
    twice = (
        "models.churn.features=[{feature_set: customer_activity, prefix: a_, features: [n_events_7d]}, "
        "{feature_set: customer_activity, prefix: b_}, {feature_set: customer_profile}]"
    )
    churn = load_settings(CONF_DIR, overrides=[twice]).model("churn")
    assert [lookup.name() for lookup in churn.features] == [
        "a_customer_activity",
        "b_customer_activity",
        "customer_profile",
    ]


def test_a_regression_sweep_reports_regression_metrics() -> None:
    with pytest.raises(
        ConfError,
        match=(
            r"objective\.metric is val_auc, "
            r"which regression learner sklearn\.hist_gradient_boosting_regressor does not report"
        ),
    ):
        load_settings(
            CONF_DIR,
            overrides=[
                REGRESSION_SWEEP.replace(
                    "metric: val_rmse, direction: minimize", "metric: val_auc, direction: maximize"
                )
            ],
        )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("training.sweep=spark_gbt", "models.<name>.sweep"),
        ("training.feature_sets=[customer_activity]", "models.<name>.features"),
        ("tables.training_set=training.x", "models.<name>.tables.training_set"),
        ("tables.predictions=predictions.x", "models.<name>.tables.predictions"),
        ("mlflow.registered_model=x", "models.<name>.registered_model"),
        ("training.as_known_at=true", "models.<name>.training.as_known_at"),
    ],
)
def test_an_old_key_names_its_new_place(old: str, new: str) -> None:
    key = old.partition("=")[0]
    with pytest.raises(ConfError, match=rf"conf key '{key}' moved into the model declaration: set {new}"):
        load_settings(CONF_DIR, overrides=[old])


def test_a_model_file_is_named_after_its_model(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "models" / "churn.yaml").rename(conf / "models" / "attrition.yaml")
    with pytest.raises(
        ConfError, match=r"models/attrition\.yaml declares model 'churn'; name the file churn\.yaml"
    ):
        load_settings(conf)


@pytest.mark.parametrize("job", ["build_training_set", "train", "score"])
def test_a_model_job_refuses_an_unknown_model_before_spark_starts(
    job: str, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = importlib.util.spec_from_file_location(f"job_{job}_models", REPO / "jobs" / f"{job}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--model", "claims"]) == 2
    assert (
        f"error: {job}: unknown model 'claims'; declared models: channel_spend, churn"
        in capsys.readouterr().err
    )
    assert module.main([]) == 2
    assert (
        f"error: {job}: name the model with --model NAME; declared models: channel_spend, churn"
        in capsys.readouterr().err
    )
