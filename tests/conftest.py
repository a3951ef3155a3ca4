"""One session-scoped SparkSession for every test, and one small pipeline run shared by the
end-to-end, cluster and notebook tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from parity.core.conf import Settings, load_settings
from parity.core.session import get_spark
from tests import background
from tests.support import CONF_DIR, SMALL_DATA, JobRun, run_here, set_args, storage_overrides, submit

TEST_SPARK = [
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "spark.conf.spark.ui.enabled=false",
    "spark.conf.spark.databricks.delta.snapshotPartitions=1",
]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "background(name): the test waits for a check that runs in a process of its own"
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the checks the selected tests wait for, so they run beside the Spark tests."""
    background.start(
        name for item in session.items for mark in item.iter_markers("background") for name in mark.args
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    background.stop_all()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the pipeline run (the spark-submit jobs of the demo) is an integration test."""
    for item in items:
        if "pipeline" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("session")
    return load_settings(CONF_DIR, overrides=storage_overrides(root) + TEST_SPARK)


@pytest.fixture(scope="session")
def spark(settings: Settings) -> Iterator[SparkSession]:
    session = get_spark(settings)
    yield session
    session.stop()


@pytest.fixture()
def tmp_settings(tmp_path: Path) -> Settings:
    """Conf whose tables and MLflow store live under this test's tmp_path."""
    return load_settings(CONF_DIR, overrides=storage_overrides(tmp_path) + TEST_SPARK)


class PipelineRun:
    """The demo's jobs, run once on small data into one folder: the jobs of the churn model
    through spark-submit.sh (`summary(job)`: each job's spark-submit path), then the model jobs
    of the channel-spend model in the tests' driver (`summary(job, "channel_spend")`). Each
    training set holds out its newest `HOLDOUT_DAYS` of labels, on which the promotion gate
    validates the trained version before it becomes the champion that `score` uses."""

    JOBS = ("generate_data", "build_features", "build_training_set", "train", "promote", "score")
    MODEL_JOBS = ("build_training_set", "train", "promote", "score")
    OTHER_MODEL = "channel_spend"
    HOLDOUT_DAYS = "14"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.overrides = storage_overrides(root) + SMALL_DATA
        self.runs: dict[str, JobRun] = {}

    def run(self) -> None:
        steps = [(job, ["--model", "churn"] if job in self.MODEL_JOBS else [], job) for job in self.JOBS]
        steps += [
            (job, ["--model", self.OTHER_MODEL], f"{job}:{self.OTHER_MODEL}") for job in self.MODEL_JOBS
        ]
        for job, model, key in steps:
            if job == "build_training_set":
                model = [*model, "--holdout-days", self.HOLDOUT_DAYS]
            elif job == "promote":
                model = [
                    *model,
                    "--version",
                    self.runs[key.replace("promote", "train")].summary["model_version"],
                    "--reason",
                    "the tests' champion",
                ]
            if key == job:
                result = submit(job, self.overrides, extra_job_args=model)
            else:
                result = run_here(job, [*set_args(self.overrides), *model])
            self.runs[key] = result
            if result.returncode != 0:
                raise AssertionError(f"{key} failed ({result.returncode}):\n{result.stderr[-4000:]}")

    def summary(self, job: str, model: str | None = None) -> dict:
        return self.runs[f"{job}:{model}" if model else job].summary

    def settings(self) -> Settings:
        return load_settings(CONF_DIR, overrides=self.overrides)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory, spark: SparkSession) -> PipelineRun:
    """The demo's pipeline (`PipelineRun`); its in-driver jobs run on the tests' session."""
    run = PipelineRun(tmp_path_factory.mktemp("pipeline"))
    run.run()
    return run
