"""Feature tables are bitemporal: each row carries when it landed and when it was superseded, so
as-known-at training sets need nothing VACUUM or log cleanup can delete, late rows never leak
into the past, and a full refresh keeps the landing times it can prove."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from parity.app import cli
from parity.core.catalog import CHANGE_DATA_FEED, Catalog
from parity.core.conf import Settings, load_settings
from parity.core.versioned import LANDED_AT, LANDED_AT_KEY, SUPERSEDED_AT, current_rows
from parity.features import BuildOptions, DeclarationChangedError, build_feature_set
from parity.features.asof import assemble_features, read_feature_lookups
from parity.features.training_sets import build_training_set, manifest_versions
from tests.conftest import TEST_SPARK
from tests.support import set_args, storage_overrides
from tests.test_declared_models import merchant_conf
from tests.test_feature_sets import TRANSACTIONS

TS = dt.datetime
MODEL = {
    "name": "known_refunds",
    "description": "Refunds per merchant, trained on features as known at each label's time.",
    "task": "regression",
    "labels": {
        "table": "raw.known_labels",
        "keys": {"merchant": "string"},
        "time": "label_ts",
        "label": {"name": "refunds", "type": "double"},
    },
    "features": [{"feature_set": "merchant_activity", "entity": {"merchant_id": "merchant"}}],
    "sweep": "till_gbr",
    "registered_model": "known_refunds",
    "training": {"as_known_at": True},
    "scoring": {"population": {"table": "raw.known_labels"}},
}
SCHEMA = "id LONG, v STRING, day DATE"


def test_a_versioned_merge_supersedes_what_changes_and_rewrites_nothing_else(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    catalog = Catalog(spark, tmp_settings)
    rows = [(1, "a", dt.date(2026, 5, 1)), (2, "b", dt.date(2026, 5, 1)), (3, "c", dt.date(2026, 5, 1))]
    created = catalog.merge(spark.createDataFrame(rows, SCHEMA), "features.t", keys=["id"], versioned=True)
    # 1 unchanged, 2 changed, 3 gone from the scope, 4 new.
    after = [(1, "a", dt.date(2026, 5, 1)), (2, "B", dt.date(2026, 5, 1)), (4, "d", dt.date(2026, 5, 1))]
    version = catalog.merge(
        spark.createDataFrame(after, SCHEMA),
        "features.t",
        keys=["id"],
        scope="t.day = DATE '2026-05-01'",
        versioned=True,
    )
    first, second = (
        dt.datetime.fromisoformat(str(catalog.commit_metadata("features.t", v)[LANDED_AT_KEY]))
        for v in (created, version)
    )
    assert first < second

    table = catalog.read("features.t")
    expected = [
        (1, "a", dt.date(2026, 5, 1), first, None),
        (2, "b", dt.date(2026, 5, 1), first, second),  # superseded, not overwritten
        (2, "B", dt.date(2026, 5, 1), second, None),
        (3, "c", dt.date(2026, 5, 1), first, second),  # left the scope: superseded with no successor
        (4, "d", dt.date(2026, 5, 1), second, None),
    ]
    assertDataFrameEqual(
        table, spark.createDataFrame(expected, f"{SCHEMA}, {LANDED_AT} TIMESTAMP, {SUPERSEDED_AT} TIMESTAMP")
    )
    assertDataFrameEqual(current_rows(table), spark.createDataFrame(after, SCHEMA))
    assert (
        catalog.operation_metrics("features.t", version)["numTargetRowsInserted"] == 2
    )  # 2's new version and 4
    # The same rows again: nothing differs, no commit.
    assert (
        catalog.merge(
            spark.createDataFrame(after, SCHEMA),
            "features.t",
            keys=["id"],
            scope="t.day = DATE '2026-05-01'",
            versioned=True,
        )
        == version
    )

    # Written whole again (a full refresh): rows equal to a current row keep their landing time.
    again = [(1, "a", dt.date(2026, 5, 1)), (2, "B", dt.date(2026, 5, 1)), (4, "D", dt.date(2026, 5, 1))]
    refreshed = catalog.merge(
        spark.createDataFrame(again, SCHEMA), "features.t", keys=["id"], replace=True, versioned=True
    )
    third = dt.datetime.fromisoformat(str(catalog.commit_metadata("features.t", refreshed)[LANDED_AT_KEY]))
    landed = {r.id: r[LANDED_AT] for r in catalog.read("features.t").collect()}
    assert landed == {1: first, 2: second, 4: third}
    # ...unless the columns changed: then nothing is proven.
    retyped = spark.createDataFrame(again, SCHEMA).withColumn("v", F.length("v"))
    catalog.merge(retyped, "features.t", keys=["id"], replace=True, versioned=True)
    assert catalog.read("features.t").filter(F.col(LANDED_AT) <= F.lit(third)).isEmpty()


@pytest.fixture()
def project(tmp_path: Path) -> Settings:
    return load_settings(merchant_conf(tmp_path, MODEL), overrides=storage_overrides(tmp_path) + TEST_SPARK)


def _transactions(days: range, extra: float = 0.0) -> list[tuple]:
    return [
        (f"m{m}", TS(2026, 3, 1) + dt.timedelta(days=d, hours=m), float(10 * m + d) + extra, None, 1)
        for m in range(1, 4)
        for d in days
    ]


@pytest.mark.integration  # a scenario of several builds (make test; the inner loop keeps the unit tests)
def test_as_known_at_training_sets_survive_vacuum_and_never_see_late_rows(
    spark: SparkSession, project: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, catalog = project, Catalog(spark, project)
    decl, model = settings.feature_sets["merchant_activity"], settings.model("known_refunds")
    catalog.write(spark.createDataFrame(_transactions(range(0, 10)), TRANSACTIONS), "raw.transactions")
    first = build_feature_set(catalog, settings, decl)
    # Late transactions for days already built (within the lookback) change rows that had landed.
    catalog.write(
        spark.createDataFrame(_transactions(range(9, 10), extra=0.5), TRANSACTIONS),
        "raw.transactions",
        mode="append",
    )
    second = build_feature_set(catalog, settings, decl)
    assert second.merge["numTargetRowsUpdated"] > 0  # rows superseded, their new versions inserted
    landed = {
        v: catalog.snapshot(decl.table, v).agg(F.max(LANDED_AT)).first()[0]
        for v in (first.version, second.version)
    }
    assert landed[first.version] < landed[second.version]

    # Labels at, before and between the landings: each sees the table exactly as it was then.
    times = [
        landed[first.version] - dt.timedelta(microseconds=1),
        landed[first.version],
        landed[second.version],
    ]
    labels = [(f"m{m}", t, float(m)) for m in range(1, 4) for t in times]
    catalog.write(
        spark.createDataFrame(labels, "merchant STRING, label_ts TIMESTAMP, refunds DOUBLE"),
        "raw.known_labels",
    )
    built = build_training_set(catalog, settings, model)
    training = catalog.read(model.training_set())
    assert (
        training.filter(F.col("label_ts") == F.lit(times[0]))
        .filter("merchant_activity_as_of IS NOT NULL")
        .isEmpty()
    )
    for version, at in ((first.version, times[1]), (second.version, times[2])):
        (pinned,) = read_feature_lookups(
            Catalog(spark, settings), [decl], versions={decl.table: version}, joins=None
        )
        spine = (
            training.filter(F.col("label_ts") == F.lit(at))
            .select("merchant", "label_ts", "refunds")
            .withColumnRenamed("merchant", "merchant_id")
        )
        then = assemble_features(spine, [pinned], spine_ts="label_ts").withColumnRenamed(
            "merchant_id", "merchant"
        )
        assertDataFrameEqual(training.filter(F.col("label_ts") == F.lit(at)), then.select(*training.columns))

    # A third build moves on; then every table is vacuumed with zero retention, as `parity vacuum` does.
    catalog.write(
        spark.createDataFrame(_transactions(range(10, 12)), TRANSACTIONS), "raw.transactions", mode="append"
    )
    build_feature_set(catalog, settings, decl)
    assert manifest_versions(catalog, model.training_set())[decl.table] == {second.version}
    assert (
        cli.main(
            [
                "vacuum",
                "--conf-dir",
                str(Path(settings.project_root) / "conf"),
                "--retain-hours",
                "0",
                *set_args(_overrides(settings)),
            ]
        )
        == 0
    )
    assert f"{decl.table}: vacuumed with" in capsys.readouterr().out
    assert _property(catalog, decl.table, CHANGE_DATA_FEED) is None  # no change data feed is needed

    # A new as-known-at training set builds from the rows themselves, and the old one rebuilds
    # from its manifest to the same digest.
    again = build_training_set(catalog, settings, model)
    assert again.counts["rows.out"] == built.counts["rows.out"]
    rebuilt = build_training_set(catalog, settings, model, rebuild=built.version)
    assert rebuilt.digest == built.digest


@pytest.mark.integration  # a scenario of several builds (make test; the inner loop keeps the unit tests)
def test_a_full_refresh_keeps_the_landing_times_it_can_prove_and_says_what_it_reset(
    spark: SparkSession, project: Settings
) -> None:
    settings, catalog = project, Catalog(spark, project)
    decl = settings.feature_sets["merchant_activity"]
    catalog.write(spark.createDataFrame(_transactions(range(0, 6)), TRANSACTIONS), "raw.transactions")
    first = build_feature_set(catalog, settings, decl)
    catalog.write(
        spark.createDataFrame(_transactions(range(5, 6), extra=0.25), TRANSACTIONS),
        "raw.transactions",
        mode="append",
    )
    build_feature_set(catalog, settings, decl)  # supersedes the rows of the last days
    before = catalog.read(decl.table)
    superseded = before.filter(F.col(SUPERSEDED_AT).isNotNull()).count()
    assert superseded > 0

    refreshed = build_feature_set(catalog, settings, decl, BuildOptions(full_refresh=True))
    current = before.filter(F.col(SUPERSEDED_AT).isNull())
    assert refreshed.landing == {"kept": current.count(), "reset": 0, "superseded_dropped": superseded}
    assertDataFrameEqual(
        catalog.read(decl.table), current
    )  # the same rows, each with the time it first landed
    assert first.version < refreshed.version

    # One merchant's amounts change at the source: its rows land now, the others keep their times.
    source = catalog.read("raw.transactions").localCheckpoint()
    catalog.write(
        source.withColumn(
            "amount", F.col("amount") + F.when(F.col("merchant_id") == "m1", 1.0).otherwise(0.0)
        ),
        "raw.transactions",
    )
    changed = build_feature_set(catalog, settings, decl, BuildOptions(full_refresh=True))
    after = current_rows(catalog.read(decl.table))
    m1 = after.filter("merchant_id = 'm1'").count()
    assert (changed.landing["kept"], changed.landing["reset"]) == (after.count() - m1, m1)
    assert changed.summary()["landing"] == changed.landing
    landed_now = catalog.read(decl.table).filter(
        F.col(LANDED_AT) > F.lit(current.agg(F.max(LANDED_AT)).first()[0])
    )
    assert {r.merchant_id for r in landed_now.collect()} == {"m1"}


def _property(catalog: Catalog, table: str, key: str) -> str | None:
    detail = catalog.spark.sql(f"DESCRIBE DETAIL delta.`{catalog.path(table)}`").first()
    return None if detail is None else detail["properties"].get(key)


def _overrides(settings: Settings) -> list[str]:
    return storage_overrides(Path(settings.storage.root).parent) + TEST_SPARK


@pytest.mark.integration  # a scenario of several builds (make test; the inner loop keeps the unit tests)
def test_a_table_of_the_older_layout_is_read_through_its_change_feed_and_refreshed_keeping_what_it_proves(
    spark: SparkSession, project: Settings
) -> None:
    settings, catalog = project, Catalog(spark, project)
    decl = settings.feature_sets["merchant_activity"]
    catalog.write(spark.createDataFrame(_transactions(range(0, 4)), TRANSACTIONS), "raw.transactions")
    build_feature_set(catalog, settings, decl)
    # The same rows as a build of the older layout wrote them: no version columns, a change data feed.
    old = current_rows(catalog.read(decl.table)).localCheckpoint()
    shutil.rmtree(catalog.path(decl.table))
    catalog.write(old, decl.table, partition_by=["feature_date"], properties={CHANGE_DATA_FEED: "true"})
    written_at = catalog.spark.sql(f"DESCRIBE HISTORY delta.`{catalog.path(decl.table)}`").first()[
        "timestamp"
    ]

    (lookup,) = read_feature_lookups(catalog, [decl], as_known_at=True)
    assert lookup.landed_at == LANDED_AT and {r[LANDED_AT] for r in lookup.frame.collect()} == {written_at}
    with pytest.raises(
        DeclarationChangedError,
        match=r"was built before feature rows kept their landing times .* rebuild it with full_refresh=True",
    ):
        build_feature_set(catalog, settings, decl)
    refreshed = build_feature_set(catalog, settings, decl, BuildOptions(full_refresh=True))
    assert (refreshed.landing["kept"], refreshed.landing["reset"]) == (
        old.count(),
        0,
    )  # the change feed proves every row
    assert {r[LANDED_AT] for r in catalog.read(decl.table).collect()} == {written_at}
