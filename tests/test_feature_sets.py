"""Declared feature sets: invalid declarations fail on load naming the field, and a new dataset
is built from a declaration alone, through the unchanged build_features job."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession

from parity.app.features_run import build_features, check_arguments
from parity.app.jobkit import JobOptions, run_job
from parity.core.catalog import Catalog
from parity.core.columns import FEATURE_DATE
from parity.core.conf import ConfError, FeatureSetDecl, Settings, load_settings
from parity.core.conf.feature_sets import TABLE_COLUMNS
from parity.core.versioned import VERSION_COLUMNS
from parity.demo.columns import RAW_EVENTS
from parity.features import DeclarationError, check_declaration, source_contract
from parity.features.quality import MissingColumnsError
from tests.conftest import TEST_SPARK
from tests.support import CONF_DIR, load_job, set_args, storage_overrides

TS = dt.datetime


def _conf_copy(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    return conf


def _edit(conf: Path, name: str, change) -> None:  # type: ignore[no-untyped-def]
    path = conf / "features" / f"{name}.yaml"
    declaration = yaml.safe_load(path.read_text())
    change(declaration)
    path.write_text(yaml.safe_dump(declaration))


def _day_windows_at_hour_grain(declaration: dict) -> None:  # type: ignore[type-arg]
    """The set at hour grain, its windows computed by the day-only add_window_aggregates."""
    windows = declaration["transforms"][2]
    params = {k: v for k, v in windows["params"].items() if k != "windows"}
    windows.update(
        fn="parity.transforms.add_window_aggregates", params={**params, "windows_days": [1, 7, 30]}
    )
    declaration["grain"] = "hour"


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (
            "customer_activity",
            lambda d: d["transforms"][1].update(fn="parity.transforms.with_nothing"),
            "conf key 'feature_sets.customer_activity.transforms.1.fn': unknown transform "
            "'parity.transforms.with_nothing'",
        ),
        (
            "customer_activity",
            lambda d: d["transforms"][2]["params"].update(windowz=[7]),
            "add_rolling_aggregates takes no parameter(s) windowz",
        ),
        (
            "customer_activity",
            lambda d: d.update(lookback=2),
            "conf key 'feature_sets.customer_activity.lookback': 2 is not a duration such as 6h, 1d or 2w "
            "(h hours, d days, w weeks); a bare number has no unit: write 2d for days or 2h for hours",
        ),
        (
            "customer_activity",
            lambda d: d.update(max_age="60 days"),
            "'60 days' is not a duration such as 6h, 1d or 2w",
        ),
        (
            "customer_activity",
            lambda d: d.update(lookback_days=3),
            "feature set customer_activity gives both lookback and lookback_days: keep lookback (with its "
            "unit, e.g. 2d)",
        ),
        (
            "customer_activity",
            lambda d: d["transforms"][2]["params"].update(windows=["1d", "6h"]),
            "window 6h: 6:00:00 is not a whole number of days; at day grain use multiples of 1d",
        ),
        (
            "customer_activity",
            lambda d: d["transforms"][2]["params"].update(grain="hour"),
            "transforms[2] parity.transforms.add_rolling_aggregates has grain hour, the set has grain day",
        ),
        (
            "customer_activity",
            lambda d: _day_windows_at_hour_grain(d),
            "transforms[2] parity.transforms.add_window_aggregates computes whole-day windows only; at "
            "hour grain use parity.transforms.add_rolling_aggregates",
        ),
        (
            "customer_activity",
            lambda d: d.update(grain="minute"),
            "feature_sets.customer_activity.grain",
        ),
        (
            "customer_profile",
            lambda d: d["transforms"][1]["params"].pop("output"),
            "with_buckets needs parameter(s) output",
        ),
        (
            "customer_profile",
            lambda d: d["features"].append({"name": "n_events_7d", "type": "bigint", "description": "again"}),
            "model churn (models/churn.yaml) features[1]: column 'n_events_7d' is added by both lookup "
            "customer_activity and lookup customer_profile; give one of them a prefix",
        ),
        (
            "customer_profile",
            lambda d: d["features"].append({"name": "region", "type": "string", "description": "twice"}),
            "duplicate feature name(s) region in feature set customer_profile",
        ),
        (
            "customer_profile",
            lambda d: d["features"][0].update(type="varchar"),
            "feature_sets.customer_profile.features.0.type",
        ),
        (
            "customer_profile",
            lambda d: d["features"].append(
                {"name": "landed_at", "type": "timestamp", "description": "clashes"}
            ),
            "feature set customer_profile declares column(s) landed_at, which every feature table holds "
            "itself; rename them",
        ),
        (
            "customer_profile",
            lambda d: d.update(source="raw_nowhere"),
            "source 'raw_nowhere' is neither a key of tables: nor a raw.<name> table",
        ),
    ],
    ids=[
        "unknown-transform",
        "unknown-param",
        "bare-number",
        "unknown-unit",
        "old-and-new-field",
        "window-not-whole-days",
        "grain-mismatch",
        "day-only-transform-at-hour-grain",
        "bad-grain",
        "missing-param",
        "duplicate-across-sets",
        "duplicate-in-set",
        "bad-type",
        "reserved-column",
        "bad-source",
    ],
)
def test_invalid_declarations_fail_on_load_naming_the_field(
    tmp_path: Path, name: str, change, message: str
) -> None:
    conf = _conf_copy(tmp_path)
    _edit(conf, name, change)
    with pytest.raises(ConfError) as raised:
        load_settings(conf)
    assert message in str(raised.value)


@pytest.mark.parametrize("column", TABLE_COLUMNS)
@pytest.mark.parametrize("role", ["feature", "entity", "timestamp"])
def test_a_column_every_feature_table_holds_cannot_be_declared(
    settings: Settings, column: str, role: str
) -> None:
    """The build adds these columns itself (the built table's columns are checked against them in
    the new-dataset test below), so a declaration naming one as a feature, a key or the time fails."""
    declaration = settings.feature_sets["customer_profile"].model_dump(mode="json")
    if role == "feature":
        declaration["features"].append({"name": column, "type": "timestamp", "description": "clashes"})
    elif role == "entity":
        declaration["entity"] = [column]
    else:
        declaration["timestamp"] = column
    with pytest.raises(
        ValueError, match=f"declares column\\(s\\) {column}, which every feature table holds itself"
    ):
        FeatureSetDecl.model_validate(declaration)


def test_declarations_round_trip_as_models_record_them(settings: Settings) -> None:
    """A model's feature spec records each declaration as a dict; loading it back gives the same
    declaration and digests, in either form of the time fields."""
    older = {
        **settings.feature_sets["customer_activity"].model_dump(mode="json"),
        "lookback": None,
        "max_age": None,
        "lookback_days": 2,
        "max_age_days": 60,
    }
    for decl in [*settings.feature_sets.values(), FeatureSetDecl.model_validate(older)]:
        again = FeatureSetDecl.model_validate(decl.model_dump(mode="json"))
        assert (again, again.code_hash(), again.table_hash()) == (decl, decl.code_hash(), decl.table_hash())
    unit_form = settings.feature_sets["customer_activity"]
    assert (unit_form.lookback_delta, unit_form.max_age_delta) == (
        FeatureSetDecl.model_validate(older).lookback_delta,
        dt.timedelta(days=60),
    )


def test_a_declaration_twice_or_unknown_training_set_fails_on_load(tmp_path: Path) -> None:
    conf = _conf_copy(tmp_path)
    shutil.copy(conf / "features" / "customer_profile.yaml", conf / "features" / "profile_again.yaml")
    with pytest.raises(
        ConfError, match=r"declared twice: features/customer_profile\.yaml and features/profile_again\.yaml"
    ):
        load_settings(conf)
    with pytest.raises(
        ConfError,
        match=r"model churn \(models/churn\.yaml\) features\[1\]\.feature_set: undeclared feature set 'churn_risk'",
    ):
        load_settings(
            CONF_DIR,
            overrides=["models.churn.features=[{feature_set: customer_activity}, {feature_set: churn_risk}]"],
        )


def test_a_missing_or_retyped_column_is_named_before_any_data_is_read(
    spark: SparkSession, settings: Settings
) -> None:
    decl = settings.feature_sets["customer_activity"]
    conf = settings.source_quality("raw_events")
    check_declaration(spark, decl, RAW_EVENTS, conf)  # the declared pipeline fits the raw contract

    without_category = source_contract(
        conf.model_copy(update={"columns": {k: v for k, v in conf.columns.items() if k != "category"}})
    )
    with pytest.raises(
        DeclarationError,
        match=r"transforms\[2\] parity.transforms.add_rolling_aggregates cannot run: .*category",
    ):
        check_declaration(
            spark, decl, without_category, conf.model_copy(update={"columns": {}, "expectations": []})
        )

    retyped = source_contract(conf.model_copy(update={"columns": {**conf.columns, "amount": "string"}}))
    with pytest.raises(MissingColumnsError, match="amount"):
        check_declaration(spark, decl, retyped, conf)

    mistyped = decl.model_copy(
        update={
            "features": [
                f.model_copy(update={"type": "double"}) if f.name == "n_events_7d" else f
                for f in decl.features
            ]
        }
    )
    with pytest.raises(DeclarationError, match="n_events_7d is bigint, declared double"):
        check_declaration(spark, mistyped, RAW_EVENTS, conf)


TRANSACTIONS = "merchant_id STRING, txn_ts TIMESTAMP, amount DOUBLE, memo STRING, extra INT"
MERCHANT_DECLARATION = {
    "name": "merchant_activity",
    "description": "Weekly takings per merchant (a dataset the platform has never seen).",
    "table": "features.merchant_activity",
    "source": "raw.transactions",
    "entity": ["merchant_id"],
    "event_time": "txn_ts",
    "lookback_days": 1,
    "transforms": [
        {
            "fn": "tests.user_transforms.with_weekend_flag",
            "params": {"ts_column": "txn_ts", "output": "weekend"},
        },
        {"fn": "parity.transforms.with_text_features", "params": {"column": "memo", "prefix": "memo"}},
        {
            "fn": "parity.transforms.add_window_aggregates",
            "params": {
                "entity": "merchant_id",
                "time_column": "txn_ts",
                "windows_days": [7],
                "output": "feature_ts",
                "aggregates": [
                    {"column": "amount", "fn": "sum", "name": "takings"},
                    {"column": "weekend", "fn": "sum", "name": "weekend_txns"},
                    {"column": "memo_has_contact", "fn": "sum", "name": "memos_with_contact"},
                ],
            },
        },
    ],
    "features": [
        {"name": "takings_7d", "type": "double", "description": "Takings over 7 days."},
        {"name": "weekend_txns_7d", "type": "bigint", "description": "Weekend transactions over 7 days."},
        {
            "name": "memos_with_contact_7d",
            "type": "bigint",
            "description": "Memos that held contact details.",
        },
    ],
}


def test_a_new_dataset_is_built_from_its_declaration_with_no_job_change(
    spark: SparkSession, tmp_path: Path
) -> None:
    conf = _conf_copy(tmp_path)
    (conf / "features" / "merchant_activity.yaml").write_text(yaml.safe_dump(MERCHANT_DECLARATION))
    (conf / "dev.yaml").write_text(
        (conf / "dev.yaml").read_text() + "\nquality:\n  raw.transactions:\n"
        "    columns: {merchant_id: string, txn_ts: timestamp, amount: double, memo: string}\n"
        + "    expectations:\n      - {rule: not_null, column: merchant_id}\n"
    )
    overrides = storage_overrides(tmp_path) + TEST_SPARK
    settings = load_settings(conf, overrides=overrides)
    Catalog(spark, settings).write(
        spark.createDataFrame(
            [
                (
                    "m1",
                    TS(2026, 3, 7, 10),
                    20.0,
                    "ring 555-010-0199",
                    1,
                ),  # a Saturday; the memo holds a phone
                ("m1", TS(2026, 3, 9, 10), 5.0, "thanks", 1),
                (None, TS(2026, 3, 9, 11), 1.0, "no merchant", 1),  # quarantined
                ("m2", TS(2026, 3, 9, 12), 7.5, None, 1),
            ],
            TRANSACTIONS,
        ),
        "raw.transactions",
    )
    code = run_job(
        "build_features",
        ["--feature-set", "merchant_activity", *set_args(overrides)],
        build_features,
        conf_dir=conf,
        options=JobOptions(parser=load_job("build_features").parser(), check_args=check_arguments),
    )
    assert code == 0
    catalog = Catalog(spark, settings)
    table = catalog.read("features.merchant_activity")
    latest = {
        r.merchant_id: (r.takings_7d, r.weekend_txns_7d, r.memos_with_contact_7d)
        for r in table.filter("feature_ts = TIMESTAMP '2026-03-10 00:00:00'").collect()
    }
    assert latest == {"m1": (25.0, 1, 1), "m2": (7.5, 0, 0)}
    decl = settings.feature_sets["merchant_activity"]
    added_by_the_build = set(table.columns) - {*decl.entity, decl.timestamp, *decl.feature_names()}
    assert added_by_the_build == {FEATURE_DATE, *VERSION_COLUMNS} == set(TABLE_COLUMNS)
    comments = {f.name: f.metadata.get("comment") for f in table.schema.fields}
    assert comments["weekend_txns_7d"] == "Weekend transactions over 7 days."
    quarantined = catalog.read("quarantine.transactions").collect()
    assert [(r.quarantine_rule, r.memo) for r in quarantined] == [("not_null:merchant_id", "no merchant")]
