"""Table I/O: logical names map to Delta paths, a failed write changes nothing, and a writer
records and rolls back only its own commits when another writer commits to the same table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from delta.tables import DeltaMergeBuilder, DeltaTable
from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrameWriter, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from parity.app import cli
from parity.core.catalog import (
    COMMIT_ID_KEY,
    RUN_ID_KEY,
    Catalog,
    RollbackOutcome,
    TableNotFoundError,
    TableVersion,
    content_digest,
    table_path,
)
from parity.core.conf import Settings
from parity.core.digests import digest_aggregates, digest_of, digest_rows
from parity.features.training_sets import manifest_versions
from tests.conftest import TEST_SPARK
from tests.support import CONF_DIR, set_args, storage_overrides


def _another_writer_commits(
    monkeypatch: pytest.MonkeyPatch,
    owner: type,
    method: str,
    commit: Callable[[], object],
    *,
    before: bool = False,
) -> None:
    """Make the next call of `owner.method` let another writer `commit` right after it (or just before)."""
    original = getattr(owner, method)

    def interleaved(self: object, *args: object, **kwargs: object) -> object:
        monkeypatch.setattr(owner, method, original)  # once: the other writer's own calls go straight through
        if before:
            commit()
        result = original(self, *args, **kwargs)
        if not before:
            commit()
        return result

    monkeypatch.setattr(owner, method, interleaved)


def _failing(spark: SparkSession):
    """A frame whose last rows raise while the write is under way."""
    return spark.range(0, 1000, numPartitions=4).withColumn(
        "v", F.when(F.col("id") < 990, F.col("id")).otherwise(F.raise_error(F.lit("boom")))
    )


def test_logical_names_map_under_storage_root(tmp_settings: Settings) -> None:
    assert (
        table_path(tmp_settings, "features.customer_activity")
        == f"{tmp_settings.storage.root}/features/customer_activity"
    )
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


def test_probes_record_nothing_and_a_stream_records_where_it_starts(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    Catalog(spark, tmp_settings).write(spark.range(3), "raw.numbers")
    catalog = Catalog(spark, tmp_settings)
    assert catalog.exists("raw.numbers") and catalog.version("raw.numbers") == 0
    assert catalog.schema("raw.numbers").fieldNames() == ["id"]
    assert catalog.snapshot("raw.numbers", 0).columns == ["id"]
    assert catalog.inputs == []  # a schema or existence check is not an input
    with pytest.raises(TableNotFoundError, match=r"raw\.missing"):
        catalog.schema("raw.missing")
    assert catalog.read_stream("raw.numbers", maxFilesPerTrigger="1").isStreaming
    assert catalog.inputs == [TableVersion("raw.numbers", 0)]


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
    outcomes = job.rollback()
    assert [(o.table, o.action, o.version) for o in outcomes] == [
        ("features.created", "removed", None),
        ("features.existing", "restored", 0),
    ]
    assertDataFrameEqual(setup.read("features.existing"), spark.range(3))
    assert not setup.exists("features.created")
    assert job.outputs == []


def test_content_digest_depends_on_rows_not_their_order(spark: SparkSession) -> None:
    rows = [(1, "a", 2.5), (2, None, 1.0), (3, "c", None)]
    schema = "id LONG, s STRING, x DOUBLE"
    digest = content_digest(spark.createDataFrame(rows, schema))
    assert digest == content_digest(spark.createDataFrame(list(reversed(rows)), schema).repartition(3))
    assert digest != content_digest(spark.createDataFrame([*rows[:2], (3, "c", 0.0)], schema))
    assert digest.startswith("3:") and digest_rows(digest) == 3
    assert digest_rows("raw.numbers@3") is None and digest_rows("") is None
    # Folded into another aggregation of the same frame, the digest is the same.
    frame = spark.createDataFrame(rows, schema)
    assert digest_of(frame.agg(F.max("id").alias("top"), *digest_aggregates(frame)).first()) == digest


def test_operation_metrics_are_read_from_the_commit_as_the_history_has_them(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    catalog = Catalog(spark, tmp_settings)
    catalog.write(spark.range(7), "raw.numbers")
    version = catalog.write(spark.range(5, 12), "raw.numbers", mode="append")
    from_log = catalog.operation_metrics("raw.numbers", version)
    history = (
        DeltaTable.forPath(spark, catalog.path("raw.numbers"))
        .history()
        .filter(f"version = {version}")
        .first()
    )
    assert history is not None
    assert from_log == {k: int(v) for k, v in history["operationMetrics"].items()}
    assert from_log["numOutputRows"] == 7


@pytest.mark.integration  # a scenario of builds, manifests and VACUUM (make test)
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
    args = [
        "vacuum",
        "--conf-dir",
        str(CONF_DIR),
        "--retain-hours",
        "0",
        *set_args(storage_overrides(Path(tmp_settings.storage.root).parent) + TEST_SPARK),
    ]
    assert cli.main(args) == 0
    assert "training.churn: vacuumed with 0 h retention" in capsys.readouterr().out

    # Without the guard the same VACUUM deletes version 0's files: the guard is what keeps it.
    assert catalog.vacuum("features.unguarded", retain_hours=0) == 0
    with pytest.raises(Exception, match=r"(?i)not found|does not exist|FileNotFound"):
        catalog.snapshot("features.unguarded", 0).collect()


def test_every_commit_carries_the_run_id_with_the_callers_metadata(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    catalog = Catalog(spark, tmp_settings, run_id="run-1")
    version = catalog.write(
        spark.range(3),
        "training.churn",
        commit_metadata={"manifest": [{"table": "raw.labels", "version": 4}]},
    )
    merged = catalog.merge(
        spark.range(5), "training.churn", keys=["id"], commit_metadata={"parity.build": {"watermark": None}}
    )

    written, upserted = (
        catalog.commit_metadata("training.churn", version),
        catalog.commit_metadata("training.churn", merged),
    )
    assert written["manifest"] == [{"table": "raw.labels", "version": 4}] and written[RUN_ID_KEY] == "run-1"
    assert upserted["parity.build"] == {"watermark": None} and upserted[RUN_ID_KEY] == "run-1"
    assert (
        written[COMMIT_ID_KEY] != upserted[COMMIT_ID_KEY]
    )  # each write its own: that is how it finds its version
    assert catalog.latest_commit_metadata("training.churn", "manifest") == written
    assert manifest_versions(catalog, "training.churn") == {"raw.labels": {4}}
    assert len(Catalog(spark, tmp_settings).run_id) == 32  # a catalog made without a run id draws one


def test_a_write_records_its_own_commit_when_another_writer_commits_after_it(
    spark: SparkSession, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = Catalog(spark, tmp_settings), Catalog(spark, tmp_settings)
    theirs.write(spark.range(3), "features.shared")
    _another_writer_commits(
        monkeypatch,
        DataFrameWriter,
        "save",
        lambda: theirs.write(spark.range(10, 12), "features.shared", mode="append"),
    )

    assert ours.write(spark.range(5, 7), "features.shared", mode="append") == 1  # not 2, the newest
    assert ours.outputs == [TableVersion("features.shared", 1)]
    assert theirs.outputs == [TableVersion("features.shared", 0), TableVersion("features.shared", 2)]


def test_a_merge_records_its_own_commit_when_another_writer_commits_after_it(
    spark: SparkSession, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = Catalog(spark, tmp_settings), Catalog(spark, tmp_settings)
    theirs.write(spark.range(3), "features.shared")
    _another_writer_commits(
        monkeypatch,
        DeltaMergeBuilder,
        "execute",
        lambda: theirs.write(spark.range(10, 12), "features.shared", mode="append"),
    )

    assert ours.merge(spark.range(2, 5), "features.shared", keys=["id"]) == 1
    assert ours.outputs == [TableVersion("features.shared", 1)]
    assert (
        ours.merge(spark.range(2, 5), "features.shared", keys=["id"]) == 2
    )  # nothing differs: no commit, the version compared with
    assert ours.outputs == [TableVersion("features.shared", 1)]


# Several writers on Delta (make test); the inner loop keeps RunTransaction's unit test (test_storage.py).
@pytest.mark.integration
def test_rollback_keeps_a_commit_another_writer_made_before_its_own(
    spark: SparkSession, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = Catalog(spark, tmp_settings), Catalog(spark, tmp_settings)
    theirs.write(spark.range(3), "features.shared")
    _another_writer_commits(
        monkeypatch,
        DataFrameWriter,
        "save",
        lambda: theirs.write(spark.range(10, 12), "features.shared", mode="append"),
        before=True,
    )
    assert ours.write(spark.range(100), "features.shared") == 2  # read version 0; theirs landed as 1 first

    assert ours.rollback() == [RollbackOutcome("features.shared", "restored", 1, own=(2,))]
    assertDataFrameEqual(theirs.read("features.shared"), spark.range(3).union(spark.range(10, 12)))


# Several writers on Delta (make test); the inner loop keeps RunTransaction's unit test (test_storage.py).
@pytest.mark.integration
def test_rollback_leaves_a_table_another_writer_committed_to_after_it(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    setup, ours, theirs = (
        Catalog(spark, tmp_settings),
        Catalog(spark, tmp_settings),
        Catalog(spark, tmp_settings),
    )
    setup.write(spark.range(3), "features.shared")
    setup.write(spark.range(3), "features.alone")
    ours.write(spark.range(5, 7), "features.shared", mode="append")  # 1
    ours.write(spark.range(100), "features.alone")
    theirs.write(spark.range(10, 12), "features.shared", mode="append")  # 2
    ours.write(spark.range(20, 22), "features.shared", mode="append")  # 3, between theirs and the newest

    outcomes = ours.rollback()

    assert outcomes == [
        RollbackOutcome("features.alone", "restored", 0, own=(1,)),
        RollbackOutcome("features.shared", "left", 3, own=(1, 3), others=(2,)),
    ]
    assert (
        outcomes[1].describe()
        == "left features.shared at version 3: another writer committed version 2 after this run's versions 1, 3"
    )
    assert setup.version("features.shared") == 3  # no RESTORE: the other writer's rows stay
    assertDataFrameEqual(setup.read("features.alone"), spark.range(3))
    assert ours.outputs == [
        TableVersion("features.shared", 1),
        TableVersion("features.shared", 3),
    ]  # still in the table


# Several writers on Delta (make test); the inner loop keeps RunTransaction's unit test (test_storage.py).
@pytest.mark.integration
def test_a_rollback_racing_another_writer_puts_that_writers_commit_back(
    spark: SparkSession, tmp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours, theirs = Catalog(spark, tmp_settings), Catalog(spark, tmp_settings)
    theirs.write(spark.range(3), "features.shared")
    ours.write(spark.range(5, 7), "features.shared", mode="append")  # 1
    # Between the rollback's look at the history and its RESTORE, the other writer commits 2.
    _another_writer_commits(
        monkeypatch,
        DeltaTable,
        "restoreToVersion",
        lambda: theirs.write(spark.range(10, 12), "features.shared", mode="append"),
        before=True,
    )

    assert ours.rollback() == [RollbackOutcome("features.shared", "left", 4, own=(1,), others=(2,))]
    # 3 is the RESTORE that undid 2 as well; 4 restores 2, so no commit of the other writer is lost.
    assertDataFrameEqual(theirs.read("features.shared"), theirs.snapshot("features.shared", 2))


def test_the_build_state_after_a_rollback_is_the_restored_versions(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    setup, job = Catalog(spark, tmp_settings), Catalog(spark, tmp_settings)
    setup.write(
        spark.range(3), "features.built", commit_metadata={"parity.build": {"watermark": "2026-01-01"}}
    )
    job.write(spark.range(5), "features.built", commit_metadata={"parity.build": {"watermark": "2026-02-01"}})
    job.rollback()
    assert setup.latest_commit_metadata("features.built", "parity.build")["parity.build"] == {
        "watermark": "2026-01-01"
    }
