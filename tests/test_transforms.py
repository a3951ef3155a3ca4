"""Unit tests of the pure transforms on tiny inline DataFrames."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import types as T
from pyspark.testing import assertDataFrameEqual

from parity import transforms
from parity.features import build_customer_profile

D = dt.date
TS = dt.datetime


def test_with_redacted_text_masks_emails_and_phones(spark: SparkSession) -> None:
    schema = "id INT, note STRING"
    df = spark.createDataFrame(
        [(1, "please email me at ana.ng12@example.com"), (2, "call me back on +1-555-0012345"), (3, "card declined"), (4, None)],
        schema,
    )
    expected = spark.createDataFrame(
        [(1, "please email me at [EMAIL]", True), (2, "call me back on [PHONE]", True), (3, "card declined", False), (4, None, False)],
        "id INT, note STRING, has_pii BOOLEAN",
    )
    assertDataFrameEqual(transforms.with_redacted_text(df, column="note", flag_column="has_pii"), expected)


def test_add_daily_activity_aggregates_per_entity_and_day(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(1, D(2026, 1, 1), 10.0, "hi", False), (1, D(2026, 1, 1), 5.0, None, True), (2, D(2026, 1, 2), 7.5, "abc", False)],
        "customer_id LONG, day DATE, amount DOUBLE, note STRING, flag BOOLEAN",
    )
    expected = spark.createDataFrame(
        [(1, D(2026, 1, 1), 2, 15.0, 10.0, 1, 2), (2, D(2026, 1, 2), 1, 7.5, 7.5, 0, 3)],
        "customer_id LONG, day DATE, n_events LONG, amount_sum DOUBLE, amount_max DOUBLE, "
        "n_contact_notes LONG, note_length_sum LONG",
    )
    actual = transforms.add_daily_activity(
        df, entity="customer_id", amount_column="amount", note_column="note", contact_flag_column="flag"
    )
    assertDataFrameEqual(actual, expected)


DAILY = "customer_id LONG, day DATE, n_events LONG, amount_sum DOUBLE, amount_max DOUBLE, n_contact_notes LONG, note_length_sum LONG"


def test_add_daily_grid_fills_quiet_days_up_to_the_end(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(1, D(2026, 1, 1), 2, 15.0, 10.0, 1, 2), (1, D(2026, 1, 3), 1, 4.0, 4.0, 0, 0), (1, D(2026, 1, 9), 1, 1.0, 1.0, 0, 0)],
        DAILY,
    )
    expected = spark.createDataFrame(
        [
            (1, D(2026, 1, 1), 2, 15.0, 10.0, 1, 2),
            (1, D(2026, 1, 2), 0, 0.0, None, 0, 0),
            (1, D(2026, 1, 3), 1, 4.0, 4.0, 0, 0),
            (1, D(2026, 1, 4), 0, 0.0, None, 0, 0),
        ],
        DAILY,
    )
    actual = transforms.add_daily_grid(df, entity="customer_id", end_day=D(2026, 1, 4))
    assertDataFrameEqual(actual.select(*expected.columns), expected)


def test_rolling_windows_and_recency_cover_the_last_n_days(spark: SparkSession) -> None:
    daily = spark.createDataFrame(
        [
            (1, D(2026, 1, 1), 2, 10.0, 8.0, 1, 0),
            (1, D(2026, 1, 2), 0, 0.0, None, 0, 0),
            (1, D(2026, 1, 3), 1, 5.0, 5.0, 0, 0),
            (1, D(2026, 1, 4), 0, 0.0, None, 0, 0),
            (2, D(2026, 1, 4), 1, 1.0, 1.0, 0, 0),
        ],
        DAILY,
    )
    actual = daily.transform(transforms.add_rolling_windows, entity="customer_id", windows_days=[2]).transform(
        transforms.with_days_since_last_event, entity="customer_id"
    )
    expected = spark.createDataFrame(
        [
            (1, D(2026, 1, 1), 2, 10.0, 8.0, 1, 5.0, 0),
            (1, D(2026, 1, 2), 2, 10.0, 8.0, 1, 5.0, 1),
            (1, D(2026, 1, 3), 1, 5.0, 5.0, 0, 5.0, 0),
            (1, D(2026, 1, 4), 1, 5.0, 5.0, 0, 5.0, 1),
            (2, D(2026, 1, 4), 1, 1.0, 1.0, 0, 1.0, 0),
        ],
        "customer_id LONG, day DATE, n_events_2d LONG, amount_sum_2d DOUBLE, amount_max_2d DOUBLE, "
        "contact_notes_2d LONG, amount_mean_2d DOUBLE, days_since_last_event INT",
    )
    assertDataFrameEqual(actual.select(*expected.columns), expected)


def test_with_ratio_is_null_for_a_zero_denominator(spark: SparkSession) -> None:
    df = spark.createDataFrame([(6, 3), (1, 0), (None, 2)], "a LONG, b LONG")
    expected = spark.createDataFrame([(6, 3, 2.0), (1, 0, None), (None, 2, None)], "a LONG, b LONG, r DOUBLE")
    assertDataFrameEqual(transforms.with_ratio(df, numerator="a", denominator="b", output="r"), expected)


def test_day_end_ts_is_midnight_after_the_day(spark: SparkSession) -> None:
    df = spark.createDataFrame([(D(2026, 2, 28),), (D(2026, 12, 31),)], "day DATE")
    expected = spark.createDataFrame(
        [(D(2026, 2, 28), TS(2026, 3, 1)), (D(2026, 12, 31), TS(2027, 1, 1))], "day DATE, feature_ts TIMESTAMP"
    )
    assertDataFrameEqual(transforms.with_day_end_ts(df, output="feature_ts"), expected)


def test_tenure_days(spark: SparkSession) -> None:
    df = spark.createDataFrame([(TS(2026, 3, 1), TS(2026, 1, 30, 23)), (TS(2026, 3, 1), None)], "t TIMESTAMP, s TIMESTAMP")
    expected = spark.createDataFrame(
        [(TS(2026, 3, 1), TS(2026, 1, 30, 23), 30), (TS(2026, 3, 1), None, None)], "t TIMESTAMP, s TIMESTAMP, tenure INT"
    )
    assertDataFrameEqual(transforms.with_tenure_days(df, as_of_column="t", since_column="s", output="tenure"), expected)


def test_profile_features_drop_pii(spark: SparkSession) -> None:
    from parity.schema import RAW_CUSTOMERS

    customers = spark.createDataFrame(
        [(1, TS(2026, 1, 1), "Ana Ng", "ana@example.com", "+1-555-0000001", "smb", "north", 900.0, TS(2026, 1, 1))],
        RAW_CUSTOMERS,
    )
    profile = build_customer_profile(customers)
    assert set(profile.columns).isdisjoint({"name", "email", "phone"})
    expected = spark.createDataFrame(
        [(1, TS(2026, 1, 1), "smb", "north", 900.0, TS(2026, 1, 1))],
        T.StructType(
            [
                T.StructField("customer_id", T.LongType(), False),
                T.StructField("feature_ts", T.TimestampType(), False),
                T.StructField("segment", T.StringType()),
                T.StructField("region", T.StringType()),
                T.StructField("credit_limit", T.DoubleType()),
                T.StructField("signup_ts", T.TimestampType()),
            ]
        ),
    )
    assertDataFrameEqual(profile, expected)


def test_daily_grid_ignores_entities_that_start_after_the_end(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(1, D(2026, 1, 1), 1, 1.0, 1.0, 0, 0), (2, D(2026, 1, 9), 1, 1.0, 1.0, 0, 0)], DAILY
    )
    actual = transforms.add_daily_grid(df, entity="customer_id", end_day=D(2026, 1, 2))
    assert sorted((r.customer_id, r.day) for r in actual.collect()) == [(1, D(2026, 1, 1)), (1, D(2026, 1, 2))]
