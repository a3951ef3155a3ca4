"""Validation at the edge: schema checks fail early; declared expectations quarantine bad rows, none are lost."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from parity.core.conf import ConfError, SourceQualityConf, load_settings
from parity.demo.columns import RAW_EVENTS
from parity.features import SOURCE_ROW_HASH, validate_source
from parity.features.quality import (
    MissingColumnsError,
    StaleSourceError,
    apply_expectations,
    check_freshness,
    require_columns,
)
from tests.support import CONF_DIR

TS = dt.datetime


def _quality(*expectations: dict[str, object], **extra: object) -> SourceQualityConf:
    return SourceQualityConf.model_validate({"expectations": list(expectations), **extra})


def test_missing_and_retyped_columns_are_named(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(1, 1, TS(2026, 1, 1), "12.5")], "event_id LONG, customer_id LONG, event_ts TIMESTAMP, amount STRING"
    )
    with pytest.raises(MissingColumnsError) as caught:
        require_columns(df, RAW_EVENTS, source="raw.events")
    message = str(caught.value)
    assert "raw.events" in message and "channel, category, note" in message
    assert "amount (string, expected double)" in message


def test_quarantine_reconciles_and_records_rule_and_reason(spark: SparkSession) -> None:
    rows = [
        (1, 1, TS(2026, 1, 1), 10.0, "web", "fees", "mail me at jo@example.com"),
        (2, None, TS(2026, 1, 1), 10.0, "web", "fees", None),
        (3, 1, None, 10.0, "web", "fees", None),
        (4, 1, TS(2026, 1, 1), -1.0, "web", "fees", "call +1-555-0001234"),
        (5, 1, TS(2026, 1, 1), None, "web", "fees", None),
        (6, 2, TS(2026, 1, 2), 0.0, "fax", "fees", None),
        (7, 2, TS(2026, 1, 3), 3.0, None, "fees", None),
        (7, 2, TS(2026, 1, 3), 4.0, "web", "fees", None),
    ]
    events = spark.createDataFrame(rows, RAW_EVENTS).withColumn("unexpected", F.lit(1))
    declared = load_settings(CONF_DIR).quality["raw_events"]  # the shipped contract and expectations
    valid, quarantined = validate_source(events, declared, source="raw.events")
    assert valid.count() + quarantined.count() == events.count()
    assert sorted((r.event_id, r.amount) for r in valid.collect()) == [(1, 10.0), (7, 3.0)]
    assert (
        "unexpected" not in valid.columns and "unexpected" not in quarantined.columns
    )  # new columns are ignored
    assert quarantined.select(SOURCE_ROW_HASH).distinct().count() == quarantined.count()
    reasons = {
        (r.event_id, r.amount): (r.quarantine_rule, r.quarantine_reason, r.note)
        for r in quarantined.collect()
    }
    assert reasons == {
        (2, 10.0): ("not_null:customer_id", "customer_id is null", None),
        (3, 10.0): ("not_null:event_ts", "event_ts is null", None),
        (4, -1.0): ("range:amount", "amount is below 0.0", "call [PHONE]"),
        (5, None): ("not_null:amount", "amount is null", None),
        (6, 0.0): ("allowed_values:channel", "channel is not one of web, mobile, branch, phone", None),
        (7, 4.0): ("unique:event_id", "duplicate event_id", None),
    }


def test_entity_and_event_time_must_be_present_even_when_no_expectation_says_so(spark: SparkSession) -> None:
    events = spark.createDataFrame([(1, None, TS(2026, 1, 1), -5.0, "web", "fees", None)], RAW_EVENTS)
    valid, quarantined = validate_source(
        events, SourceQualityConf(), source="raw.events", required=["customer_id", "event_ts"]
    )
    assert valid.count() == 0 and quarantined.first().quarantine_rule == "not_null:customer_id"


def test_range_with_both_bounds(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1, 0.5), (2, 1.5), (3, None)], "id INT, x DOUBLE")
    valid, quarantined = apply_expectations(
        df, _quality({"rule": "range", "column": "x", "min": 0, "max": 1}).expectations, source="t"
    )
    assert sorted(r.id for r in valid.collect()) == [1, 3]
    assert [(r.id, r.quarantine_reason) for r in quarantined.collect()] == [(2, "x is outside [0.0, 1.0]")]


def test_expectations_on_missing_columns_are_named(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1,)], "id INT")
    with pytest.raises(MissingColumnsError, match="missing column"):
        apply_expectations(
            df, _quality({"rule": "unique", "columns": ["id", "day"]}).expectations, source="t"
        )


def test_freshness(spark: SparkSession) -> None:
    df = spark.createDataFrame([(TS(2026, 1, 10, 12),)], "event_ts TIMESTAMP")
    fresh = _quality(time_column="event_ts", max_staleness_hours=24)
    check_freshness(df, fresh, source="raw.events", now=TS(2026, 1, 11, 6, tzinfo=dt.UTC))
    with pytest.raises(
        StaleSourceError, match=r"raw\.events is stale: newest event_ts is 2026-01-10 12:00:00"
    ):
        check_freshness(df, fresh, source="raw.events", now=TS(2026, 1, 12, tzinfo=dt.UTC))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "quality.raw_events.expectations=[{rule: not_empty, column: x}]",
            "quality.raw_events.expectations.0",
        ),
        ("quality.raw_events.expectations=[{rule: range, column: amount}]", "needs min, max or both"),
        ("quality.raw_event.expectations=[]", r"quality has no source\(s\) raw_event"),
        ("quality.raw_events.columns={amount: money}", "quality.raw_events.columns.amount"),
        ("quality.raw_events.max_staleness_hours=3", "needs time_column"),
    ],
)
def test_bad_expectations_fail_on_load(override: str, message: str) -> None:
    with pytest.raises(ConfError, match=message):
        load_settings(CONF_DIR, overrides=[override])


def test_quarantine_empties_the_declared_pii_columns_and_redacts_free_text(spark: SparkSession) -> None:
    rows = spark.createDataFrame(
        [(None, "ana@example.com", "call ana@example.com"), (7, "ben@example.com", "fine")],
        "account LONG, email STRING, memo STRING",
    )
    declared = SourceQualityConf(
        columns={"account": "bigint", "email": "string", "memo": "string"},
        pii=["email"],
        expectations=[{"rule": "not_null", "column": "account"}],  # type: ignore[list-item]
    )
    valid, quarantined = validate_source(rows, declared, source="raw.accounts")
    assert valid.count() == 1
    (bad,) = quarantined.collect()
    assert bad["email"] is None  # a declared PII column: emptied
    assert "ana@example.com" not in bad["memo"]  # free text: redacted
    undeclared = validate_source(rows, declared.model_copy(update={"pii": []}), source="raw.accounts")[
        1
    ].first()
    assert undeclared is not None and undeclared["email"] != "ana@example.com"  # still redacted as free text
