"""A declared sweep run end to end by the library (what the train job calls): the declaration's
split, its trials in the learner's mode, and the best trial refitted, for both modes."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from parity.core.conf import Settings
from parity.training.declared_sweep import LabelledColumns, run_declared_sweep
from parity.training.sweep import TrialResult

COLUMNS = LabelledColumns("label_ts", "label", "label_available_at", ["activity"], ["segment"])


def _labelled(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    activity = rng.poisson(3, n).astype(float)
    label_ts = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 8, n) * 7, unit="D")
    return pd.DataFrame(
        {
            "label_ts": label_ts,
            "label_available_at": label_ts + pd.Timedelta(days=10),
            "activity": activity,
            "segment": rng.choice(["a", "b"], n),
            "label": (activity < 2).astype(int),
        }
    )


def _declared(settings: Settings, name: str, **changes: object):  # type: ignore[no-untyped-def]
    decl = settings.sweeps[name]
    return decl.model_copy(update=changes)


def test_a_single_node_sweep_runs_its_declaration_and_refits_the_best(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    decl = _declared(tmp_settings, "hist_gradient_boosting", max_evals=3, parallelism=2)
    finished: list[TrialResult] = []
    trained = run_declared_sweep(
        spark, decl, spark.createDataFrame(_labelled()), COLUMNS, on_trial=finished.append
    )

    assert len(trained.sweep.trials) == len(finished) == 3 and trained.count("ok") == 3
    assert (
        trained.metrics["val_auc"] == trained.sweep.best.metrics["val_auc"] > 0.7
    )  # the refit is the best trial again
    assert (
        trained.rows["rows.train"] + trained.rows["rows.valid"] + trained.rows["rows.unknown_at_cutoff"]
        == 300
    )
    assert (
        pd.to_datetime(trained.example["label_ts"]) >= trained.cutoff.tz_localize(None)
    ).all()  # examples are validation rows
    assert trained.model.predict_proba(trained.example[["activity", "segment"]]).shape == (
        len(trained.example),
        2,
    )


def test_a_distributed_sweep_runs_its_trials_one_after_another(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    decl = _declared(
        tmp_settings, "spark_gbt", max_evals=2, space={"max_depth": 2, "max_iter": {"quniform": [3, 4, 1]}}
    )
    trained = run_declared_sweep(spark, decl, spark.createDataFrame(_labelled()), COLUMNS)

    assert [t.status for t in trained.sweep.trials] == ["ok", "ok"]
    assert trained.sweep.best.params["max_depth"] == 2 and trained.sweep.best.params["max_iter"] in (3.0, 4.0)
    assert trained.metrics["val_auc"] > 0.9
    assert trained.rows["rows.valid"] > 0 and len(trained.example) == 5
