"""Incremental builds: daily increments give the table a full build gives, a rerun over the same
source version reads and writes nothing, a backfill rebuilds its days only, and a changed
declaration is never mixed in silently."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from parity.core.catalog import Catalog
from parity.core.conf import DataConf, FeatureSetDecl, Settings, load_settings
from parity.core.durations import floor_to_grain, grain_end
from parity.core.versioned import current_rows
from parity.demo import sample_data
from parity.features import BuildOptions, DeclarationChangedError, build_feature_set
from parity.features.build import plan_feature_build
from parity.features.incremental import (
    BUILD_STATE_KEY,
    FEATURE_DATE,
    BuildInputs,
    BuildState,
    plan_build,
    preview_feature_set,
)
from parity.features.sources import required_columns, validate_source
from tests.conftest import TEST_SPARK
from tests.support import CONF_DIR, storage_overrides

ACTIVITY = "customer_activity"


def _settings(root: Path, *extra: str) -> Settings:
    return load_settings(CONF_DIR, overrides=storage_overrides(root) + TEST_SPARK + list(extra))


@pytest.fixture(scope="module")
def events(spark: SparkSession) -> DataFrame:
    conf = DataConf(customers=25, days=60, bad_row_rate=0.05)
    return sample_data.generate_events(spark, conf).localCheckpoint()


@pytest.fixture(scope="module")
def full_build(spark: SparkSession, events: DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder whose raw.events holds every event, built once in full. Tests compare
    against it as it is, or copy it (`_copy`) to change it."""
    root = tmp_path_factory.mktemp("full_build")
    settings = _settings(root)
    Catalog(spark, settings).write(events, "raw.events")
    assert _build(spark, settings).range.reason == "first build"
    return root


def _copy(full_build: Path, tmp_path: Path) -> Settings:
    """A copy of the fully built project (Delta tables hold relative paths, so a copy is a table of its own)."""
    shutil.copytree(full_build, tmp_path / "copy")
    return _settings(tmp_path / "copy")


def _build(spark: SparkSession, settings: Settings, **kwargs):  # type: ignore[no-untyped-def]
    return build_feature_set(
        Catalog(spark, settings), settings, settings.feature_sets[ACTIVITY], BuildOptions(**kwargs)
    )


def _table(spark: SparkSession, settings: Settings, name: str) -> DataFrame:
    """A table's rows as of now (a feature table's current rows, without their landing times)."""
    return current_rows(Catalog(spark, settings).read(name))


@pytest.mark.integration  # a scenario of several builds (make test; the inner loop keeps the unit tests)
def test_daily_increments_with_a_late_event_equal_one_full_build(
    spark: SparkSession, events: DataFrame, full_build: Path, tmp_path: Path
) -> None:
    last = events.agg(F.max(F.to_date("event_ts"))).first()[0]
    day = F.to_date("event_ts")
    late = (day == F.lit(last - dt.timedelta(days=2))) & (F.col("customer_id") % 5 == 0)  # arrives a day late
    incremental = _settings(tmp_path / "inc")
    catalog = Catalog(spark, incremental)
    catalog.write(
        events.filter((day < F.lit(last - dt.timedelta(days=2))) | F.col("event_ts").isNull()), "raw.events"
    )
    first = _build(spark, incremental)
    assert first.range.reason == "first build"
    for since in (last - dt.timedelta(days=2 - i) for i in range(3)):  # one day at a time, up to the last
        batch = events.filter((day == F.lit(since)) & ~late)
        if since == last - dt.timedelta(days=1):  # the late rows of the day before land with this one
            batch = batch.unionByName(events.filter(late))
        catalog.write(batch, "raw.events", mode="append")
        result = _build(spark, incremental)
        assert result.range.reason.startswith("incremental")
        assert result.merge["numTargetRowsInserted"] > 0
        assert result.counts["in"] == result.counts["out"] + result.counts["quarantined"]

    full = _settings(full_build)
    assertDataFrameEqual(
        _table(spark, incremental, "features.customer_activity"),
        _table(spark, full, "features.customer_activity"),
    )
    assertDataFrameEqual(
        _table(spark, incremental, "quarantine.events"), _table(spark, full, "quarantine.events")
    )

    rerun = _build(spark, incremental)  # the same source version again: nothing read, no commit at all
    assert (
        rerun.range.reason == f"up to date: raw.events version {catalog.version('raw.events')} already built"
    )
    assert (rerun.version, rerun.merge, rerun.counts["in"]) == (result.version, {}, 0)
    assert Catalog(spark, incremental).version("features.customer_activity") == result.version
    spark.sql(
        f"ALTER TABLE delta.`{catalog.path('features.customer_activity')}` SET TBLPROPERTIES ('team.owner' = 'growth')"
    )  # not a build's commit
    assert catalog.version("features.customer_activity") == result.version + 1
    assert not plan_feature_build(catalog, incremental, incremental.feature_sets[ACTIVITY]).range.up_to_date


HOURLY = FeatureSetDecl.model_validate(
    {
        "name": "hourly_activity",
        "description": "Events per customer in the last hours.",
        "table": "features.hourly_activity",
        "source": "raw_events",
        "entity": ["customer_id"],
        "event_time": "event_ts",
        "grain": "hour",
        "lookback": "3h",
        "transforms": [
            {
                "fn": "parity.transforms.add_rolling_aggregates",
                "params": {
                    "entity": "customer_id",
                    "time_column": "event_ts",
                    "windows": ["1h", "6h", "1d"],
                    "output": "feature_ts",
                    "last_event_output": "last_event_ts",
                    "aggregates": [
                        {"column": "event_id", "fn": "count", "name": "n"},
                        {"column": "amount", "fn": "sum"},
                    ],
                },
            }
        ],
        "features": [
            *(
                {"name": f"{name}_{w}", "type": kind, "description": f"{name} in {w}"}
                for w in ("1h", "6h", "1d")
                for name, kind in (("n", "bigint"), ("amount_sum", "double"))
            ),
            {"name": "last_event_ts", "type": "timestamp", "description": "The newest event so far."},
        ],
    }
)


def test_hourly_increments_with_late_events_equal_one_full_build(
    spark: SparkSession, events: DataFrame, tmp_path: Path
) -> None:
    """An hour-grain set built in two steps, the second with events two hours late, ends up as one full build."""
    last = events.agg(F.max("event_ts")).first()[0]
    cut = floor_to_grain(last, "day") + dt.timedelta(hours=6)
    recent = events.filter(
        (F.col("event_ts") >= F.lit(cut - dt.timedelta(days=2))) | F.col("event_ts").isNull()
    )
    late = (
        (F.col("event_ts") >= F.lit(cut - dt.timedelta(hours=2)))
        & (F.col("event_ts") < F.lit(cut))
        & (F.col("customer_id") % 5 == 0)
    )
    incremental = _settings(tmp_path)
    catalog = Catalog(spark, incremental)
    catalog.write(recent.filter((F.col("event_ts") < F.lit(cut)) & ~late), "raw.events")
    previous = build_feature_set(catalog, incremental, HOURLY)
    assert previous.range.end == grain_end(previous.watermark, "hour")  # the end of the newest event's hour
    assert not recent.filter(late).isEmpty()
    catalog.write(
        recent.filter((F.col("event_ts") >= F.lit(cut)) | late), "raw.events", mode="append"
    )  # new hours, and late events
    result = build_feature_set(catalog, incremental, HOURLY)
    assert result.range.start == floor_to_grain(previous.watermark, "hour") - dt.timedelta(
        hours=3
    )  # the lookback, in hours
    assert result.counts["in"] == result.counts["out"] + result.counts["quarantined"]
    built = _table(spark, incremental, HOURLY.table)
    assert built.filter(
        F.minute("feature_ts") + F.second("feature_ts") > 0
    ).isEmpty()  # stamped at whole hours
    valid, _ = validate_source(
        recent,
        incremental.source_quality("raw_events"),
        source="raw.events",
        required=required_columns(HOURLY),
    )
    full = preview_feature_set(HOURLY, valid, newest=last)  # what one full build writes
    assertDataFrameEqual(built.drop(FEATURE_DATE), full)


@pytest.mark.integration  # a scenario of several builds (make test; the inner loop keeps the unit tests)
def test_backfill_rebuilds_its_days_and_leaves_the_rest_untouched(
    spark: SparkSession, events: DataFrame, full_build: Path, tmp_path: Path
) -> None:
    settings = _copy(full_build, tmp_path)
    catalog = Catalog(spark, settings)
    before = _table(spark, settings, "features.customer_activity").localCheckpoint()

    fixed = dt.date(2026, 2, 10)  # the source corrects one day: every amount that day doubles
    catalog.write(
        events.withColumn(
            "amount",
            F.when(F.to_date("event_ts") == F.lit(fixed), F.col("amount") * 2).otherwise(F.col("amount")),
        ),
        "raw.events",
    )
    result = _build(spark, settings, backfill=(fixed, fixed))
    assert result.range.reason == f"backfill {fixed}..{fixed}"
    after = _table(spark, settings, "features.customer_activity")

    in_range = (F.col("feature_ts") > F.lit(dt.datetime(2026, 2, 10))) & (
        F.col("feature_ts") <= F.lit(dt.datetime(2026, 2, 11))
    )
    assertDataFrameEqual(after.filter(~in_range), before.filter(~in_range))
    reference = _settings(tmp_path / "reference")
    Catalog(spark, reference).write(catalog.read("raw.events"), "raw.events")
    _build(spark, reference)
    assertDataFrameEqual(
        after.filter(in_range), _table(spark, reference, "features.customer_activity").filter(in_range)
    )
    assert after.filter(in_range).count() > 0
    assert before.filter(in_range).exceptAll(after.filter(in_range)).count() > 0  # the day really changed
    assert not plan_feature_build(
        catalog, settings, settings.feature_sets[ACTIVITY]
    ).range.up_to_date  # it read part of the source only


@pytest.mark.integration  # a scenario of several builds (make test; the inner loop keeps the unit tests)
def test_a_changed_declaration_needs_a_full_refresh(
    spark: SparkSession, full_build: Path, tmp_path: Path
) -> None:
    settings = _copy(full_build, tmp_path)
    join_only = _settings(
        tmp_path / "copy", f"feature_sets.{ACTIVITY}.max_age=10d", f"feature_sets.{ACTIVITY}.lookback=3d"
    )
    assert _build(spark, join_only).range.up_to_date  # the TTL and lookback change no row: the table stands
    conf = tmp_path / "conf"  # a transform parameter changes: the table must be rebuilt to match
    shutil.copytree(CONF_DIR, conf)
    path = conf / "features" / f"{ACTIVITY}.yaml"
    path.write_text(
        path.read_text().replace(
            "values: [web, mobile, branch, phone]", "values: [web, mobile, branch, phone, kiosk]"
        )
    )
    changed = load_settings(
        conf,
        overrides=storage_overrides(tmp_path / "copy")
        + TEST_SPARK
        + [f"spark.jars_dir={settings.spark.jars_dir}"],
    )
    assert changed.feature_sets[ACTIVITY].table_hash() != settings.feature_sets[ACTIVITY].table_hash()
    with pytest.raises(DeclarationChangedError, match="rebuild it with full_refresh=True"):
        _build(spark, changed)
    assert _build(spark, changed, full_refresh=True).range.reason == "full refresh"
    assert _build(spark, changed).range.up_to_date


def test_a_build_is_up_to_date_only_for_the_inputs_its_table_was_built_from(tmp_settings: Settings) -> None:
    decl = tmp_settings.feature_sets[ACTIVITY]
    mark = dt.datetime(2026, 3, 1, 12)
    inputs = BuildInputs("raw.events", 7, "table-id", "quality-digest", "code-digest", "quarantine-id")
    built = BuildState(mark, decl.table_hash(), inputs)
    assert plan_build(decl, built, inputs=inputs).up_to_date
    for changed in (
        {"source_version": 8},  # new source data
        {"source": "raw.other_events"},  # the set reads another table
        {"source_id": "another-table-id"},  # the source was deleted and created again: versions restart
        {"quality": "another-digest"},  # the source's quality rules changed
        {"code": "another-code-digest"},  # parity's feature code changed
        {"quarantine_id": None},  # the quarantine table was deleted
    ):
        assert (
            plan_build(decl, built, inputs=replace(inputs, **changed)).reason
            == f"incremental from watermark {mark.isoformat()}"
        )
    assert not plan_build(decl, built).up_to_date  # the table's newest commit is not this build's
    assert not plan_build(
        decl, BuildState(mark, decl.table_hash()), inputs=inputs
    ).up_to_date  # a backfill recorded no inputs
    assert (
        BuildState.from_metadata(
            {BUILD_STATE_KEY: {"declaration_hash": "h", "inputs": {"source": "raw.events"}}}
        ).inputs
        is None
    )  # another parity's record
    assert plan_build(decl, built, inputs=inputs, full_refresh=True).reason == "full refresh"
    assert plan_build(decl, built, inputs=inputs, backfill=(mark.date(), mark.date())).reason.startswith(
        "backfill"
    )
    with pytest.raises(DeclarationChangedError):
        plan_build(decl, BuildState(mark, "another hash", inputs), inputs=inputs)
