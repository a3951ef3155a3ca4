"""The transform library: pure, generic transforms that feature set declarations name.

Every transform takes a DataFrame and keyword parameters and returns a DataFrame, built from
Spark's built-in functions (the one exception: `add_rolling_aggregates`' Arrow engine, grouped
Arrow functions where they measured 2.5x faster): nothing here reads, writes, collects or
logs, so `df.transform(fn, **kw)` chains them and a declaration can name them by dotted path
(`parity.transforms.add_window_aggregates`). Each docstring says which columns it needs and
which it adds.

The row-level transforms (`with_*`) live in `row_transforms` and the windowed aggregates
here; both are named `parity.transforms.<name>` in declarations.

Transforms that look back in time are marked by `needs_history` (`transform_marks`): how much
source data before a row's own period they read. Incremental builds read that much history
and no more, so an output row for the period ending at T must depend only on source rows from
T minus that history on. A transform that takes a `grain` receives its feature set's grain
(hour or day).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pyspark.sql import Column, DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from parity.core.durations import GRAINS, Grain, duration_label, parse_duration, slots
from parity.features.rolling import arrow_supported, rolling_arrow
from parity.features.row_transforms import (  # noqa: F401 (their documented home is parity.transforms)
    DAY,
    with_alias,
    with_buckets,
    with_category_indicators,
    with_day,
    with_ratio,
    with_redacted_text,
    with_text_features,
    with_time_since,
)
from parity.features.transform_marks import checks_params, history, history_days, needs_history  # noqa: F401

AGGREGATE_FUNCTIONS = ("count", "sum", "mean", "min", "max", "count_distinct")
Aggregate = Literal["count", "sum", "mean", "min", "max", "count_distinct"]
_EPOCH = dt.date(1970, 1, 1)
_NANOS = 1_000_000_000  # floating-point sums accumulate exactly, in whole units and billionths

# --- windowed aggregates ----------------------------------------------------------------------


def window_feature_name(name: str, days: int) -> str:
    return f"{name}_{days}d"


def _aggregate_name(spec: Mapping[str, Any]) -> str:
    return str(spec.get("name") or f"{spec['column']}_{spec['fn']}")


# The day-grain form of `add_rolling_aggregates`, kept as it was: models trained on sets that
# name it record a digest of its source, so editing it would refuse their loads. New sets use
# add_rolling_aggregates, which gives the same rows at day grain.
@needs_history(lambda params: max(params["windows_days"]))
def add_window_aggregates(  # noqa: PLR0913 (a declaration's params, by keyword; its digest pins this signature)
    df: DataFrame,
    *,
    entity: str | Sequence[str],
    time_column: str,
    windows_days: Sequence[int],
    aggregates: Sequence[Mapping[str, Any]],
    output: str,
    last_event_output: str | None = None,
) -> DataFrame:
    """Per-entity aggregates of events over the last N days, as of the end of each UTC day.

    For each N in `windows_days` and each aggregate {column, fn, name?} (fn one of count, sum,
    mean, min, max, count_distinct) it adds `{name}_{N}d`, where name defaults to
    `{column}_{fn}`. The window of day D covers days D-N+1 to D; the row is stamped at the end
    of day D (midnight UTC after it) in `output`, so it only uses events before that instant.
    Floating-point sums and means accumulate exactly, to 9 decimal places (each value split
    into whole units and billionths, both summed as longs), so a value does not depend on the
    order rows arrive in: incremental and full builds agree to the bit. Integer arithmetic keeps
    this fast where decimal(38, 9) sums were not; a floating-point value or window sum must stay
    within a long (about 9.2e18) in magnitude, or the build fails with an overflow error.

    Rows are emitted only where a value can change: on days with events and on the days an
    event leaves each window. Between two rows the values hold, so an as-of join at any time
    returns exactly the windows as of the last complete day, with far fewer rows than one per
    entity and day. After an entity's last event leaves every window, its last row carries
    zero counts and sums and null means, minima and maxima.

    Needs: `entity` (one column or several), `time_column` (timestamp), each aggregate's column.
    Returns: `entity`, `output` (timestamp), the windowed aggregates and, if given,
    `last_event_output` (timestamp of the newest event so far, for recency at request time).
    """
    keys = [entity] if isinstance(entity, str) else list(entity)
    windows = sorted(set(int(w) for w in windows_days))
    if not windows or windows[0] <= 0:
        raise ValueError(
            f"add_window_aggregates: windows_days must be positive day counts, got {list(windows_days)}"
        )
    for spec in aggregates:
        if spec.get("fn") not in AGGREGATE_FUNCTIONS:
            raise ValueError(
                f"add_window_aggregates: fn {spec.get('fn')!r} is not one of {', '.join(AGGREGATE_FUNCTIONS)}"
            )
    day_number = F.datediff(F.to_date(F.col(time_column)), F.lit(_EPOCH))

    # Daily tiles: partial aggregates per entity and day (hash partitioning on the entity keeps
    # every later step, tiles, candidate days and windows, free of further shuffles).
    floating = {name for name, kind in df.dtypes if kind in ("float", "double")}
    partial: list[Column] = [F.count(F.lit(1)).alias("_events"), F.max(time_column).alias("_last_event")]
    for i, spec in enumerate(aggregates):
        value, fn = F.col(str(spec["column"])), spec["fn"]
        if fn in ("count", "mean"):
            partial.append(F.count(value).alias(f"_n{i}"))
        if fn in ("sum", "mean") and spec["column"] in floating:
            whole = F.floor(value)  # value - floor(value) is exact in floating point
            partial.append(F.sum(whole.cast("long")).alias(f"_s{i}"))
            partial.append(F.sum(F.round((value - whole) * _NANOS).cast("long")).alias(f"_r{i}"))
        elif fn in ("sum", "mean"):
            partial.append(F.sum(value).alias(f"_s{i}"))
        if fn == "min":
            partial.append(F.min(value).alias(f"_m{i}"))
        if fn == "max":
            partial.append(F.max(value).alias(f"_m{i}"))
        if fn == "count_distinct":
            partial.append(F.collect_set(value).alias(f"_d{i}"))
    tiles = df.repartition(*keys).groupBy(*keys, day_number.alias("_day")).agg(*partial)

    # Candidate days: each tile's own day, and the day its events leave each window. Every tile
    # is copied to those days with empty partials, then merged back per day (no join, no shuffle).
    parts = [c for c in tiles.columns if c not in keys and c != "_day"]
    shifts = F.array(
        *[
            F.struct((F.col("_day") + shift).alias("day"), F.lit(shift == 0).alias("own"))
            for shift in [0, *windows]
        ]
    )
    copies = tiles.select(*keys, *parts, F.explode(shifts).alias("_at"))
    grid = copies.groupBy(*keys, F.col("_at.day").alias("_day")).agg(
        *[F.first(F.when(F.col("_at.own"), F.col(p)), ignorenulls=True).alias(p) for p in parts]
    )

    ordered = Window.partitionBy(*keys).orderBy("_day")
    features: list[Column] = []
    for days in windows:
        frame = ordered.rangeBetween(-(days - 1), 0)
        for i, spec in enumerate(aggregates):
            fn, name = spec["fn"], window_feature_name(_aggregate_name(spec), days)
            if fn == "count":
                column = F.coalesce(F.sum(f"_n{i}").over(frame), F.lit(0)).cast("long")
            elif fn == "sum":
                column = F.coalesce(_window_sum(i, frame, spec["column"] in floating), F.lit(0))
            elif fn == "mean":
                total, count = _window_sum(i, frame, spec["column"] in floating), F.sum(f"_n{i}").over(frame)
                column = F.when(count > 0, total.cast("double") / count)
            elif fn == "min":
                column = F.min(f"_m{i}").over(frame)
            elif fn == "max":
                column = F.max(f"_m{i}").over(frame)
            else:
                column = F.size(F.array_distinct(F.flatten(F.collect_list(f"_d{i}").over(frame)))).cast(
                    "long"
                )
            features.append(column.alias(name))
    if last_event_output is not None:
        features.append(
            F.max("_last_event").over(ordered.rangeBetween(-windows[-1], 0)).alias(last_event_output)
        )
    stamped = F.to_timestamp(F.date_add(F.lit(_EPOCH), F.col("_day") + 1)).alias(output)
    return grid.select(*keys, stamped, *features)


def _window_sum(i: int, frame: WindowSpec, floating: bool) -> Column:
    """The window sum of aggregate i's partials: exact integer sums, recombined once for floats."""
    total = F.sum(f"_s{i}").over(frame)
    if not floating:
        return total
    return total.cast("double") + F.sum(f"_r{i}").over(frame).cast("double") / _NANOS


def _rolling_windows(windows: Sequence[str], grain: Grain) -> list[tuple[str, int]]:
    """Each window's label and its length in periods of `grain`, shortest first.

    Raises:
        ValueError: a window is not a positive duration, or not a whole number of periods.
    """
    spans: dict[str, int] = {}
    for window in windows:
        label = duration_label(window)
        spans[label] = slots(
            parse_duration(window, field=f"window {window!r}"), grain, field=f"window {label}"
        )
    if not spans or min(spans.values()) <= 0:
        raise ValueError(
            f"add_rolling_aggregates: windows must be positive durations such as 6h or 7d, got {list(windows)}"
        )
    return sorted(spans.items(), key=lambda item: (item[1], item[0]))


def _check_rolling(params: Mapping[str, Any]) -> None:
    _rolling_windows(params["windows"], params.get("grain", "day"))
    _check_aggregates(params["aggregates"])
    if params.get("engine", "auto") not in ("auto", "arrow", "spark"):
        raise ValueError(
            f"add_rolling_aggregates: engine must be auto, arrow or spark, got {params['engine']!r}"
        )


def _check_aggregates(aggregates: Sequence[Mapping[str, Any]]) -> None:
    for spec in aggregates:
        if spec.get("fn") not in AGGREGATE_FUNCTIONS:
            raise ValueError(
                f"aggregate fn {spec.get('fn')!r} is not one of {', '.join(AGGREGATE_FUNCTIONS)}"
            )


@checks_params(_check_rolling)
@needs_history(lambda params: max(parse_duration(window) for window in params["windows"]))
def add_rolling_aggregates(  # noqa: PLR0913 (a declaration's params, by keyword; its digest pins this signature)
    df: DataFrame,
    *,
    entity: str | Sequence[str],
    time_column: str,
    windows: Sequence[str],
    aggregates: Sequence[Mapping[str, Any]],
    output: str,
    grain: Grain = "day",
    last_event_output: str | None = None,
    engine: Literal["auto", "arrow", "spark"] = "auto",
) -> DataFrame:
    """Per-entity aggregates of events over rolling windows, as of the end of each UTC hour or day.

    `grain` (hour or day; a feature set passes its own) is the period rows are computed for.
    For each window in `windows`, a duration with its unit and a whole number of periods
    (`1h`, `6h`, `24h`, `1d`, `7d`), and each aggregate {column, fn, name?} (fn one of count,
    sum, mean, min, max, count_distinct) it adds `{name}_{window}`, where name defaults to
    `{column}_{fn}`. The row of a period is stamped at the end of the period in `output` (at
    the midnight after a day; at the next whole hour) and its window of length W covers the
    events in [end - W, end), so it only uses events before the instant it is stamped with.
    Floating-point sums and means accumulate exactly, to 9 decimal places, so a value does not
    depend on the order rows arrive in: incremental and full builds agree to the bit. A
    floating-point value or window sum must stay within a long (about 9.2e18) in magnitude.

    Rows are emitted only where a value can change: in periods with events and in the periods
    an event leaves each window. Between two rows the values hold, so an as-of join at any
    time returns exactly the windows as of the last complete period. After an entity's last
    event leaves every window, its last row carries zero counts and sums and null means,
    minima and maxima.

    `engine` "auto" computes with the Arrow engine (`parity.features.rolling`: polars per chunk
    of whole entities, about 2.5x faster than Spark's operators) what it supports (count and
    count_distinct of any column; sum, mean, min and max of numeric ones), and anything else with
    Spark's operators ("spark"); both give the same rows.

    Needs: `entity` (one column or several), `time_column` (timestamp), each aggregate's column.
    Returns: `entity`, `output` (timestamp), the windowed aggregates and, if given,
    `last_event_output` (timestamp of the newest event so far, for recency at request time).
    """
    keys = [entity] if isinstance(entity, str) else list(entity)
    spans = _rolling_windows(windows, grain)
    _check_aggregates(aggregates)
    step = GRAINS[grain] // dt.timedelta(microseconds=1)
    supported = arrow_supported(df, aggregates)
    if engine == "arrow" and not supported:
        raise ValueError(
            "add_rolling_aggregates: the arrow engine computes count and count_distinct of any column, "
            "and sum, mean, min and max of numeric ones only"
        )
    if engine != "spark" and supported:
        return rolling_arrow(
            df,
            keys=keys,
            time_column=time_column,
            spans=spans,
            aggregates=aggregates,
            names=rolling_aggregate_names(windows, aggregates, grain),
            output=output,
            step=step,
            last_event_output=last_event_output,
        )
    micros = F.unix_micros(F.col(time_column))
    period = ((micros - F.pmod(micros, F.lit(step))) / F.lit(step)).cast("long")  # exact: a whole multiple

    # Tiles: partial aggregates per entity and period (hash partitioning on the entity keeps
    # every later step, tiles, candidate periods and windows, free of further shuffles).
    floating = {name for name, kind in df.dtypes if kind in ("float", "double")}
    tiles = (
        df.repartition(*keys)
        .groupBy(*keys, period.alias("_slot"))
        .agg(*_partials(aggregates, time_column, floating))
    )

    # Candidate periods: each tile's own, and the period its events leave each window. Every
    # tile is copied to those periods with empty partials, then merged back per period (no
    # join, no shuffle).
    parts = [c for c in tiles.columns if c not in keys and c != "_slot"]
    shifts = F.array(
        *[
            F.struct((F.col("_slot") + shift).alias("at"), F.lit(shift == 0).alias("own"))
            for shift in sorted({0, *(n for _, n in spans)})
        ]
    )
    copies = tiles.select(*keys, *parts, F.explode(shifts).alias("_at"))
    grid = copies.groupBy(*keys, F.col("_at.at").alias("_slot")).agg(
        *[F.first(F.when(F.col("_at.own"), F.col(p)), ignorenulls=True).alias(p) for p in parts]
    )

    ordered = Window.partitionBy(*keys).orderBy("_slot")
    features = [
        _window_value(spec, i, ordered.rangeBetween(-(length - 1), 0), spec["column"] in floating).alias(
            f"{_aggregate_name(spec)}_{label}"
        )
        for label, length in spans
        for i, spec in enumerate(aggregates)
    ]
    if last_event_output is not None:
        features.append(
            F.max("_last_event").over(ordered.rangeBetween(-spans[-1][1], 0)).alias(last_event_output)
        )
    stamped = F.timestamp_micros((F.col("_slot") + 1) * F.lit(step)).alias(output)
    return grid.select(*keys, stamped, *features)


def _partials(aggregates: Sequence[Mapping[str, Any]], time_column: str, floating: set[str]) -> list[Column]:
    """The partial aggregates of one tile: what the windows combine (see `_window_value`)."""
    partial: list[Column] = [F.count(F.lit(1)).alias("_events"), F.max(time_column).alias("_last_event")]
    for i, spec in enumerate(aggregates):
        value, fn = F.col(str(spec["column"])), spec["fn"]
        if fn in ("count", "mean"):
            partial.append(F.count(value).alias(f"_n{i}"))
        if fn in ("sum", "mean") and spec["column"] in floating:
            whole = F.floor(value)  # value - floor(value) is exact in floating point
            partial.append(F.sum(whole.cast("long")).alias(f"_s{i}"))
            partial.append(F.sum(F.round((value - whole) * _NANOS).cast("long")).alias(f"_r{i}"))
        elif fn in ("sum", "mean"):
            partial.append(F.sum(value).alias(f"_s{i}"))
        if fn in ("min", "max"):
            partial.append((F.min if fn == "min" else F.max)(value).alias(f"_m{i}"))
        if fn == "count_distinct":
            partial.append(F.collect_set(value).alias(f"_d{i}"))
    return partial


def _window_value(spec: Mapping[str, Any], i: int, frame: WindowSpec, floating: bool) -> Column:
    """Aggregate i over a window frame, from the tiles' partials."""
    fn = spec["fn"]
    if fn == "count":
        return F.coalesce(F.sum(f"_n{i}").over(frame), F.lit(0)).cast("long")
    if fn == "sum":
        return F.coalesce(_window_sum(i, frame, floating), F.lit(0))
    if fn == "mean":
        total, count = _window_sum(i, frame, floating), F.sum(f"_n{i}").over(frame)
        return F.when(count > 0, total.cast("double") / count)
    if fn == "min":
        return F.min(f"_m{i}").over(frame)
    if fn == "max":
        return F.max(f"_m{i}").over(frame)
    return F.size(F.array_distinct(F.flatten(F.collect_list(f"_d{i}").over(frame)))).cast("long")


def rolling_aggregate_names(
    windows: Sequence[str], aggregates: Sequence[Mapping[str, Any]], grain: Grain = "day"
) -> list[str]:
    """The columns `add_rolling_aggregates` adds for these windows and aggregates, in its order."""
    return [
        f"{_aggregate_name(spec)}_{label}"
        for label, _ in _rolling_windows(windows, grain)
        for spec in aggregates
    ]


def window_aggregate_names(windows_days: Sequence[int], aggregates: Sequence[Mapping[str, Any]]) -> list[str]:
    """The columns `add_window_aggregates` adds for these windows and aggregates, in its order."""
    return [
        window_feature_name(_aggregate_name(spec), days)
        for days in sorted(set(windows_days))
        for spec in aggregates
    ]
