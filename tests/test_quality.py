"""Validation at the edge: schema checks fail early; bad rows are quarantined, none are lost."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from parity.features import validate_events
from parity.quality import MissingColumnsError, require_columns
from parity.schema import RAW_EVENTS

TS = dt.datetime


def test_missing_and_retyped_columns_are_named(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1, 1, TS(2026, 1, 1), "12.5")], "event_id LONG, customer_id LONG, event_ts TIMESTAMP, amount STRING")
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
        (6, 2, TS(2026, 1, 2), 0.0, "app", "fees", None),
    ]
    events = spark.createDataFrame(rows, RAW_EVENTS).withColumn("unexpected", F.lit(1))
    valid, quarantined = validate_events(events)
    assert valid.count() + quarantined.count() == events.count()
    assert sorted(r.event_id for r in valid.collect()) == [1, 6]
    assert "unexpected" not in valid.columns  # new columns are ignored
    reasons = {r.event_id: (r.quarantine_rule, r.quarantine_reason, r.note) for r in quarantined.collect()}
    assert reasons == {
        2: ("not_null:customer_id", "customer_id is null", None),
        3: ("not_null:event_ts", "event_ts is null", None),
        4: ("min:amount", "amount is below 0.0", "call [PHONE]"),
        5: ("not_null:amount", "amount is null", None),
    }
