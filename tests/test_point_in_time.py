"""Point-in-time correctness: labels see features as of their time, never later, and are never dropped."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.testing import assertDataFrameEqual

from parity.core.conf import FeatureSetDecl, Settings
from parity.core.durations import floor_to_grain, parse_duration
from parity.demo.columns import RAW_EVENTS
from parity.features import compute_feature_set
from parity.features.asof import AsOfJoin, FeatureLookup, as_of_join, assemble_features
from parity.features.quality import MissingColumnsError

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


STRATEGIES = pytest.mark.parametrize("strategy", ["broadcast", "sort"])


@STRATEGIES
def test_as_of_join_edge_cases(spark: SparkSession, feature_rows, strategy: str) -> None:
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
        [
            (1, 1, TS(2026, 1, 10), 2),
            (2, 1, TS(2026, 1, 9, 12), 1),
            (3, 1, TS(2026, 1, 10), 2),
            (4, 2, TS(2026, 1, 10), None),
            (5, 3, TS(2026, 1, 15), None),
            (6, 1, TS(2026, 3, 1), 3),
            (7, 1, TS(2026, 1, 8), None),
        ],
        SPINE + ", v INT",
    )
    actual = as_of_join(
        spine,
        feature_rows,
        AsOfJoin(entity="customer_id", spine_ts="label_ts", feature_ts="feature_ts", columns=["v"]),
        strategy=strategy,
    )
    assertDataFrameEqual(actual, expected)


@STRATEGIES
def test_max_age_nulls_stale_features_but_keeps_the_row(
    spark: SparkSession, feature_rows, strategy: str
) -> None:
    spine = spark.createDataFrame([(1, 1, TS(2026, 1, 12)), (2, 1, TS(2026, 1, 20))], SPINE)
    expected = spark.createDataFrame(
        [(1, 1, TS(2026, 1, 12), 3), (2, 1, TS(2026, 1, 20), None)], SPINE + ", v INT"
    )
    actual = as_of_join(
        spine,
        feature_rows,
        AsOfJoin(
            entity="customer_id",
            spine_ts="label_ts",
            feature_ts="feature_ts",
            columns=["v"],
            max_age=dt.timedelta(days=5),
        ),
        strategy=strategy,
    )
    assertDataFrameEqual(actual, expected)


def test_as_of_join_names_missing_columns(spark: SparkSession, feature_rows) -> None:
    spine = spark.createDataFrame([(1, 1)], "label_id INT, customer_id LONG")
    with pytest.raises(MissingColumnsError, match="label_ts"):
        as_of_join(
            spine,
            feature_rows,
            AsOfJoin(entity="customer_id", spine_ts="label_ts", feature_ts="feature_ts", columns=["v"]),
        )


def _oracle(spine: list[tuple], features: list[tuple], max_age: dt.timedelta | None) -> list[tuple]:
    """Brute force: for each label, the value of the newest feature row that existed and had
    landed at its time, the newest landing first among versions, the greatest value on ties."""
    out = []
    for label_id, entity, ts in spine:
        known = [
            (fts, landed, v)
            for e, fts, landed, v in features
            if e == entity and fts <= ts and landed <= ts and (max_age is None or fts >= ts - max_age)
        ]
        out.append((label_id, entity, ts, max(known)[2] if known else None))
    return out


BASE = TS(2026, 3, 28, 18)  # a grid of 6 hours across day (and month) boundaries, all UTC
WHEN = st.integers(0, 40).map(lambda steps: BASE + dt.timedelta(hours=6 * steps))
FEATURE_ROW = st.tuples(st.integers(1, 4), WHEN, st.sampled_from([0, 0, 0, 6, 30, 200]), st.integers(0, 9))
LABEL = st.tuples(st.integers(1, 6), WHEN)


@examples(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(FEATURE_ROW, max_size=30),
    labels=st.lists(LABEL, min_size=1, max_size=25),
    known_at=st.booleans(),
    max_age_hours=st.sampled_from([None, 24, 72]),
    strategy=st.sampled_from(["broadcast", "sort"]),
)
def test_as_of_join_matches_a_brute_force_oracle(
    spark: SparkSession, rows, labels, known_at, max_age_hours, strategy
) -> None:
    """Labels at, before and after feature rows; rows that land hours late; several versions of
    one row; duplicate times; entities without history; day boundaries."""
    features = [(e, t, t + dt.timedelta(hours=late) if known_at else t, v) for e, t, late, v in rows]
    spine = [(i, e, t) for i, (e, t) in enumerate(labels)]
    max_age = dt.timedelta(hours=max_age_hours) if max_age_hours else None
    actual = as_of_join(
        spark.createDataFrame(spine, SPINE),
        spark.createDataFrame(features, "customer_id LONG, feature_ts TIMESTAMP, landed_at TIMESTAMP, v INT"),
        AsOfJoin(
            entity="customer_id",
            spine_ts="label_ts",
            feature_ts="feature_ts",
            columns=["v"],
            max_age=max_age,
            available_at="landed_at" if known_at else None,
        ),
        strategy=strategy,
    )
    assertDataFrameEqual(actual, spark.createDataFrame(_oracle(spine, features, max_age), SPINE + ", v INT"))


def _windowed_set(name: str, grain: str, windows: list[str]) -> FeatureSetDecl:
    return FeatureSetDecl.model_validate(
        {
            "name": name,
            "description": "event counts",
            "table": f"features.{name}",
            "source": "raw.x",
            "entity": ["customer_id"],
            "event_time": "event_ts",
            "grain": grain,
            "transforms": [
                {
                    "fn": "parity.transforms.add_rolling_aggregates",
                    "params": {
                        "entity": "customer_id",
                        "time_column": "event_ts",
                        "windows": windows,
                        "output": "feature_ts",
                        "aggregates": [{"column": "amount", "fn": "count", "name": "n"}],
                    },
                }
            ],
            "features": [
                {"name": f"n_{w}", "type": "bigint", "description": f"events in {w}"} for w in windows
            ],
        }
    )


CASE_KEYS = 100  # in tests that batch cases, each case's keys are its own: case i holds i * CASE_KEYS + 1 ...
MINUTE = st.integers(0, 6 * 24 * 60).map(lambda m: BASE + dt.timedelta(minutes=m))


HOUR_AND_DAY_CASE = st.tuples(
    st.lists(st.tuples(st.integers(1, 3), MINUTE), max_size=30),
    st.lists(
        st.tuples(st.integers(1, 4), MINUTE.map(lambda t: t + dt.timedelta(hours=12))),
        min_size=1,
        max_size=20,
    ),
)


@examples(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(HOUR_AND_DAY_CASE, min_size=7, max_size=7))
def test_hour_and_day_sets_in_one_training_set_see_exactly_the_events_before_the_label(
    spark: SparkSession, cases
) -> None:
    """An hour-grain set (6h and 30h windows, which straddle midnights) and a day-grain set
    (1d, 3d) joined onto one spine: each label sees the events of the whole hours, and of the
    whole days, before it, as brute force counts them.

    Each example computes seven independent cases at once (their entities kept apart), so one
    Spark run checks what seven would (the first example is the minimal one)."""
    events = [(e + i * CASE_KEYS, t) for i, (case_events, _) in enumerate(cases) for e, t in case_events]
    labels = [(e + i * CASE_KEYS, t) for i, (_, case_labels) in enumerate(cases) for e, t in case_labels]
    frame = spark.createDataFrame(
        [(e, t, 1.0) for e, t in events], "customer_id LONG, event_ts TIMESTAMP, amount DOUBLE"
    )
    sets = {"hourly": ("hour", ["6h", "30h"]), "daily": ("day", ["1d", "3d"])}
    lookups = []
    for name, (grain, windows) in sets.items():
        decl = _windowed_set(name, grain, windows)
        lookups.append(FeatureLookup(decl, 0, compute_feature_set(decl, frame), prefix=f"{name}_"))
    spine = [(i, e, t) for i, (e, t) in enumerate(labels)]
    actual = assemble_features(spark.createDataFrame(spine, SPINE), lookups, spine_ts="label_ts")
    columns = [f"{name}_n_{w}" for name, (_, windows) in sets.items() for w in windows]
    got = {r.label_id: tuple(r[c] for c in columns) for r in actual.collect()}
    expected = {}
    for i, entity, t in spine:
        values: list[int | None] = []
        for grain, windows in sets.values():
            end = floor_to_grain(t, grain)  # the newest complete period at the label's time
            mine = [ts for e, ts in events if e == entity and ts < end]
            values += [sum(end - parse_duration(w) <= ts for ts in mine) if mine else None for w in windows]
        expected[i] = tuple(values)
    assert got == expected


def test_events_at_or_after_the_label_time_never_reach_its_features(
    spark: SparkSession, settings: Settings
) -> None:
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


@STRATEGIES
def test_ties_and_null_times_in_feature_rows(spark: SparkSession, strategy: str) -> None:
    features = spark.createDataFrame(
        [(1, TS(2026, 1, 5), 7), (1, TS(2026, 1, 5), 9), (1, None, 100), (None, TS(2026, 1, 1), 50)], FEATURES
    )
    spine = spark.createDataFrame([(1, 1, TS(2026, 1, 6)), (2, 1, TS(2026, 1, 4))], SPINE)
    actual = as_of_join(
        spine,
        features,
        AsOfJoin(entity="customer_id", spine_ts="label_ts", feature_ts="feature_ts", columns=["v"]),
        strategy=strategy,
    )
    # two rows at one time resolve to the same one every run; a row without a time is never "known"
    expected = spark.createDataFrame(
        [(1, 1, TS(2026, 1, 6), 9), (2, 1, TS(2026, 1, 4), None)], SPINE + ", v INT"
    )
    assertDataFrameEqual(actual, expected)


@STRATEGIES
def test_an_entity_of_several_keys(spark: SparkSession, strategy: str) -> None:
    features = spark.createDataFrame(
        [("a", 1, TS(2026, 1, 1), 10), ("a", 2, TS(2026, 1, 1), 20), ("a", 1, TS(2026, 1, 3), 11)],
        "shop STRING, till INT, feature_ts TIMESTAMP, v INT",
    )
    spine = spark.createDataFrame(
        [
            (1, "a", 1, TS(2026, 1, 2)),
            (2, "a", 2, TS(2026, 1, 4)),
            (3, "a", 1, TS(2026, 1, 4)),
            (4, "b", 1, TS(2026, 1, 4)),
        ],
        "label_id INT, shop STRING, till INT, label_ts TIMESTAMP",
    )
    actual = as_of_join(
        spine,
        features,
        AsOfJoin(entity=["shop", "till"], spine_ts="label_ts", feature_ts="feature_ts", columns=["v"]),
        strategy=strategy,
    )
    expected = spark.createDataFrame(
        [
            (1, "a", 1, TS(2026, 1, 2), 10),
            (2, "a", 2, TS(2026, 1, 4), 20),
            (3, "a", 1, TS(2026, 1, 4), 11),
            (4, "b", 1, TS(2026, 1, 4), None),
        ],
        "label_id INT, shop STRING, till INT, label_ts TIMESTAMP, v INT",
    )
    assertDataFrameEqual(actual, expected)


def _tiny_set(name: str, entity: str, max_age_days: int | None) -> FeatureSetDecl:
    return FeatureSetDecl.model_validate(
        {
            "name": name,
            "description": "a test set",
            "table": f"features.{name}",
            "source": "raw.x",
            "entity": [entity],
            "event_time": "feature_ts",
            "max_age_days": max_age_days,
            "transforms": [
                {
                    "fn": "parity.transforms.with_alias",
                    "params": {"column": "feature_ts", "output": "feature_ts"},
                }
            ],
            "features": [{"name": "v", "type": "int", "description": "a value"}],
        }
    )


THREE_LOOKUPS_CASE = st.tuples(
    st.lists(FEATURE_ROW, max_size=20),
    st.lists(FEATURE_ROW, max_size=20),
    st.lists(FEATURE_ROW, max_size=20),
    st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6), WHEN), min_size=1, max_size=20),
)


@examples(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(THREE_LOOKUPS_CASE, min_size=5, max_size=5))
def test_three_lookups_through_renamed_keys_and_prefixes_match_the_oracle(spark: SparkSession, cases) -> None:
    """Two sets on the spine's customer_id (one with a TTL, both with a feature named v), and a
    third on another spine column (account) through a renamed key. Every value is the oracle's.

    Each example joins five independent cases at once (their keys kept apart), so one Spark
    run checks what five would (the first example is the minimal one, as Hypothesis always tries)."""
    a, b, c, spine_rows = [], [], [], []
    for i, (rows_a, rows_b, rows_c, labels) in enumerate(cases):
        shift = i * CASE_KEYS
        for rows, into in ((rows_a, a), (rows_b, b), (rows_c, c)):
            into += [(e + shift, ts, landed, v) for e, ts, landed, v in rows]
        spine_rows += [
            (len(spine_rows) + n, customer + shift, account + shift, ts)
            for n, (customer, account, ts) in enumerate(labels)
        ]
    spine = spark.createDataFrame(
        spine_rows, "label_id INT, customer_id LONG, account LONG, label_ts TIMESTAMP"
    )
    tables = {}
    for name, rows, entity in (("a", a, "customer_id"), ("b", b, "customer_id"), ("c", c, "holder")):
        tables[name] = spark.createDataFrame(
            [(e, ts, v) for e, ts, _, v in rows], f"{entity} LONG, feature_ts TIMESTAMP, v INT"
        )
    lookups = [
        FeatureLookup(_tiny_set("a", "customer_id", 1), 0, tables["a"]),
        FeatureLookup(_tiny_set("b", "customer_id", None), 0, tables["b"], prefix="b_"),
        FeatureLookup(_tiny_set("c", "holder", 3), 0, tables["c"], keys={"holder": "account"}, prefix="c_"),
    ]
    shared = assemble_features(spine, lookups, spine_ts="label_ts", strategy="sort")
    assert shared.columns[:4] == ["label_id", "customer_id", "account", "label_ts"]

    def oracle(rows: list[tuple], key: int, ts: dt.datetime, max_age_days: int | None) -> int | None:
        known = [
            (fts, v)
            for e, fts, _, v in rows
            if e == key
            and fts <= ts
            and (max_age_days is None or fts >= ts - dt.timedelta(days=max_age_days))
        ]
        return max(known)[1] if known else None

    got = {r.label_id: (r.v, r.b_v, r.c_v) for r in shared.collect()}
    assert len(got) == len(spine_rows)
    for label_id, customer, account, ts in spine_rows:
        assert got[label_id] == (
            oracle(a, customer, ts, 1),
            oracle(b, customer, ts, None),
            oracle(c, account, ts, 3),
        ), label_id
    # The broadcast strategy: the same rows.
    assertDataFrameEqual(
        assemble_features(spine, lookups, spine_ts="label_ts", strategy="broadcast").select(*shared.columns),
        shared,
    )
