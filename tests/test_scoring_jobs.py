"""The score job on the pipeline's tables: a version resolved once, shadow slices, a population
given on the command line with bad keys, and arguments refused before Spark starts."""

from __future__ import annotations

import json
from types import ModuleType

import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from parity.app import scoring_run
from parity.core.catalog import Catalog
from parity.governance import configure_mlflow
from tests.conftest import TEST_SPARK, PipelineRun
from tests.support import load_job, set_args

SCORE_TIME = "2026-05-20T00:00:00"


def _score_job() -> ModuleType:
    return load_job("score", "_slices")


def _score(pipeline: PipelineRun, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    code = _score_job().main(["--model", "churn", "--score-time", SCORE_TIME, *args, *set_args(pipeline.overrides + TEST_SPARK)])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_the_version_resolved_at_the_start_is_on_every_row_and_slices_stay_apart(
    pipeline: PipelineRun, spark: SparkSession, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pipeline.settings()
    configure_mlflow(settings)
    client, name = MlflowClient(), settings.model("churn").registered_model
    trained = pipeline.summary("train")["model_version"]
    other = str(client.copy_model_version(f"models:/{name}/{trained}", name).version)  # a second version: the same model, copied
    client.set_registered_model_alias(name, "challenger", trained)

    # The alias moves while the run is under way, after the run resolved it...
    read_lookups = scoring_run.read_lookups

    def move_alias_then_read(*args: object, **kwargs: object) -> object:
        client.set_registered_model_alias(name, "challenger", other)
        return read_lookups(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scoring_run, "read_lookups", move_alias_then_read)
    first = _score(pipeline, capsys, "--model-version", "@challenger")
    monkeypatch.undo()
    assert str(client.get_model_version_by_alias(name, "challenger").version) == other
    # ...and every row it wrote carries the version resolved at the start.
    catalog = Catalog(spark, settings)
    predictions = catalog.read(settings.model("churn").predictions()).filter(F.col("score_ts") == F.lit(SCORE_TIME).cast("timestamp"))
    assert first["model_version"] == trained and first["slice"]["model_version"] == trained
    assert {r[0] for r in predictions.select("model_version").distinct().collect()} == {trained}
    assert predictions.filter(F.col("scoring_run_id") != first["run_id"]).count() == 0
    assert any(i["table"].startswith("features.") for i in first["inputs"])  # the feature versions read are in the lineage

    # The other version, shadow-scored at the same time, adds its own slice...
    shadow = _score(pipeline, capsys, "--model-version", other)
    table = catalog.read(settings.model("churn").predictions()).filter(F.col("score_ts") == F.lit(SCORE_TIME).cast("timestamp"))
    by_version = {r["model_version"]: r["count"] for r in table.groupBy("model_version").count().collect()}
    assert by_version == {trained: first["counts"]["predictions.out"], other: shadow["counts"]["predictions.out"]}
    # ...and rescoring the first replaces its slice only.
    again = _score(pipeline, capsys, "--model-version", trained)
    table = catalog.read(settings.model("churn").predictions()).filter(F.col("score_ts") == F.lit(SCORE_TIME).cast("timestamp"))
    runs = {r["model_version"]: r["scoring_run_id"] for r in table.select("model_version", "scoring_run_id").distinct().collect()}
    assert runs == {trained: again["run_id"], other: shadow["run_id"]}
    assert table.count() == first["counts"]["predictions.out"] + shadow["counts"]["predictions.out"]


def test_a_population_with_bad_keys_is_scored_and_its_bad_keys_quarantined(
    pipeline: PipelineRun, spark: SparkSession, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = pipeline.settings()
    catalog = Catalog(spark, settings)
    ids = [str(r[0]) for r in catalog.read(settings.tables.raw_customers).select("customer_id").distinct().orderBy("customer_id").limit(40).collect()]
    rows = [(i,) for i in ids] + [(None,), ("abc",), ("",), ("abc",)] + [(i,) for i in ids[:5]]  # ids as text, some bad, some twice
    catalog.write(spark.createDataFrame(rows, "customer_id string"), "raw.score_population")

    summary = _score(pipeline, capsys, "--population", "raw.score_population", "--model-version", pipeline.summary("train")["model_version"])
    counts = summary["counts"]
    assert counts == {"keys.in": 43, "predictions.out": 40, "keys.quarantined": 3}
    assert summary["population"] == "raw.score_population"
    quarantined = catalog.read(settings.model("churn").scoring_quarantine()).toPandas()
    assert sorted(quarantined["quarantine_rule"]) == ["malformed:customer_id", "malformed:customer_id", "not_null:customer_id"]
    assert set(quarantined["scoring_run_id"]) == {summary["run_id"]} and set(quarantined["model_version"]) == {summary["model_version"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-version", "champion"], "model version 'champion' is not a version number, @alias"),
        (["--population", "population"], "'population' is not a logical table name"),
        (["--score-time", "yesterday"], "--score-time 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_bad_arguments_are_refused_before_spark_starts(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _score_job().main(["--model", "churn", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: score: ") and message in err
