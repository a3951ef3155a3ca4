"""Snapshot feature sets: a source without event times (store attributes) is stamped by each
build, writes a row only where an entity's values changed, and joins as of every label's time
like any other set: a label never sees an attribute a later build first saw."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from parity.core.catalog import Catalog
from parity.core.conf import FeatureSetDecl, Settings, SourceQualityConf
from parity.core.versioned import current_rows
from parity.features import BuildOptions, build_declared_sets, build_feature_set
from parity.features.asof import assemble_features, read_feature_lookups
from parity.features.snapshots import changed_rows, snapshot_quality

TS = dt.datetime
STORES = "store_id STRING, region STRING, floor_m2 DOUBLE"
SPINE = "label_id INT, store_id STRING, label_ts TIMESTAMP"
STORE_PROFILE = FeatureSetDecl.model_validate(
    {
        "name": "store_profile",
        "description": "Store attributes, as each build saw them.",
        "table": "features.store_profile",
        "source": "raw.stores",
        "entity": ["store_id"],
        "kind": "snapshot",
        "transforms": [
            {
                "fn": "parity.transforms.with_buckets",
                "params": {"column": "floor_m2", "boundaries": [500], "output": "large"},
            }
        ],
        "features": [
            {"name": "region", "type": "string", "description": "Region."},
            {"name": "floor_m2", "type": "double", "description": "Floor area."},
            {"name": "large", "type": "int", "description": "1 from 500 m2."},
        ],
    }
)
T1, T2, T3 = TS(2026, 6, 1, 8), TS(2026, 6, 2, 8), TS(2026, 6, 3, 8)


def _labels(spark: SparkSession, catalog: Catalog, times: list[tuple[str, dt.datetime]]):  # type: ignore[no-untyped-def]
    spine = spark.createDataFrame([(i, store, at) for i, (store, at) in enumerate(times)], SPINE)
    rows = assemble_features(spine, read_feature_lookups(catalog, [STORE_PROFILE]), spine_ts="label_ts")
    return {r.label_id: (r.region, r.floor_m2, r.large) for r in rows.collect()}


def test_a_snapshot_writes_only_the_entities_whose_values_changed(spark: SparkSession) -> None:
    """The rule each snapshot build applies, on inline rows: against each entity's newest row,
    changed and unseen entities get a row at the build's time, unchanged ones none."""
    held = spark.createDataFrame(
        [
            ("a", T1, "north", 300.0, 0),
            ("a", T2, "west", 300.0, 0),
            ("b", T1, "south", 900.0, 1),
            ("c", T1, None, 5.0, 0),
        ],
        "store_id STRING, feature_ts TIMESTAMP, region STRING, floor_m2 DOUBLE, large INT",
    )
    snapshot = spark.createDataFrame(
        [
            ("a", T3, "west", 300.0, 0),
            ("b", T3, "south", 950.0, 1),
            ("c", T3, None, 5.0, 0),
            ("d", T3, "east", 10.0, 0),
        ],
        "store_id STRING, feature_ts TIMESTAMP, region STRING, floor_m2 DOUBLE, large INT",
    )
    # a: as its newest row (its older one differs); b: floor area changed; c: unchanged, nulls
    # included; d: not seen before.
    changed = changed_rows(STORE_PROFILE, snapshot, held)
    assertDataFrameEqual(changed, snapshot.filter("store_id IN ('b', 'd')"))
    quality = snapshot_quality(STORE_PROFILE, SourceQualityConf())
    assert [(e.rule, e.columns) for e in quality.expectations] == [("unique", ["store_id"])]  # type: ignore[union-attr]
    assert snapshot_quality(STORE_PROFILE, quality) == quality  # declared once


@pytest.mark.integration  # a scenario of several builds (make test; the inner loop keeps the unit tests)
def test_a_changed_attribute_reaches_only_labels_after_the_build_that_saw_it(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    catalog = Catalog(spark, tmp_settings)
    catalog.write(
        spark.createDataFrame([("a", "north", 300.0), ("b", "south", 900.0), ("b", "east", 10.0)], STORES),
        "raw.stores",
    )
    first = build_feature_set(catalog, tmp_settings, STORE_PROFILE, BuildOptions(now=T1))
    assert first.range.reason == "first build" and first.watermark == T1
    assert first.counts == {
        "in": 3,
        "out": 2,
        "quarantined": 1,
        "rows_written": 2,
    }  # b twice in one snapshot: one quarantined

    fixed = [("a", "north", 300.0), ("b", "south", 900.0)]
    catalog.write(spark.createDataFrame(fixed, STORES), "raw.stores")
    second = build_feature_set(
        catalog, tmp_settings, STORE_PROFILE, BuildOptions(now=T2)
    )  # b changed; a did not: no row for it
    assert second.counts["rows_written"] == 1
    catalog.write(spark.createDataFrame(fixed, STORES), "raw.stores")  # a new source version, the same rows
    unchanged = build_feature_set(
        catalog, tmp_settings, STORE_PROFILE, BuildOptions(now=T2 + dt.timedelta(hours=1))
    )
    assert (unchanged.version, unchanged.counts["rows_written"]) == (second.version, 0)  # no commit at all
    catalog.write(spark.createDataFrame([("a", "west", 800.0), ("b", "south", 900.0)], STORES), "raw.stores")
    third = build_feature_set(catalog, tmp_settings, STORE_PROFILE, BuildOptions(now=T3))
    assert (
        third.counts["rows_written"] == 1 and third.range.start == T2
    )  # the build that committed nothing recorded nothing

    table = current_rows(catalog.read(STORE_PROFILE.table)).select("store_id", "feature_ts", "region")
    expected = [("a", T1, "north"), ("b", T1, "east"), ("b", T2, "south"), ("a", T3, "west")]
    assertDataFrameEqual(
        table, spark.createDataFrame(expected, "store_id STRING, feature_ts TIMESTAMP, region STRING")
    )
    seen = _labels(
        spark,
        catalog,
        [
            ("a", T1 - dt.timedelta(hours=1)),
            ("a", T1),
            ("a", T3 - dt.timedelta(seconds=1)),
            ("a", T3),
            ("b", T2 - dt.timedelta(hours=1)),
            ("b", T3 + dt.timedelta(days=9)),
        ],
    )
    assert seen == {
        0: (None, None, None),  # before the first build: nothing was known
        1: ("north", 300.0, 0),
        2: ("north", 300.0, 0),  # the change is not known before the build that saw it
        3: ("west", 800.0, 1),
        4: ("east", 10.0, 0),  # the duplicate the unique rule kept, until the build that saw the fix
        5: ("south", 900.0, 1),
    }
    with pytest.raises(ValueError, match="store_profile is a snapshot: it has no past to backfill"):
        build_feature_set(catalog, tmp_settings, STORE_PROFILE, BuildOptions(backfill=(T1.date(), T1.date())))
    catalog.write(
        catalog.read("raw.stores").localCheckpoint(), "raw.stores"
    )  # a new source version: not up to date
    with pytest.raises(ValueError, match="is not after its last build's"):  # stamps only move forward
        build_feature_set(catalog, tmp_settings, STORE_PROFILE, BuildOptions(now=T1))
    with pytest.raises(
        ValueError,
        match="is a snapshot: its rows are written only when values change, so max_age does not apply",
    ):
        FeatureSetDecl.model_validate({**STORE_PROFILE.model_dump(mode="json"), "max_age": "30d"})


# A scenario of builds (make test); the inner loop keeps decide_build's unit tests (test_build_plan.py).
@pytest.mark.integration
def test_assume_valid_since_stamps_the_first_build_on_the_users_word(
    spark: SparkSession, tmp_settings: Settings
) -> None:
    catalog = Catalog(spark, tmp_settings)
    catalog.write(spark.createDataFrame([("a", "north", 300.0)], STORES), "raw.stores")
    with pytest.raises(ValueError, match="applies to snapshot feature sets, and none is being built"):
        build_declared_sets(
            catalog, tmp_settings, ["customer_profile"], BuildOptions(assume_valid_since=dt.date(2026, 1, 1))
        )
    with pytest.raises(
        ValueError, match=r"is after this build .* values cannot be vouched for in the future"
    ):
        build_feature_set(
            catalog,
            tmp_settings,
            STORE_PROFILE,
            BuildOptions(now=T1, assume_valid_since=T1.date() + dt.timedelta(days=1)),
        )
    vouched = build_feature_set(
        catalog, tmp_settings, STORE_PROFILE, BuildOptions(now=T1, assume_valid_since=dt.date(2026, 1, 1))
    )
    assert vouched.summary()["assumed_valid_since"] == "2026-01-01"
    assert (
        catalog.commit_metadata(STORE_PROFILE.table, vouched.version)["parity.build"]["assumed_valid_since"]
        == "2026-01-01"
    )  # type: ignore[index]
    assert _labels(spark, catalog, [("a", TS(2025, 12, 31)), ("a", TS(2026, 1, 1))]) == {
        0: (None, None, None),
        1: ("north", 300.0, 0),
    }
    with pytest.raises(
        ValueError,
        match=r"stamps the first build of features\.store_profile, which exists already; add full_refresh=True",
    ):
        build_feature_set(
            catalog, tmp_settings, STORE_PROFILE, BuildOptions(now=T2, assume_valid_since=dt.date(2026, 1, 1))
        )
    assert (
        build_feature_set(
            catalog,
            tmp_settings,
            STORE_PROFILE,
            BuildOptions(now=T2, assume_valid_since=dt.date(2026, 2, 1), full_refresh=True),
        ).counts["rows_written"]
        == 1
    )
    assert current_rows(catalog.read(STORE_PROFILE.table)).select(F.max("feature_ts")).first()[0] == TS(
        2026, 2, 1
    )
