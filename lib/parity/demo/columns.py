"""The demo's column names and the contracts of its sample sources (customers, events, churn
labels, customer channels, channel spend).

The library knows none of these: a model's keys, times and label come from its declaration, a
source's columns from its contract in conf. The platform's own names (`parity.core.columns`:
the score time, predictions and quarantine columns) are re-exported here, so 0.1's
`parity.schema`, now an alias of this module, keeps every name it had.
"""

from __future__ import annotations

from pyspark.sql import types as T

from parity.core.columns import (  # re-exported: the platform's names, for parity.schema's users
    FEATURE_TS as FEATURE_TS,
)
from parity.core.columns import (
    MODEL_NAME as MODEL_NAME,
)
from parity.core.columns import (
    MODEL_RUN_ID as MODEL_RUN_ID,
)
from parity.core.columns import (
    MODEL_VERSION as MODEL_VERSION,
)
from parity.core.columns import (
    PREDICTION as PREDICTION,
)
from parity.core.columns import (
    QUARANTINE_REASON as QUARANTINE_REASON,
)
from parity.core.columns import (
    QUARANTINE_RULE as QUARANTINE_RULE,
)
from parity.core.columns import (
    SCORE_TS as SCORE_TS,
)
from parity.core.columns import (
    struct_of as struct_of,
)

# keys and times
CUSTOMER_ID = "customer_id"
EVENT_ID = "event_id"
EVENT_TS = "event_ts"
UPDATED_AT = "updated_at"
LABEL_TS = "label_ts"
LABEL = "label"
LABEL_AVAILABLE_AT = "label_available_at"

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
PII_COLUMNS = (NAME, EMAIL, PHONE)  # declared as raw.customers' pii in conf/base.yaml

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
