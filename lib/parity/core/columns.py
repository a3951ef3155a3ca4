"""Column names shared across rooms, and the contracts of the raw sources."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import types as T

# keys and times
CUSTOMER_ID = "customer_id"
EVENT_ID = "event_id"
EVENT_TS = "event_ts"
FEATURE_TS = "feature_ts"
UPDATED_AT = "updated_at"
LABEL_TS = "label_ts"
LABEL = "label"
LABEL_AVAILABLE_AT = "label_available_at"
SCORE_TS = "score_ts"

# the channel-spend demo model: keyed by customer and channel, under names of its own
CUSTOMER = "customer"
SINCE = "since"
SPEND = "spend_next_30d"

# raw event fields
AMOUNT = "amount"
CHANNEL = "channel"
CATEGORY = "category"
NOTE = "note"

# raw customer fields (name, email and phone are PII and never leave the raw zone)
NAME = "name"
EMAIL = "email"
PHONE = "phone"
SEGMENT = "segment"
REGION = "region"
CREDIT_LIMIT = "credit_limit"
SIGNUP_TS = "signup_ts"
PII_COLUMNS = (NAME, EMAIL, PHONE)

# predictions and quarantine
PREDICTION = "prediction"
MODEL_NAME = "model_name"
MODEL_VERSION = "model_version"
MODEL_RUN_ID = "model_run_id"
QUARANTINE_RULE = "quarantine_rule"
QUARANTINE_REASON = "quarantine_reason"

RAW_CUSTOMERS = T.StructType(
    [
        T.StructField(CUSTOMER_ID, T.LongType(), False),
        T.StructField(UPDATED_AT, T.TimestampType(), False),
        T.StructField(NAME, T.StringType(), True),
        T.StructField(EMAIL, T.StringType(), True),
        T.StructField(PHONE, T.StringType(), True),
        T.StructField(SEGMENT, T.StringType(), True),
        T.StructField(REGION, T.StringType(), True),
        T.StructField(CREDIT_LIMIT, T.DoubleType(), True),
        T.StructField(SIGNUP_TS, T.TimestampType(), True),
    ]
)

RAW_EVENTS = T.StructType(
    [
        T.StructField(EVENT_ID, T.LongType(), False),
        T.StructField(CUSTOMER_ID, T.LongType(), True),
        T.StructField(EVENT_TS, T.TimestampType(), True),
        T.StructField(AMOUNT, T.DoubleType(), True),
        T.StructField(CHANNEL, T.StringType(), True),
        T.StructField(CATEGORY, T.StringType(), True),
        T.StructField(NOTE, T.StringType(), True),
    ]
)

RAW_LABELS = T.StructType(
    [
        T.StructField(CUSTOMER_ID, T.LongType(), False),
        T.StructField(LABEL_TS, T.TimestampType(), False),
        T.StructField(LABEL, T.IntegerType(), False),
        T.StructField(LABEL_AVAILABLE_AT, T.TimestampType(), False),
    ]
)

RAW_CUSTOMER_CHANNELS = T.StructType(
    [
        T.StructField(CUSTOMER, T.LongType(), False),
        T.StructField(CHANNEL, T.StringType(), False),
        T.StructField(SINCE, T.TimestampType(), True),
    ]
)

RAW_CHANNEL_SPEND = T.StructType(
    [
        T.StructField(CUSTOMER, T.LongType(), False),
        T.StructField(CHANNEL, T.StringType(), False),
        T.StructField(LABEL_TS, T.TimestampType(), False),
        T.StructField(SPEND, T.DoubleType(), False),
        T.StructField(LABEL_AVAILABLE_AT, T.TimestampType(), False),
    ]
)


def struct_of(columns: Mapping[str, str]) -> T.StructType:
    """A schema from column name -> Spark type name (`bigint`, `timestamp`, ... as conf declares them)."""
    return T.StructType([T.StructField(name, T._parse_datatype_string(type_name), True) for name, type_name in columns.items()])
