"""Pure transforms: DataFrame in, DataFrame out, built from Spark's built-in functions.

Nothing here reads, writes, collects or logs. Every transform takes keyword parameters so
that `df.transform(fn, **kw)` chains them, and its docstring names the columns it needs and
the columns it adds.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from parity.pii import contains_pii, redact

DAY = "day"
N_EVENTS = "n_events"
AMOUNT_SUM = "amount_sum"
AMOUNT_MAX = "amount_max"
N_CONTACT_NOTES = "n_contact_notes"
NOTE_LENGTH_SUM = "note_length_sum"
DAYS_SINCE_LAST_EVENT = "days_since_last_event"


def with_redacted_text(df: DataFrame, *, column: str, flag_column: str | None = None) -> DataFrame:
    """Redact emails and phone numbers in `column` in place.

    Needs: `column` (string). Adds: `flag_column` (boolean, true where PII was found), if given.
    """
    if flag_column is not None:
        df = df.withColumn(flag_column, F.coalesce(contains_pii(F.col(column)), F.lit(False)))
    return df.withColumn(column, redact(F.col(column)))


def with_day(df: DataFrame, *, ts_column: str, output: str = DAY) -> DataFrame:
    """The UTC calendar day of a timestamp.

    Needs: `ts_column` (timestamp). Adds: `output` (date).
    """
    return df.withColumn(output, F.to_date(F.col(ts_column)))


def add_daily_activity(
    df: DataFrame,
    *,
    entity: str,
    amount_column: str,
    note_column: str,
    contact_flag_column: str,
    day_column: str = DAY,
) -> DataFrame:
    """Aggregate events to one row per entity and day.

    Needs: `entity`, `day_column`, `amount_column`, `note_column` (redacted text),
    `contact_flag_column` (boolean). Returns: `entity`, `day_column`, n_events, amount_sum,
    amount_max, n_contact_notes, note_length_sum.
    """
    return df.groupBy(entity, day_column).agg(
        F.count(F.lit(1)).alias(N_EVENTS),
        F.sum(amount_column).alias(AMOUNT_SUM),
        F.max(amount_column).alias(AMOUNT_MAX),
        F.sum(F.col(contact_flag_column).cast("long")).alias(N_CONTACT_NOTES),
        F.sum(F.coalesce(F.length(note_column), F.lit(0))).cast("long").alias(NOTE_LENGTH_SUM),
    )


def add_daily_grid(df: DataFrame, *, entity: str, end_day: dt.date, day_column: str = DAY) -> DataFrame:
    """Give every entity one row per day, from its first active day up to `end_day`.

    Days without activity get zero counts and sums and a null max, so rolling windows and
    recency stay current for entities that went quiet.

    Needs: `entity`, `day_column` and the daily aggregates. Returns the same columns, densified.
    """
    known = df.filter(F.col(day_column) <= F.lit(end_day))
    spans = known.groupBy(entity).agg(F.min(day_column).alias("_first"))
    grid = spans.select(
        entity, F.explode(F.sequence(F.col("_first"), F.lit(end_day), F.expr("INTERVAL 1 DAY"))).alias(day_column)
    )
    filled = grid.join(known, [entity, day_column], "left")
    zero_fill: dict[str, bool | float | int | str] = {c: 0 for c in (N_EVENTS, AMOUNT_SUM, N_CONTACT_NOTES, NOTE_LENGTH_SUM) if c in df.columns}
    return filled.fillna(zero_fill)


def add_rolling_windows(
    df: DataFrame, *, entity: str, windows_days: list[int], day_column: str = DAY
) -> DataFrame:
    """Rolling per-entity aggregates over the last N days, the current day included.

    Needs: `entity`, `day_column` (date, one row per entity and day), n_events, amount_sum,
    amount_max, n_contact_notes. Adds, for each N in `windows_days`: n_events_{N}d,
    amount_sum_{N}d, amount_max_{N}d, amount_mean_{N}d (null without events) and
    contact_notes_{N}d.
    """
    day_number = F.datediff(F.col(day_column), F.lit(dt.date(1970, 1, 1)))
    df = df.withColumn("_day_number", day_number)
    for days in windows_days:
        window = Window.partitionBy(entity).orderBy("_day_number").rangeBetween(-(days - 1), 0)
        n_events, amount_sum = f"n_events_{days}d", f"amount_sum_{days}d"
        df = (
            df.withColumn(n_events, F.sum(N_EVENTS).over(window))
            .withColumn(amount_sum, F.sum(AMOUNT_SUM).over(window))
            .withColumn(f"amount_max_{days}d", F.max(AMOUNT_MAX).over(window))
            .withColumn(f"contact_notes_{days}d", F.sum(N_CONTACT_NOTES).over(window))
            .transform(with_ratio, numerator=amount_sum, denominator=n_events, output=f"amount_mean_{days}d")
        )
    return df.drop("_day_number")


def with_ratio(df: DataFrame, *, numerator: str, denominator: str, output: str) -> DataFrame:
    """`numerator / denominator` as a double, null where the denominator is 0 or null.

    Needs: `numerator`, `denominator` (numeric). Adds: `output` (double).
    """
    ratio = F.when(F.col(denominator) != 0, F.col(numerator).cast("double") / F.col(denominator))
    return df.withColumn(output, ratio)


def with_days_since_last_event(
    df: DataFrame, *, entity: str, day_column: str = DAY, output: str = DAYS_SINCE_LAST_EVENT
) -> DataFrame:
    """Days between each row's day and the entity's latest active day up to it (0 if active).

    Needs: `entity`, `day_column`, n_events (one row per entity and day). Adds: `output` (int,
    null before the first event).
    """
    window = Window.partitionBy(entity).orderBy(day_column).rowsBetween(Window.unboundedPreceding, 0)
    last_active = F.last(F.when(F.col(N_EVENTS) > 0, F.col(day_column)), ignorenulls=True).over(window)
    return df.withColumn(output, F.datediff(F.col(day_column), last_active))


def with_day_end_ts(df: DataFrame, *, day_column: str = DAY, output: str) -> DataFrame:
    """The moment a day's aggregate is complete: midnight UTC at the end of `day_column`.

    A feature row stamped T then only uses events before T, so an as-of join at time T may use it.

    Needs: `day_column` (date). Adds: `output` (timestamp).
    """
    return df.withColumn(output, F.to_timestamp(F.date_add(F.col(day_column), 1)))


def with_tenure_days(df: DataFrame, *, as_of_column: str, since_column: str, output: str) -> DataFrame:
    """Whole days from `since_column` to `as_of_column`, a request-time feature.

    Needs: `as_of_column`, `since_column` (timestamps). Adds: `output` (int, null if either is null).
    """
    return df.withColumn(output, F.datediff(F.col(as_of_column), F.col(since_column)))
