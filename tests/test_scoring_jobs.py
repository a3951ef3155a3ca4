"""The score job on the pipeline's tables: a version resolved once, shadow slices, a population
given on the command line with bad keys, arguments refused before Spark starts; and the inputs
each run of the feature build and the two scoring jobs records, exactly as the README lists them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import ModuleType

import pytest
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from parity.app import scoring_run
from parity.core.catalog import Catalog
from parity.core.conf import Settings, load_settings
from parity.governance import configure_mlflow
from tests.conftest import TEST_SPARK, PipelineRun
from tests.support import CONF_DIR, load_job, set_args

SCORE_TIME = "2026-05-20T00:00:00"


def _score_job() -> ModuleType:
    return load_job("score", "_slices")


def _run(job: str, overrides: list[str], capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    """Run a job's main() in this process; its JSON summary."""
    code = load_job(job, "_lineage").main([*args, *set_args(overrides)])
    out, err = capsys.readouterr()
    assert code == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def _score(pipeline: PipelineRun, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    return _run(
        "score",
        pipeline.overrides + TEST_SPARK,
        capsys,
        "--model",
        "churn",
        "--score-time",
        SCORE_TIME,
        *args,
    )


def _inputs(summary: dict) -> list[tuple[str, int]]:
    return sorted((i["table"], i["version"]) for i in summary["inputs"])


def _newest(catalog: Catalog, tables: list[str]) -> list[tuple[str, int]]:
    """Each table at its newest version (the version a run that has just ended read)."""
    versions = {table: catalog.version(table) for table in tables}
    return sorted((table, version) for table, version in versions.items() if version is not None)


def _feature_tables(settings: Settings, model: str) -> list[str]:
    return [settings.feature_sets[lookup.feature_set].table for lookup in settings.model(model).features]


def test_the_version_resolved_at_the_start_is_on_every_row_and_slices_stay_apart(
    pipeline: PipelineRun,
    spark: SparkSession,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = pipeline.settings()
    configure_mlflow(settings)
    client, name = MlflowClient(), settings.model("churn").registered_model
    trained = pipeline.summary("train")["model_version"]
    other = str(
        client.copy_model_version(f"models:/{name}/{trained}", name).version
    )  # a second version: the same model, copied
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
    predictions = catalog.read(settings.model("churn").predictions()).filter(
        F.col("score_ts") == F.lit(SCORE_TIME).cast("timestamp")
    )
    assert first["model_version"] == trained and first["slice"]["model_version"] == trained
    assert {r[0] for r in predictions.select("model_version").distinct().collect()} == {trained}
    assert predictions.filter(F.col("scoring_run_id") != first["run_id"]).count() == 0
    # Its inputs are the population and the feature tables, at the versions read, as the README lists them.
    listed = _newest(
        catalog, [settings.model("churn").scoring.population.table, *_feature_tables(settings, "churn")]
    )
    assert _inputs(first) == listed and len(listed) == 3

    # The other version, shadow-scored at the same time, adds its own slice...
    shadow = _score(pipeline, capsys, "--model-version", other)
    table = catalog.read(settings.model("churn").predictions()).filter(
        F.col("score_ts") == F.lit(SCORE_TIME).cast("timestamp")
    )
    by_version = {r["model_version"]: r["count"] for r in table.groupBy("model_version").count().collect()}
    assert by_version == {
        trained: first["counts"]["predictions.out"],
        other: shadow["counts"]["predictions.out"],
    }
    # ...and rescoring the first replaces its slice only.
    again = _score(pipeline, capsys, "--model-version", trained)
    table = catalog.read(settings.model("churn").predictions()).filter(
        F.col("score_ts") == F.lit(SCORE_TIME).cast("timestamp")
    )
    runs = {
        r["model_version"]: r["scoring_run_id"]
        for r in table.select("model_version", "scoring_run_id").distinct().collect()
    }
    assert runs == {trained: again["run_id"], other: shadow["run_id"]}
    assert table.count() == first["counts"]["predictions.out"] + shadow["counts"]["predictions.out"]
    # A rescoring reads its own predictions table to check its columns: a probe, not an input.
    assert _inputs(shadow) == _inputs(again) == listed


def test_a_population_with_bad_keys_is_scored_and_its_bad_keys_quarantined(
    pipeline: PipelineRun, spark: SparkSession, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = pipeline.settings()
    catalog = Catalog(spark, settings)
    ids = [
        str(r[0])
        for r in catalog.read(settings.tables.raw_customers)
        .select("customer_id")
        .distinct()
        .orderBy("customer_id")
        .limit(40)
        .collect()
    ]
    rows = (
        [(i,) for i in ids] + [(None,), ("abc",), ("",), ("abc",)] + [(i,) for i in ids[:5]]
    )  # ids as text, some bad, some twice
    catalog.write(spark.createDataFrame(rows, "customer_id string"), "raw.score_population")

    summary = _score(
        pipeline,
        capsys,
        "--population",
        "raw.score_population",
        "--model-version",
        pipeline.summary("train")["model_version"],
    )
    counts = summary["counts"]
    assert counts == {"keys.in": 43, "predictions.out": 40, "keys.quarantined": 3}
    assert summary["population"] == "raw.score_population"
    quarantined = catalog.read(settings.model("churn").scoring_quarantine()).toPandas()
    assert sorted(quarantined["quarantine_rule"]) == [
        "malformed:customer_id",
        "malformed:customer_id",
        "not_null:customer_id",
    ]
    assert set(quarantined["scoring_run_id"]) == {summary["run_id"]} and set(
        quarantined["model_version"]
    ) == {summary["model_version"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-version", "champion"], "model version 'champion' is not a version number, @alias"),
        (["--population", "population"], "'population' is not a logical table name"),
        (["--score-time", "yesterday"], "--score-time 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_bad_arguments_are_refused_before_spark_starts(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _score_job().main(["--model", "churn", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: score: ") and message in err


def test_each_run_records_as_inputs_what_the_readme_lists_and_nothing_else(
    pipeline: PipelineRun, spark: SparkSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README (Governance: what a run records as its inputs) lists each job's inputs: a
    probe (a schema or existence check) or a read of the run's own output is none. Here on
    tiny data of its own, scored with the pipeline's champion: a feature build, then the batch
    and the stream scoring twice each (a rescoring of the same slice; a stream that finds
    nothing new); every audit.runs row's inputs are exactly what the list says."""
    root = [o for o in pipeline.overrides if not o.startswith("storage.root=")]  # the pipeline's MLflow store
    overrides = [*root, f"storage.root={tmp_path}/data", "data.customers=40", "data.days=90", *TEST_SPARK]
    settings = load_settings(CONF_DIR, overrides=overrides)
    catalog, model = Catalog(spark, settings), settings.model("churn")
    stream = model.scoring.stream
    assert stream is not None

    listed: dict[str, list[tuple[str, int]]] = {}  # run id -> its inputs, as the README lists them
    generated = _run("generate_data", overrides, capsys)
    listed[generated["run_id"]] = []
    built = _run("build_features", overrides, capsys)
    sources = sorted({settings.source_table(decl.source) for decl in settings.feature_sets.values()})
    listed[built["run_id"]] = _newest(catalog, sources)  # each built feature set's source table
    features = _feature_tables(settings, "churn")
    for _ in range(2):  # the second rescores the first's slice, reading its predictions table's columns
        scored = _run("score", overrides, capsys, "--model", "churn")
        listed[scored["run_id"]] = _newest(catalog, [model.scoring.population.table, *features])
    ids = [r[0] for r in catalog.read(settings.tables.raw_customers).select("customer_id").limit(5).collect()]
    requests = [(customer, dt.datetime(2026, 3, 20), f"r-{i}") for i, customer in enumerate(ids)]
    catalog.write(
        spark.createDataFrame(requests, "customer_id bigint, requested_at timestamp, request_id string"),
        stream.requests,
    )
    for expected_batches in (1, 0):  # the second finds nothing new: no batch read a feature table
        streamed = _run("score_stream", overrides, capsys, "--model", "churn", "--available-now")
        assert streamed["counts"]["batches"] == expected_batches
        listed[streamed["run_id"]] = _newest(
            catalog, [stream.requests, *(features if expected_batches else [])]
        )

    audit = catalog.read(settings.tables.audit_runs).filter(F.col("ended_at").isNotNull()).collect()
    recorded = {row["run_id"]: sorted((i["table"], i["version"]) for i in row["inputs"]) for row in audit}
    assert recorded == listed
    assert {table for inputs in recorded.values() for table, _ in inputs}.isdisjoint(
        [
            model.predictions(),
            model.scoring_quarantine(),
            model.stream_predictions(),
            model.stream_quarantine(),
        ]
    )
