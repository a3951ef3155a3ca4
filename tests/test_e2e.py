"""The demo's jobs end to end through spark-submit.sh, checked with independent readers."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType

import mlflow
import pytest
from delta.tables import DeltaTable as DeltaTableSpark
from deltalake import DeltaTable
from mlflow.tracking import MlflowClient
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from parity.core.catalog import Catalog, content_digest, table_path
from parity.core.conf import FeatureSetDecl
from parity.demo.columns import LABEL_TS, PII_COLUMNS, SCORE_TS
from parity.features.asof import FeatureLookup, assemble_features
from parity.model import load_feature_spec
from parity.scoring.batch import model_input_columns
from tests.conftest import TEST_SPARK, PipelineRun
from tests.support import REPO, load_job, set_args

pytestmark = pytest.mark.integration  # runs jobs through spark-submit (not in make test-fast)

ACTIVITY_AND_PROFILE = ("features.customer_activity", "features.customer_profile")


def _rows(settings, name: str, version: int) -> int:
    return DeltaTable(table_path(settings, name), version=version).to_pyarrow_dataset().count_rows()


def test_every_job_succeeds_with_a_json_summary(pipeline: PipelineRun) -> None:
    for job in PipelineRun.JOBS:
        summary = pipeline.summary(job)
        assert summary["job"] == job and summary["status"] == "succeeded"
        assert summary["git_sha"] and summary["conf_hash"] and summary["code_hash"]


def test_outputs_open_with_delta_rs_and_match_the_counts(pipeline: PipelineRun) -> None:
    settings, tables = pipeline.settings(), pipeline.settings().tables
    generated = pipeline.summary("generate_data")
    for output in generated["outputs"]:
        assert (
            _rows(settings, output["table"], output["version"])
            == generated["counts"][f"{output['table']}.rows"]
        )

    built = pipeline.summary("build_features")
    counts, versions = built["counts"], {o["table"]: o["version"] for o in built["outputs"]}
    assert (
        counts["customer_activity.in"]
        == counts["customer_activity.out"] + counts["customer_activity.quarantined"]
    )
    assert counts["customer_activity.quarantined"] > 0 and counts["customer_activity.out"] > 0
    assert counts["customer_activity.in"] == generated["counts"][f"{tables.raw_events}.rows"]
    assert counts["customer_profile.in"] == generated["counts"][f"{tables.raw_customers}.rows"]
    assert (
        _rows(settings, "quarantine.events", versions["quarantine.events"])
        == counts["customer_activity.quarantined"]
    )
    for name, declared in settings.feature_sets.items():
        assert _rows(settings, declared.table, versions[declared.table]) == counts[f"{name}.rows_written"] > 0
        assert built["feature_sets"][name]["range"]["reason"] == "first build"

    training = pipeline.summary("build_training_set")
    assert (
        training["counts"]["rows.out"] == training["counts"]["labels.in"]
    )  # no label dropped (the demo's are all valid)
    assert training["counts"]["labels.quarantined"] == 0
    assert training["counts"]["labels.without_features"] > 0  # ...including those with no history yet
    assert (
        training["counts"]["labels.without_customer_activity"]
        == training["counts"]["labels.without_features"]
    )
    assert (
        _rows(settings, settings.model("churn").training_set(), training["outputs"][0]["version"])
        == training["counts"]["rows.out"]
    )
    assert {i["table"] for i in training["inputs"]} == {tables.raw_labels, *ACTIVITY_AND_PROFILE}

    scored = pipeline.summary("score")
    predictions = DeltaTable(table_path(settings, settings.model("churn").predictions())).to_pandas()
    assert len(predictions) == scored["counts"]["predictions.out"] == scored["counts"]["keys.in"]
    assert set(predictions["model_version"]) == {pipeline.summary("train")["model_version"]}
    assert predictions["prediction"].between(0, 1).all()


def test_feature_tables_hold_no_pii(pipeline: PipelineRun) -> None:
    settings = pipeline.settings()
    for name in (*ACTIVITY_AND_PROFILE, settings.model("churn").training_set()):
        columns = set(DeltaTable(table_path(settings, name)).schema().to_arrow().names)
        assert columns.isdisjoint(PII_COLUMNS), name
    quarantine = DeltaTable(table_path(settings, "quarantine.events")).to_pandas()
    assert len(quarantine) > 0 and not quarantine["note"].fillna("").str.contains("@example.com").any()


def test_sweep_is_tracked_and_the_model_is_registered_with_its_spec(
    pipeline: PipelineRun, spark: SparkSession
) -> None:
    settings, summary = pipeline.settings(), pipeline.summary("train")
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    mlflow.set_registry_uri(
        settings.mlflow.tracking_uri
    )  # models:/ URIs too (an earlier test may have set another)
    client = MlflowClient(settings.mlflow.tracking_uri, settings.mlflow.tracking_uri)
    parent = client.get_run(summary["mlflow_run_id"])
    assert parent.data.tags["parity.training_set"] == f"{settings.model('churn').training_set()}@0"
    assert parent.data.metrics["best_val_auc"] > 0.7  # the outcome really depends on past behaviour
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    sweep = settings.sweeps[settings.model("churn").sweep]
    assert (
        parent.data.tags["parity.sweep"] == sweep.name
        and parent.data.tags["parity.git_sha"] == summary["git_sha"]
    )
    assert parent.data.tags["parity.conf_hash"] == summary["conf_hash"]
    # Trials ran two at a time on executors and were logged from the driver: every one is a nested run.
    assert len(children) == summary["counts"]["trials"] == sweep.max_evals
    assert all("val_auc" in child.data.metrics and child.info.status == "FINISHED" for child in children)
    assert parent.data.params["best.learning_rate"] in {c.data.params["learning_rate"] for c in children}
    search_space = mlflow.artifacts.load_dict(f"{parent.info.artifact_uri}/search_space.json")
    assert search_space == sweep.space
    # The training set and the feature tables it read, as Delta dataset inputs with their versions and row counts.
    datasets = {}
    for dataset_input in parent.inputs.dataset_inputs if parent.inputs else []:
        dataset, source = dataset_input.dataset, json.loads(dataset_input.dataset.source)
        rows = json.loads(dataset.profile)["num_rows"]
        datasets[dataset.name.split("@")[0]] = (
            dataset.source_type,
            source["path"],
            source.get("delta_table_version"),
            rows,
        )
    training_rows = pipeline.summary("build_training_set")["counts"]["rows.out"]
    assert datasets[settings.model("churn").training_set()] == (
        "delta_table",
        table_path(settings, settings.model("churn").training_set()),
        "0",
        training_rows,
    )
    manifest = {entry["table"]: entry for entry in pipeline.summary("build_training_set")["manifest"]}
    for name in ACTIVITY_AND_PROFILE:
        rows = Catalog(spark, settings).row_count(name, manifest[name]["version"])
        assert datasets[name] == (
            "delta_table",
            table_path(settings, name),
            str(manifest[name]["version"]),
            rows,
        )

    name = settings.model("churn").registered_model
    version = client.get_model_version(name, summary["model_version"])
    assert version.run_id == parent.info.run_id
    assert version.tags["parity.training_run"] == parent.info.run_id
    assert client.get_model_version_by_alias(name, "challenger").version == version.version
    info = mlflow.models.get_model_info(f"models:/{name}/{version.version}")
    spec = info.metadata["feature_spec"]
    assert spec["code_hash"] == summary["code_hash"]
    assert {fs["table"] for fs in spec["feature_sets"]} == set(ACTIVITY_AND_PROFILE)
    assert all(
        fs["code_hash"] == settings.feature_sets[fs["feature_set"]["name"]].code_hash()
        for fs in spec["feature_sets"]
    )
    # The signature is what a caller provides: the key and a time, with the features optional.
    signature = info.signature.inputs
    assert set(signature.required_input_names()) == {"customer_id", "score_ts"}
    assert set(signature.input_names()) == {"customer_id", "score_ts", *spec["numeric"], *spec["categorical"]}
    assert set(signature.input_names()).isdisjoint(PII_COLUMNS)
    local = mlflow.artifacts.download_artifacts(f"models:/{name}/{version.version}")
    example = mlflow.models.Model.load(local).load_input_example(local)
    assert (
        list(example.columns) == ["customer_id", "score_ts", *spec["numeric"], *spec["categorical"]]
        and len(example) == 5
    )


def test_the_training_set_records_a_manifest_of_its_inputs(
    pipeline: PipelineRun, spark: SparkSession
) -> None:
    settings, summary = pipeline.settings(), pipeline.summary("build_training_set")
    manifest = summary["manifest"]
    assert [(m["table"], m["version"]) for m in manifest] == [
        (i["table"], i["version"]) for i in summary["inputs"]
    ]
    for entry in manifest:
        frame = (
            spark.read.format("delta")
            .option("versionAsOf", entry["version"])
            .load(table_path(settings, entry["table"]))
        )
        assert entry["digest"] == content_digest(frame)
    training = spark.read.format("delta").load(table_path(settings, settings.model("churn").training_set()))
    assert summary["training_set_digest"] == content_digest(training)

    client = MlflowClient(settings.mlflow.tracking_uri, settings.mlflow.tracking_uri)
    logged = mlflow.artifacts.load_dict(
        client.get_run(pipeline.summary("train")["mlflow_run_id"]).info.artifact_uri + "/manifest.json"
    )
    assert logged["inputs"] == manifest


def test_every_run_is_in_the_audit_table(pipeline: PipelineRun) -> None:
    settings = pipeline.settings()
    audit = DeltaTable(table_path(settings, settings.tables.audit_runs)).to_pandas()
    rows = audit[audit["run_id"].isin([pipeline.summary(job)["run_id"] for job in PipelineRun.JOBS])]
    started, ran = rows[rows["status"] == "started"], rows[rows["status"] != "started"]
    assert sorted(ran["job"]) == sorted(PipelineRun.JOBS)
    assert set(ran["status"]) == {"succeeded"}
    # Each run appended a row before its first write too, with no end and nothing read or written yet.
    assert sorted(started["job"]) == sorted(PipelineRun.JOBS) and started["ended_at"].isna().all()
    assert all(len(outputs) == 0 for outputs in started["outputs"])
    train = ran[ran["job"] == "train"].iloc[0]
    assert train["mlflow_run_id"] == pipeline.summary("train")["mlflow_run_id"]
    assert [dict(i) for i in train["inputs"]] == [
        {"table": settings.model("churn").training_set(), "version": 0}
    ]


def test_scoring_recreates_the_training_features_from_the_models_spec(
    pipeline: PipelineRun, spark: SparkSession
) -> None:
    settings, train = pipeline.settings(), pipeline.summary("train")
    mlflow.set_tracking_uri(settings.mlflow.tracking_uri)
    mlflow.set_registry_uri(
        settings.mlflow.tracking_uri
    )  # models:/ URIs too (an earlier test may have set another)
    spec = load_feature_spec(f"models:/{settings.model('churn').registered_model}/{train['model_version']}")
    training = (
        spark.read.format("delta")
        .option("versionAsOf", spec.training_set["version"])
        .load(spec.training_set["path"])
    )
    # The scoring path, driven only by the spec, at the feature versions the model was trained on.
    lookups = [
        FeatureLookup(
            FeatureSetDecl.model_validate(fs["feature_set"]),
            fs["version"],
            spark.read.format("delta")
            .option("versionAsOf", fs["version"])
            .load(table_path(settings, fs["table"])),
        )
        for fs in spec.feature_sets
    ]
    spine = training.select(spec.entity, F.col(LABEL_TS).alias(SCORE_TS))
    at_scoring = assemble_features(spine, lookups, spine_ts=SCORE_TS).select(
        spec.entity, SCORE_TS, *model_input_columns(spec)
    )
    at_training = training.select(spec.entity, F.col(LABEL_TS).alias(SCORE_TS), *model_input_columns(spec))
    assertDataFrameEqual(at_scoring, at_training)


def _job(name: str) -> ModuleType:
    return load_job(name, "_e2e")


def test_rescoring_the_same_time_replaces_its_predictions(pipeline: PipelineRun, spark: SparkSession) -> None:
    settings = pipeline.settings()
    spec = importlib.util.spec_from_file_location("job_score_rerun", REPO / "jobs" / "score.py")
    assert spec and spec.loader
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    path = table_path(settings, settings.model("churn").predictions())
    scored_version = pipeline.summary("score")["outputs"][0]["version"]
    before = spark.read.format("delta").option("versionAsOf", scored_version).load(path)
    assert job.main(["--model", "churn", *set_args(pipeline.overrides + TEST_SPARK)]) == 0
    after = spark.read.format("delta").load(path)
    assert after.count() == before.count() == pipeline.summary("score")["counts"]["predictions.out"]
    # The same rows, written by the new run.
    assert (
        after.select("scoring_run_id").distinct().count() == 1
        and before.select("scoring_run_id").distinct().count() == 1
    )
    assertDataFrameEqual(after.drop("scoring_run_id"), before.drop("scoring_run_id"), rtol=1e-9)
    assert after.first()["scoring_run_id"] != before.first()["scoring_run_id"]


def test_rerunning_a_job_with_the_same_inputs_gives_the_same_table(
    pipeline: PipelineRun, spark: SparkSession
) -> None:
    settings, name = pipeline.settings(), "features.customer_activity"
    spec = importlib.util.spec_from_file_location(
        "job_build_features_rerun", REPO / "jobs" / "build_features.py"
    )
    assert spec and spec.loader
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    first = pipeline.summary("build_features")["outputs"]
    assert job.main(set_args(pipeline.overrides + TEST_SPARK)) == 0
    path = table_path(settings, name)
    before = (
        spark.read.format("delta")
        .option("versionAsOf", {o["table"]: o["version"] for o in first}[name])
        .load(path)
    )
    after = spark.read.format("delta").load(path)
    assertDataFrameEqual(after, before)


def test_a_training_set_rebuilt_from_its_manifest_is_identical(
    pipeline: PipelineRun, spark: SparkSession, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, original = pipeline.settings(), pipeline.summary("build_training_set")
    profile = "features.customer_profile"
    catalog = Catalog(spark, settings)
    # The feature table moves on after the training set was built...
    extra = (
        catalog.read(profile)
        .limit(1)
        .withColumn("credit_limit", F.lit(-1.0))
        .withColumn("customer_id", F.lit(-1).cast("long"))
    )
    catalog.write(extra, profile, mode="append")
    try:
        job = _job("build_training_set")
        assert (
            job.main(["--model", "churn", "--rebuild", "0", *set_args(pipeline.overrides + TEST_SPARK)]) == 0
        )
        rebuilt = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    finally:  # ...and is put back for the tests that follow
        DeltaTableSpark.forPath(spark, table_path(settings, profile)).restoreToVersion(0)
    # ...yet the rebuild reads the manifest's versions and gives the same rows.
    assert rebuilt["manifest"] == original["manifest"]
    assert rebuilt["training_set_digest"] == original["training_set_digest"]
    assert {i["table"]: i["version"] for i in rebuilt["inputs"]}[profile] == 0


def test_the_second_model_trains_and_scores_on_its_own_keys(pipeline: PipelineRun) -> None:
    settings, other = pipeline.settings(), PipelineRun.OTHER_MODEL
    model = settings.model(other)
    built, trained, promoted, scored = (pipeline.summary(job, other) for job in PipelineRun.MODEL_JOBS)
    assert promoted["outcome"] == "promoted" and promoted["checks"][0]["detail"].startswith("rmse ")
    assert scored["model_version"] == trained["model_version"]  # the champion
    assert {built["model"], trained["model"], scored["model"]} == {other}
    counts = built["counts"]
    assert counts["labels.in"] == counts["rows.out"] + counts["labels.quarantined"] and counts["rows.out"] > 0
    assert "labels.positive" not in counts  # a regression label has no positive class
    assert set(trained["best_metric"]) == {"val_rmse"} and trained["model_name"] == model.registered_model

    spec = load_feature_spec(f"models:/{model.registered_model}/{trained['model_version']}")
    assert (spec.task, spec.keys, spec.columns) == (
        "regression",
        ["customer", "channel"],
        {"customer": "bigint", "channel": "string"},
    )
    # Through the renamed key: the customer sets' features are model inputs, the profile's cut to its subset.
    assert "n_events_7d" in spec.numeric and "tenure_days" in spec.numeric and "segment" in spec.categorical
    assert "signup_ts" not in spec.inputs and "credit_limit" in spec.numeric

    predictions = DeltaTable(table_path(settings, model.predictions())).to_pandas()
    assert list(predictions.columns[:3]) == ["customer", "channel", "score_ts"]
    assert len(predictions) == scored["counts"]["predictions.out"] == scored["counts"]["keys.in"]
    assert predictions[["customer", "channel"]].drop_duplicates().shape[0] == len(predictions)
    assert (
        predictions["prediction"].notna().all() and (predictions["prediction"] > 1).any()
    )  # spend, not a probability
