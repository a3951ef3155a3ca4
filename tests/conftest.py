"""One session-scoped SparkSession for every test, and one small pipeline run shared by the
end-to-end, cluster and notebook tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from parity.core.conf import Settings, load_settings
from parity.core.session import get_spark
from tests.support import CONF_DIR, SMALL_DATA, JobRun, storage_overrides, submit

TEST_SPARK = [
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "spark.conf.spark.ui.enabled=false",
    "spark.conf.spark.databricks.delta.snapshotPartitions=1",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the pipeline run (five spark-submit jobs) is an integration test."""
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
    """The five jobs, run once through spark-submit.sh on small data into one folder."""

    JOBS = ("generate_data", "build_features", "build_training_set", "train", "score")

    def __init__(self, root: Path) -> None:
        self.root = root
        self.overrides = storage_overrides(root) + SMALL_DATA
        self.runs: dict[str, JobRun] = {}

    def run(self) -> None:
        for job in self.JOBS:
            result = submit(job, self.overrides)
            self.runs[job] = result
            if result.returncode != 0:
                raise AssertionError(f"{job} failed ({result.returncode}):\n{result.stderr[-4000:]}")

    def summary(self, job: str) -> dict:
        return self.runs[job].summary

    def settings(self) -> Settings:
        return load_settings(CONF_DIR, overrides=self.overrides)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    run = PipelineRun(tmp_path_factory.mktemp("pipeline"))
    run.run()
    return run
