"""Table I/O: logical names map to Delta paths, and a failed write changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from parity.app import cli
from parity.core.catalog import Catalog, TableNotFoundError, content_digest, table_path
from parity.core.conf import Settings
from parity.features.training_sets import manifest_versions
from tests.conftest import TEST_SPARK
from tests.support import CONF_DIR, set_args, storage_overrides


def _failing(spark: SparkSession):
    """A frame whose last rows raise while the write is under way."""
    return spark.range(0, 1000, numPartitions=4).withColumn(
        "v", F.when(F.col("id") < 990, F.col("id")).otherwise(F.raise_error(F.lit("boom")))
    )


def test_logical_names_map_under_storage_root(tmp_settings: Settings) -> None:
    assert table_path(tmp_settings, "features.customer_activity") == f"{tmp_settings.storage.root}/features/customer_activity"
    with pytest.raises(ValueError, match="zones"):
        table_path(tmp_settings, "scratch.thing")


def test_reads_are_pinned_and_recorded(spark: SparkSession, tmp_settings: Settings) -> None:
    catalog = Catalog(spark, tmp_settings)
    assert catalog.write(spark.range(3), "raw.numbers") == 0
    assert catalog.write(spark.range(5), "raw.numbers") == 1
    assert catalog.read("raw.numbers", version=0).count() == 3
    assert catalog.read("raw.numbers").count() == 5
    assert [(t.table, t.version) for t in catalog.inputs] == [("raw.numbers", 0), ("raw.numbers", 1)]
    assert [(t.table, t.version) for t in catalog.outputs] == [("raw.numbers", 0), ("raw.numbers", 1)]
    with pytest.raises(TableNotFoundError, match=r"raw\.missing"):
        catalog.read("raw.missing")


def test_a_failed_write_leaves_the_table_as_it_was(spark: SparkSession, tmp_settings: Settings) -> None:
    catalog = Catalog(spark, tmp_settings)
    before = spark.range(10).withColumn("v", F.col("id"))
    catalog.write(before, "features.guarded")
    with pytest.raises((PySparkException, Py4JJavaError), match="boom"):
        catalog.write(_failing(spark), "features.guarded")
    assert catalog.version("features.guarded") == 0
    assertDataFrameEqual(catalog.read("features.guarded"), before)


def test_a_failed_first_write_creates_no_table(spark: SparkSession, tmp_settings: Settings) -> None:
    catalog = Catalog(spark, tmp_settings)
    with pytest.raises((PySparkException, Py4JJavaError), match="boom"):
        catalog.write(_failing(spark), "features.never")
    assert not catalog.exists("features.never")
    assert catalog.outputs == []


def test_rollback_puts_every_written_table_back(spark: SparkSession, tmp_settings: Settings) -> None:
    setup = Catalog(spark, tmp_settings)
    setup.write(spark.range(3), "features.existing")
    job = Catalog(spark, tmp_settings)
    job.write(spark.range(100), "features.existing")
    job.write(spark.range(7), "features.existing", mode="append")
    job.write(spark.range(5), "features.created")
    assert job.rollback() == ["features.created", "features.existing"]
    assertDataFrameEqual(setup.read("features.existing"), spark.range(3))
    assert not setup.exists("features.created")
    assert job.outputs == []


def test_content_digest_depends_on_rows_not_their_order(spark: SparkSession) -> None:
    rows = [(1, "a", 2.5), (2, None, 1.0), (3, "c", None)]
    schema = "id LONG, s STRING, x DOUBLE"
    digest = content_digest(spark.createDataFrame(rows, schema))
    assert digest == content_digest(spark.createDataFrame(list(reversed(rows)), schema).repartition(3))
    assert digest != content_digest(spark.createDataFrame([*rows[:2], (3, "c", 0.0)], schema))
    assert digest.startswith("3:")


def test_vacuum_keeps_every_version_a_live_manifest_names(
    spark: SparkSession, tmp_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = Catalog(spark, tmp_settings)
    catalog.write(spark.range(5), "features.guarded")  # version 0, named by a training set's manifest
    pinned = catalog.manifest_entry("features.guarded", 0)
    catalog.write(spark.range(100, 103), "training.churn", commit_metadata={"manifest": [pinned]})
    catalog.write(spark.range(7), "features.guarded")  # version 1 replaces every file of version 0
    catalog.write(spark.range(9), "features.unguarded")
    catalog.write(spark.range(2), "features.unguarded")

    protect = manifest_versions(catalog, "training.churn")
    assert protect == {"features.guarded": {0}}
    hours = catalog.vacuum("features.guarded", retain_hours=0, protect=protect["features.guarded"])
    assert hours >= 1  # the guard raised the retention to cover version 0
    assert catalog.manifest_entry("features.guarded", 0) == pinned  # still readable, the same rows

    # The command does the same for the tables the conf names (here: the training set).
    args = ["vacuum", "--conf-dir", str(CONF_DIR), "--retain-hours", "0", *set_args(storage_overrides(Path(tmp_settings.storage.root).parent) + TEST_SPARK)]
    assert cli.main(args) == 0
    assert "training.churn: vacuumed with 0 h retention" in capsys.readouterr().out

    # Without the guard the same VACUUM deletes version 0's files: the guard is what keeps it.
    assert catalog.vacuum("features.unguarded", retain_hours=0) == 0
    with pytest.raises(Exception, match=r"(?i)not found|does not exist|FileNotFound"):
        catalog.snapshot("features.unguarded", 0).collect()
