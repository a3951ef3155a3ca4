"""Unit tests of the transform library on tiny inline DataFrames, and a brute-force oracle for windows."""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from parity.core.commits import session_conf
from parity.core.durations import floor_to_grain, parse_duration
from parity.features import rolling, transforms

TS = dt.datetime
EVENTS = "customer_id LONG, event_ts TIMESTAMP, amount DOUBLE, category STRING"
AGGREGATES = [
    {"column": "amount", "fn": "count", "name": "n"},
    {"column": "amount", "fn": "sum"},
    {"column": "amount", "fn": "mean"},
    {"column": "amount", "fn": "min"},
    {"column": "amount", "fn": "max"},
    {"column": "category", "fn": "count_distinct", "name": "categories"},
]


def test_with_redacted_text_masks_emails_and_phones(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [
            (1, "please email me at ana.ng12@example.com"),
            (2, "call me back on +1-555-0012345"),
            (3, "card declined"),
            (4, None),
        ],
        "id INT, note STRING",
    )
    expected = spark.createDataFrame(
        [
            (1, "please email me at [EMAIL]", True),
            (2, "call me back on [PHONE]", True),
            (3, "card declined", False),
            (4, None, False),
        ],
        "id INT, note STRING, has_pii BOOLEAN",
    )
    assertDataFrameEqual(transforms.with_redacted_text(df, column="note", flag_column="has_pii"), expected)


def test_text_features_are_measured_after_redaction(spark: SparkSession) -> None:
    df = spark.createDataFrame([(1, "mail ana@example.com now"), (2, "  "), (3, None)], "id INT, note STRING")
    expected = spark.createDataFrame(
        [(1, "mail [EMAIL] now", 1, 16, 3), (2, "  ", 0, 2, 0), (3, None, 0, 0, 0)],
        "id INT, note STRING, note_has_contact INT, note_length INT, note_words INT",
    )
    assertDataFrameEqual(transforms.with_text_features(df, column="note", prefix="note"), expected)


def test_category_indicators_and_buckets(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(1, "web", 5.0), (2, "phone", 10.0), (3, None, 250.0), (4, "web", None)],
        "id INT, channel STRING, amount DOUBLE",
    )
    expected = spark.createDataFrame(
        [
            (1, "web", 5.0, 1, 0, 0),
            (2, "phone", 10.0, 0, 1, 1),
            (3, None, 250.0, 0, 0, 3),
            (4, "web", None, 1, 0, None),
        ],
        "id INT, channel STRING, amount DOUBLE, ch_web INT, ch_phone INT, band INT",
    )
    actual = transforms.with_category_indicators(
        df, column="channel", values=["web", "phone"], prefix="ch"
    ).transform(transforms.with_buckets, column="amount", boundaries=[10, 50, 200], output="band")
    assertDataFrameEqual(actual, expected)


def test_ratio_is_null_for_a_zero_denominator(spark: SparkSession) -> None:
    df = spark.createDataFrame([(6, 3), (1, 0), (None, 2)], "a LONG, b LONG")
    expected = spark.createDataFrame([(6, 3, 2.0), (1, 0, None), (None, 2, None)], "a LONG, b LONG, r DOUBLE")
    assertDataFrameEqual(transforms.with_ratio(df, numerator="a", denominator="b", output="r"), expected)


def test_time_since_in_days_and_hours(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(TS(2026, 3, 1), TS(2026, 2, 27, 12)), (TS(2026, 3, 1), None)], "t TIMESTAMP, s TIMESTAMP"
    )
    days = transforms.with_time_since(df, as_of_column="t", column="s", output="d")
    hours = transforms.with_time_since(df, as_of_column="t", column="s", output="h", unit="hours")
    assert [r.d for r in days.collect()] == [1.5, None]
    assert [r.h for r in hours.collect()] == [36.0, None]


def test_window_aggregates_emit_a_row_where_a_value_changes(spark: SparkSession) -> None:
    events = spark.createDataFrame(
        [
            (1, TS(2026, 1, 1, 9), 10.0, "a"),
            (1, TS(2026, 1, 1, 23, 59, 59), 30.0, "b"),
            (1, TS(2026, 1, 3), 5.0, "a"),  # midnight belongs to Jan 3
        ],
        EVENTS,
    )
    actual = transforms.add_window_aggregates(
        events,
        entity="customer_id",
        time_column="event_ts",
        windows_days=[2],
        aggregates=AGGREGATES[:3],
        output="feature_ts",
        last_event_output="last_event_ts",
    )
    # Rows at the end of Jan 1 (events), Jan 3 (an event; Jan 1 left the 2-day window that
    # day too) and Jan 5 (Jan 3 left it), each stamped at the midnight after its day.
    expected = spark.createDataFrame(
        [
            (1, TS(2026, 1, 2), 2, 40.0, 20.0, TS(2026, 1, 1, 23, 59, 59)),
            (1, TS(2026, 1, 4), 1, 5.0, 5.0, TS(2026, 1, 3)),
            (1, TS(2026, 1, 6), 0, 0.0, None, TS(2026, 1, 3)),
        ],
        "customer_id LONG, feature_ts TIMESTAMP, n_2d LONG, amount_sum_2d DOUBLE, amount_mean_2d DOUBLE, "
        "last_event_ts TIMESTAMP",
    )
    assertDataFrameEqual(actual, expected)
    assert transforms.history_days(transforms.add_window_aggregates, {"windows_days": [1, 7, 30]}) == 30
    assert transforms.history_days(transforms.with_ratio, {}) == 0


def _oracle(events: list[tuple], windows: list[dt.timedelta], as_of: dt.datetime) -> dict[tuple, tuple]:
    """Brute force over the raw events: every window aggregate per entity, as of `as_of` (the
    end of a period): a window of length W holds the events in [as_of - W, as_of)."""
    out = {}
    for entity in sorted({e[0] for e in events}):
        mine = [e for e in events if e[0] == entity and e[1] < as_of]
        if not mine:
            continue
        values = []
        for length in windows:
            since = as_of - length
            inside = [e for e in mine if e[1] >= since]
            amounts = [e[2] for e in inside if e[2] is not None]
            values += [
                len(amounts),
                round(sum(amounts), 6),
                round(sum(amounts) / len(amounts), 6) if amounts else None,
                min(amounts, default=None),
                max(amounts, default=None),
                len({e[3] for e in inside if e[3] is not None}),
            ]
        out[(entity,)] = (*values, max(e[1] for e in mine))
    return out


EVENT = st.tuples(
    st.integers(1, 4),
    st.datetimes(min_value=TS(2026, 1, 1), max_value=TS(2026, 1, 20)).map(
        lambda t: t.replace(microsecond=0, second=0)
    ),
    st.one_of(st.none(), st.integers(0, 500).map(lambda c: c / 4)),
    st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
)


@examples(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(EVENT, min_size=1, max_size=40),
    windows=st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True),
    as_of_day=st.integers(1, 30),
)
def test_window_aggregates_match_a_brute_force_oracle(
    spark: SparkSession, events, windows, as_of_day
) -> None:
    """As-of any day end, the newest row of each entity holds exactly what brute force computes."""
    as_of = TS(2026, 1, 1) + dt.timedelta(days=as_of_day)
    rows = transforms.add_window_aggregates(
        spark.createDataFrame(events, EVENTS),
        entity="customer_id",
        time_column="event_ts",
        windows_days=windows,
        aggregates=AGGREGATES,
        output="feature_ts",
        last_event_output="last_event_ts",
    ).filter(f"feature_ts <= TIMESTAMP '{as_of}'")
    names = transforms.window_aggregate_names(windows, AGGREGATES)
    latest: dict[tuple, tuple] = {}
    for row in sorted(rows.collect(), key=lambda r: r.feature_ts):
        values = tuple(round(v, 6) if isinstance(v, float) else v for v in (row[n] for n in names))
        latest[(row.customer_id,)] = (*values, row.last_event_ts)
    assert latest == _oracle(events, [dt.timedelta(days=w) for w in sorted(windows)], as_of)


def _newest_per_entity(rows: list, names: list[str]) -> dict[tuple, tuple]:  # type: ignore[type-arg]
    latest: dict[tuple, tuple] = {}
    for row in sorted(rows, key=lambda r: r.feature_ts):
        values = tuple(round(v, 6) if isinstance(v, float) else v for v in (row[n] for n in names))
        latest[(row.customer_id,)] = (*values, row.last_event_ts)
    return latest


WINDOWS = {"hour": ["1h", "2h", "6h", "30h", "1d"], "day": ["1d", "2d", "3d"]}
GRAIN_AND_WINDOWS = st.sampled_from(["hour", "day"]).flatmap(
    lambda grain: st.tuples(
        st.just(grain), st.lists(st.sampled_from(WINDOWS[grain]), min_size=1, max_size=3, unique=True)
    )
)


@examples(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(
        EVENT.map(lambda e: (e[0], TS(2026, 1, 1) + (e[1] - TS(2026, 1, 1)) / 4, *e[2:])),
        min_size=1,
        max_size=40,
    ),
    grain_and_windows=GRAIN_AND_WINDOWS,
    as_of_hour=st.integers(1, 6 * 24),
)
def test_rolling_aggregates_at_hour_and_day_grain_match_a_brute_force_oracle(
    spark: SparkSession, events, grain_and_windows, as_of_hour
) -> None:
    """As of the end of any hour or day, the newest row of each entity holds exactly what brute
    force computes over the events of its windows (hour windows straddle midnights); at day
    grain the rows are those of add_window_aggregates."""
    grain, windows = grain_and_windows
    as_of = floor_to_grain(TS(2026, 1, 1) + dt.timedelta(hours=as_of_hour), grain)
    frame = spark.createDataFrame(events, EVENTS)
    built = transforms.add_rolling_aggregates(
        frame,
        entity="customer_id",
        time_column="event_ts",
        windows=windows,
        grain=grain,
        aggregates=AGGREGATES,
        output="feature_ts",
        last_event_output="last_event_ts",
    )
    assert built.filter(
        F.col("feature_ts") != F.date_trunc(grain, "feature_ts")
    ).isEmpty()  # stamped at the end of a period
    rows = built.filter(f"feature_ts <= TIMESTAMP '{as_of}'").collect()
    names = transforms.rolling_aggregate_names(windows, AGGREGATES, grain)
    assert _newest_per_entity(rows, names) == _oracle(
        events, sorted(parse_duration(w) for w in windows), as_of
    )
    if grain == "day":
        days = [parse_duration(w).days for w in windows]
        same = transforms.add_window_aggregates(
            frame,
            entity="customer_id",
            time_column="event_ts",
            windows_days=days,
            aggregates=AGGREGATES,
            output="feature_ts",
            last_event_output="last_event_ts",
        )
        assertDataFrameEqual(built, same.toDF(*built.columns))


NUMERIC = [
    *AGGREGATES[:5],  # count, sum, mean, min and max of the amount
    {"column": "units", "fn": "sum"},
    {"column": "units", "fn": "mean"},
    {"column": "units", "fn": "max"},
    {"column": "channel", "fn": "count"},
    {"column": "channel", "fn": "count_distinct"},
]
KEYED_EVENTS = "region string, customer_id int, event_ts timestamp, amount double, units int, channel string"
KEYED_EVENT = st.tuples(
    st.sampled_from(
        ["north", "e10", "e2", None]
    ),  # strings sort apart from their groups' order; null keys group too
    st.integers(1, 3),
    st.datetimes(min_value=TS(2025, 12, 31), max_value=TS(2026, 1, 6)),
    st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: round(v, 3))),
    st.one_of(st.none(), st.integers(-5, 500)),
    st.one_of(st.none(), st.sampled_from(["web", "store", "phone"])),
)


@examples(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(KEYED_EVENT, min_size=1, max_size=60), grain_and_windows=GRAIN_AND_WINDOWS)
def test_the_arrow_engine_gives_the_spark_engines_rows_to_the_bit(
    spark: SparkSession, events, grain_and_windows
) -> None:
    """Every aggregate (sums, means, minima and maxima of float and integer columns, counts and
    distinct counts of a string column), two entity keys, hour and day
    grain: the Arrow engine (polars per chunk of whole entities) returns exactly the rows of Spark's
    operators, to the last bit of every float (the sums are exact integer sums in both)."""
    grain, windows = grain_and_windows
    frame = spark.createDataFrame(events, KEYED_EVENTS)
    params = {
        "entity": ["region", "customer_id"],
        "time_column": "event_ts",
        "windows": windows,
        "grain": grain,
        "aggregates": NUMERIC,
        "output": "feature_ts",
        "last_event_output": "last_event_ts",
    }
    arrow = transforms.add_rolling_aggregates(frame, engine="arrow", **params)
    spark_rows = transforms.add_rolling_aggregates(frame, engine="spark", **params)
    assert arrow.dtypes == spark_rows.dtypes
    key = lambda row: (row.region is None, row.region or "", row.customer_id, row.feature_ts)  # noqa: E731
    assert sorted(arrow.collect(), key=key) == sorted(spark_rows.collect(), key=key)


def test_the_engines_agree_on_thousands_of_random_amounts(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One larger sample, so that many floating-point sums and means are compared to the bit,
    computed by the Arrow engine in chunks of about 50 events cut from batches of 16."""
    monkeypatch.setattr(rolling, "CHUNK_ROWS", 50)
    rng = random.Random(14)
    events = [
        (
            rng.choice(["north", "south"]),
            rng.randint(1, 40),
            TS(2026, 1, 1) + dt.timedelta(minutes=rng.randint(0, 14 * 24 * 60)),
            round(rng.uniform(-1e4, 1e4), rng.randint(0, 6)),
            rng.randint(-9, 9),
            rng.choice(["web", "store", None]),
        )
        for _ in range(3_000)
    ]
    frame = spark.createDataFrame(events, KEYED_EVENTS)
    params = {
        "entity": ["region", "customer_id"],
        "time_column": "event_ts",
        "windows": ["1d", "3d", "7d"],
        "aggregates": NUMERIC,
        "output": "feature_ts",
    }
    with session_conf(spark, {"spark.sql.execution.arrow.maxRecordsPerBatch": "16"}):
        arrow = transforms.add_rolling_aggregates(frame, engine="arrow", **params).localCheckpoint()
    assert arrow.count() > 1_000
    assert arrow.exceptAll(transforms.add_rolling_aggregates(frame, engine="spark", **params)).isEmpty()
    assert transforms.add_rolling_aggregates(frame, engine="spark", **params).exceptAll(arrow).isEmpty()


def test_chunks_of_whole_entities_are_cut_between_hash_values() -> None:
    """A partition's batches, sorted by the entity hash, regrouped into chunks of at least the
    rows asked for: every row once and in order, and no hash value in two chunks, whatever the
    batch sizes (empty ones too) and however long a hash value's run."""
    import pyarrow as pa

    rng = random.Random(7)
    column = rolling._HASH
    for _ in range(200):
        hashes = sorted(rng.choice([-5, 0, 3, 9, 11, 12, 40, 77]) for _ in range(rng.randint(1, 120)))
        table = pa.table({column: hashes, "row": list(range(len(hashes)))})
        batches, start = [], 0
        while start < table.num_rows:
            size = rng.choice([0, 1, 2, 5, 16, 37])
            batches.append(
                pa.RecordBatch.from_pylist(table.slice(start, size).to_pylist(), schema=table.schema)
            )
            start += size
        rows = rng.choice([1, 3, 10, 30, 1_000])
        chunks = list(rolling.whole_entities(iter(batches), rows))
        assert [r for chunk in chunks for r in chunk.column("row").to_pylist()] == list(range(len(hashes)))
        assert all(chunk.num_rows >= rows for chunk in chunks[:-1]) and all(
            chunk.num_rows for chunk in chunks
        )
        values = [set(chunk.column(column).to_pylist()) for chunk in chunks]
        assert all(not (a & b) for i, a in enumerate(values) for b in values[i + 1 :]), (
            rows,
            [len(b) for b in batches],
        )


@pytest.mark.parametrize("zone", ["America/New_York", "+05:30"])
def test_the_engines_agree_in_any_session_time_zone(spark: SparkSession, zone: str) -> None:
    """Periods are UTC hours and days whatever the session's zone; the Arrow engine gets times
    in that zone and hands them back in UTC, as Spark expects."""
    events = [
        ("e10", 1, TS(2026, 1, 1, 3, 30), 1.5, 2, "web"),
        ("e2", 1, TS(2026, 1, 1, 23, 10), 2.25, 3, None),
        ("e2", 1, TS(2026, 1, 3, 1), 4.0, 1, "store"),
    ]
    frame = spark.createDataFrame(events, KEYED_EVENTS)
    params = {
        "entity": ["region", "customer_id"],
        "time_column": "event_ts",
        "windows": ["1d", "2d"],
        "aggregates": NUMERIC,
        "output": "feature_ts",
        "last_event_output": "last_event_ts",
    }
    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        arrow = transforms.add_rolling_aggregates(frame, engine="arrow", **params).collect()
        key = lambda row: (row.region, row.feature_ts)  # noqa: E731
        assert sorted(arrow, key=key) == sorted(
            transforms.add_rolling_aggregates(frame, engine="spark", **params).collect(), key=key
        )
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)
    assert len(arrow) == 8  # e10: its day and the next two; e2: days 0 to 4


def test_a_nan_is_the_greatest_value_and_an_overflow_fails_in_both_engines(spark: SparkSession) -> None:
    frame = spark.createDataFrame(
        [
            ("e", 1, TS(2026, 1, 1, 3), float("nan"), 2**62, None),
            ("e", 1, TS(2026, 1, 1, 4), 1.0, 2**62, None),
        ],
        "region string, customer_id int, event_ts timestamp, amount double, units long, channel string",
    )
    params = {
        "entity": ["region", "customer_id"],
        "time_column": "event_ts",
        "windows": ["1d"],
        "output": "feature_ts",
    }
    extremes = [{"column": "amount", "fn": "max"}, {"column": "amount", "fn": "min"}]
    for engine in ("arrow", "spark"):
        row = (
            transforms.add_rolling_aggregates(frame, engine=engine, aggregates=extremes, **params)
            .orderBy("feature_ts")
            .first()
        )
        assert math.isnan(row.amount_max_1d) and row.amount_min_1d == 1.0, engine
        with pytest.raises(Exception, match=r"(?i)overflow"):
            transforms.add_rolling_aggregates(
                frame, engine=engine, aggregates=[{"column": "units", "fn": "sum"}], **params
            ).collect()


def test_the_engines_agree_on_aggregates_of_the_time_and_key_columns(spark: SparkSession) -> None:
    """Counting the events by their time column, or distinct values of a key, is an aggregate
    of a column the engine reads anyway: the Arrow engine reads it once."""
    frame = spark.createDataFrame(
        [
            ("n", 1, TS(2026, 1, 1, 3), 1.0, 1, None),
            ("n", 1, TS(2026, 1, 2, 4), 2.0, 1, "web"),
            (None, 2, TS(2026, 1, 1, 5), 3.0, 2, "web"),
        ],
        KEYED_EVENTS,
    )
    params = {
        "entity": ["region", "customer_id"],
        "time_column": "event_ts",
        "windows": ["1d", "3d"],
        "output": "feature_ts",
        "aggregates": [
            {"column": "event_ts", "fn": "count", "name": "events"},
            {"column": "customer_id", "fn": "count_distinct", "name": "ids"},
        ],
    }
    arrow = transforms.add_rolling_aggregates(frame, engine="arrow", **params)
    key = lambda row: (row.region or "", row.customer_id, row.feature_ts)  # noqa: E731
    assert sorted(arrow.collect(), key=key) == sorted(
        transforms.add_rolling_aggregates(frame, engine="spark", **params).collect(), key=key
    )
    assert arrow.agg(F.max("events_3d")).first()[0] == 2


def test_the_engine_is_chosen_by_what_the_arrow_engine_computes(spark: SparkSession) -> None:
    frame = spark.createDataFrame([(1, TS(2026, 1, 1, 5), 2.5, "a")], EVENTS)
    params = {"entity": "customer_id", "time_column": "event_ts", "windows": ["1d"], "output": "feature_ts"}
    text_sum = [{"column": "category", "fn": "sum"}]
    with pytest.raises(ValueError, match="arrow engine computes count and count_distinct of any column"):
        transforms.add_rolling_aggregates(frame, engine="arrow", aggregates=text_sum, **params)
    assert "MapInArrow" not in _plan(transforms.add_rolling_aggregates(frame, aggregates=text_sum, **params))
    assert "MapInArrow" in _plan(transforms.add_rolling_aggregates(frame, aggregates=NUMERIC[:3], **params))
    assert "MapInArrow" not in _plan(
        transforms.add_rolling_aggregates(frame, aggregates=NUMERIC[:3], engine="spark", **params)
    )


def _plan(df) -> str:  # type: ignore[no-untyped-def]
    return str(df._jdf.queryExecution().executedPlan().toString())
