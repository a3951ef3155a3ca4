"""Training pieces: the time split, and the packaged model's safe round trip through MLflow."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from parity.core.conf import Settings
from parity.governance import configure_mlflow
from parity.model import (
    FeatureSpec,
    MissingFeaturesError,
    UntrustedModelTypesError,
    check_trusted,
    load_feature_spec,
    log_packaged_model,
)
from parity.model.code_artifact import CODE_ARTIFACT, check_code_artifact
from parity.training.inputs import INPUT_CONTRACT
from parity.training.learners import build_pipeline, fit_and_evaluate, get_learner
from parity.training.splits import LabelledColumns, time_split
from tests.support import caller_rows

HGB = get_learner("sklearn.hist_gradient_boosting")
PARAMS = {
    "learning_rate": 0.1,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 5,
    "l2_regularization": 0.1,
    "max_iter": 20,
}
COLUMNS = LabelledColumns(
    label_time="label_ts", label="label", available_at=None, numeric=["activity"], categorical=["segment"]
)


def _labelled(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    activity = rng.poisson(3, n).astype(float)
    activity[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "label_ts": pd.to_datetime("2026-01-01", utc=True)
            + pd.to_timedelta(rng.integers(0, 10, n) * 7, unit="D"),
            "activity": activity,
            "segment": rng.choice(["a", "b", None], n),
            "label": (np.nan_to_num(activity, nan=0) < 2).astype(int),
        }
    )


def test_time_split_validates_on_later_labels_only() -> None:
    frame = _labelled()
    data = time_split(frame, COLUMNS, validation_fraction=0.3)
    train_ts = frame.loc[data.x_train.index, "label_ts"]
    valid_ts = frame.loc[data.x_valid.index, "label_ts"]
    assert train_ts.max() < valid_ts.min() == data.cutoff
    assert len(data.x_train) + len(data.x_valid) == len(frame)
    assert 0.15 < len(data.x_valid) / len(frame) < 0.45


def test_time_split_refuses_a_single_class_side() -> None:
    frame = _labelled().assign(label=0)
    with pytest.raises(ValueError, match="fewer than two classes"):
        time_split(frame, COLUMNS, validation_fraction=0.3)


def _double(x: np.ndarray) -> np.ndarray:
    return x * 2


def test_untrusted_types_are_refused_before_saving() -> None:
    odd = make_pipeline(FunctionTransformer(_double))
    odd.fit(np.ones((3, 1)))
    with pytest.raises(UntrustedModelTypesError, match="_double"):
        check_trusted(odd)


def test_packaged_model_round_trips_with_its_spec(tmp_settings: Settings, tmp_path: Path) -> None:
    data = time_split(_labelled(), COLUMNS, validation_fraction=0.3)
    pipeline, metrics = fit_and_evaluate(HGB, PARAMS, data, seed=1)
    assert metrics["val_auc"] > 0.9
    spec = FeatureSpec(
        entity="customer_id",
        timestamp="score_ts",
        feature_sets=[],
        request_time=[],
        numeric=["activity"],
        categorical=["segment"],
        code_hash="abc123",
        input_contract=INPUT_CONTRACT,
    )
    unseen = pd.DataFrame({"activity": [np.nan, 2.0], "segment": ["zz", None]})  # a level training never saw
    rows = caller_rows(pd.concat([data.x_valid, unseen], ignore_index=True))
    experiment = configure_mlflow(tmp_settings)
    with mlflow.start_run(experiment_id=experiment):
        info = log_packaged_model(pipeline, spec, rows.head(3), registered_model="unit_model")
    uri = f"models:/unit_model/{info.registered_model_version}"

    loaded = mlflow.pyfunc.load_model(uri)
    expected = build_pipeline(HGB, PARAMS, ["activity"], ["segment"], seed=1).fit(data.x_train, data.y_train)
    np.testing.assert_allclose(loaded.predict(rows).to_numpy(), expected.predict_proba(rows)[:, 1])
    with pytest.raises(MissingFeaturesError, match="missing activity, segment"):
        loaded.predict(rows[["customer_id", "score_ts"]])
    # The spec as given, and the library wheel the model carries, whose digest loading checked.
    logged = load_feature_spec(uri)
    assert logged == dataclasses.replace(spec, code=logged.code) and logged.code["wheel"].startswith(
        "parity-"
    )
    local = Path(mlflow.artifacts.download_artifacts(uri))
    assert check_code_artifact(local / "artifacts" / CODE_ARTIFACT, logged.code) is not None
    files = {p.name for p in local.rglob("*")}
    assert (
        "model.skops" in files
        and logged.code["wheel"] in files
        and not any(name.endswith((".pkl", ".pickle")) for name in files)
    )


def test_training_leaves_out_labels_not_yet_known_at_the_cutoff() -> None:
    frame = _labelled().assign(label_available_at=lambda f: f["label_ts"] + pd.Timedelta(days=14))
    data = time_split(
        frame, dataclasses.replace(COLUMNS, available_at="label_available_at"), validation_fraction=0.3
    )
    known = frame.loc[data.x_train.index, "label_available_at"]
    assert known.max() <= data.cutoff
    assert (
        data.unknown_at_cutoff
        == ((frame["label_ts"] < data.cutoff) & (frame["label_available_at"] > data.cutoff)).sum()
        > 0
    )
    assert len(data.x_train) + len(data.x_valid) + data.unknown_at_cutoff == len(frame)
