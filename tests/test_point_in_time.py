"""Point-in-time correctness: labels see features as of their time, never later, and are never dropped."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from parity.asof import FeatureLookup, as_of_join, assemble_features
from parity.conf import Settings
from parity.features import compute_feature_set
from parity.quality import MissingColumnsError
from parity.schema import RAW_EVENTS

TS = dt.datetime
SPINE = "label_id INT, customer_id LONG, label_ts TIMESTAMP"
FEATURES = "customer_id LONG, feature_ts TIMESTAMP, v INT"


@pytest.fixture()
def feature_rows(spark: SparkSession):
    return spark.createDataFrame(
        [
            (1, TS(2026, 1, 9), 1),
            (1, TS(2026, 1, 10), 2),  # exactly at the first label's time
            (1, TS(2026, 1, 11), 3),  # after it
            (3, TS(2026, 2, 1), 30),  # only after entity 3's label
        ],
        FEATURES,
    )


def test_as_of_join_edge_cases(spark: SparkSession, feature_rows) -> None:
    spine = spark.createDataFrame(
        [
            (1, 1, TS(2026, 1, 10)),  # feature row at exactly this time is known: v=2
            (2, 1, TS(2026, 1, 9, 12)),  # second label of the same entity, earlier: v=1
            (3, 1, TS(2026, 1, 10)),  # duplicate of label 1: kept, not merged
            (4, 2, TS(2026, 1, 10)),  # entity with no history: kept with nulls
            (5, 3, TS(2026, 1, 15)),  # entity whose only row is later: nulls
            (6, 1, TS(2026, 3, 1)),  # long after: newest row, v=3
            (7, 1, TS(2026, 1, 8)),  # before any row: nulls
        ],
        SPINE,
    )
    expected = spark.createDataFrame(
        [(1, 1, TS(2026, 1, 10), 2), (2, 1, TS(2026, 1, 9, 12), 1), (3, 1, TS(2026, 1, 10), 2), (4, 2, TS(2026, 1, 10), None),
         (5, 3, TS(2026, 1, 15), None), (6, 1, TS(2026, 3, 1), 3), (7, 1, TS(2026, 1, 8), None)],
        SPINE + ", v INT",
    )
    actual = as_of_join(spine, feature_rows, entity="customer_id", spine_ts="label_ts", feature_ts="feature_ts", columns=["v"])
    assertDataFrameEqual(actual, expected)


def test_max_age_nulls_stale_features_but_keeps_the_row(spark: SparkSession, feature_rows) -> None:
    spine = spark.createDataFrame([(1, 1, TS(2026, 1, 12)), (2, 1, TS(2026, 1, 20))], SPINE)
    expected = spark.createDataFrame([(1, 1, TS(2026, 1, 12), 3), (2, 1, TS(2026, 1, 20), None)], SPINE + ", v INT")
    actual = as_of_join(
        spine, feature_rows, entity="customer_id", spine_ts="label_ts", feature_ts="feature_ts", columns=["v"],
        max_age=dt.timedelta(days=5),
    )
    assertDataFrameEqual(actual, expected)


def test_as_of_join_names_missing_columns(spark: SparkSession, feature_rows) -> None:
    spine = spark.createDataFrame([(1, 1)], "label_id INT, customer_id LONG")
    with pytest.raises(MissingColumnsError, match="label_ts"):
        as_of_join(spine, feature_rows, entity="customer_id", spine_ts="label_ts", feature_ts="feature_ts", columns=["v"])


def _oracle(spine: list[tuple], features: list[tuple]) -> list[tuple]:
    """Brute force: for each label, the value of the newest feature row at or before it."""
    out = []
    for label_id, entity, ts in spine:
        known = [(fts, v) for e, fts, v in features if e == entity and fts <= ts]
        out.append((label_id, entity, ts, max(known)[1] if known else None))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_as_of_join_matches_a_brute_force_oracle(spark: SparkSession, seed: int) -> None:
    rng = random.Random(seed)
    base = TS(2026, 1, 1)

    def when() -> dt.datetime:  # coarse times so that ties between labels and features are common
        return base + dt.timedelta(hours=6 * rng.randrange(0, 40))

    features = {(rng.randrange(1, 6), when()) for _ in range(60)}  # unique (entity, time) keys
    feature_rows = [(e, t, i) for i, (e, t) in enumerate(sorted(features))]
    spine = [(i, rng.randrange(1, 8), when()) for i in range(80)]
    actual = as_of_join(
        spark.createDataFrame(spine, SPINE), spark.createDataFrame(feature_rows, FEATURES),
        entity="customer_id", spine_ts="label_ts", feature_ts="feature_ts", columns=["v"],
    )
    assertDataFrameEqual(actual, spark.createDataFrame(_oracle(spine, feature_rows), SPINE + ", v INT"))


def test_events_at_or_after_the_label_time_never_reach_its_features(spark: SparkSession, settings: Settings) -> None:
    events = spark.createDataFrame(
        [
            (1, 1, TS(2026, 1, 8, 10), 10.0, "web", "fees", None),
            (2, 1, TS(2026, 1, 9, 23, 59, 59), 20.0, "web", "fees", None),  # last second before the label
            (3, 1, TS(2026, 1, 10), 400.0, "web", "fees", None),  # exactly at the label time
            (4, 1, TS(2026, 1, 12), 800.0, "web", "fees", None),  # after it
        ],
        RAW_EVENTS,
    )
    decl = settings.feature_sets["customer_activity"]
    activity = compute_feature_set(decl, events)
    spine = spark.createDataFrame([(1, 1, TS(2026, 1, 10)), (2, 2, TS(2026, 1, 10))], SPINE)
    assembled = assemble_features(spine, [FeatureLookup(decl, 0, activity)], spine_ts="label_ts")
    rows = {r["label_id"]: r for r in assembled.collect()}
    assert (rows[1]["n_events_7d"], rows[1]["amount_sum_7d"], rows[1]["n_events_1d"]) == (2, 30.0, 1)
    assert rows[1]["days_since_last_event"] == pytest.approx(1 / 86400)  # the event one second before
    assert rows[1]["customer_activity_as_of"] == TS(2026, 1, 10)
    assert rows[2]["n_events_7d"] is None  # customer 2 has no history: its label is kept, with nulls
    assert rows[2]["customer_activity_as_of"] is None
    assert assembled.count() == 2


def test_ties_and_null_times_in_feature_rows(spark: SparkSession) -> None:
    features = spark.createDataFrame(
        [(1, TS(2026, 1, 5), 7), (1, TS(2026, 1, 5), 9), (1, None, 100), (None, TS(2026, 1, 1), 50)], FEATURES
    )
    spine = spark.createDataFrame([(1, 1, TS(2026, 1, 6)), (2, 1, TS(2026, 1, 4))], SPINE)
    actual = as_of_join(spine, features, entity="customer_id", spine_ts="label_ts", feature_ts="feature_ts", columns=["v"])
    # two rows at one time resolve to the same one every run; a row without a time is never "known"
    expected = spark.createDataFrame([(1, 1, TS(2026, 1, 6), 9), (2, 1, TS(2026, 1, 4), None)], SPINE + ", v INT")
    assertDataFrameEqual(actual, expected)
