"""Validation at the edge: required columns and types, row rules, and quarantine.

`require_columns` fails before anything is written when a source lost or retyped a column.
`split_valid` routes rows that break a rule to a quarantine frame with the rule and a reason,
so that rows in = rows out + rows quarantined, always.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from parity.core.columns import QUARANTINE_REASON, QUARANTINE_RULE
from parity.core.conf import (
    AllowedValuesExpectation,
    Expectation,
    NotNullExpectation,
    RangeExpectation,
    SourceQualityConf,
    UniqueExpectation,
)


class MissingColumnsError(ValueError):
    """A DataFrame lacks columns the next step needs, or has them with the wrong type."""


class StaleSourceError(ValueError):
    """A source's newest row is older than its freshness expectation allows."""


def require_columns(df: DataFrame, schema: T.StructType, *, source: str) -> None:
    """Check that `df` has every column of `schema` with a compatible type.

    Extra columns are allowed (they are ignored downstream).

    Raises:
        MissingColumnsError: naming each missing or retyped column of `source`.
    """
    actual = {f.name: f.dataType for f in df.schema.fields}
    missing = [f.name for f in schema.fields if f.name not in actual]
    retyped = [
        f"{f.name} ({actual[f.name].simpleString()}, expected {f.dataType.simpleString()})"
        for f in schema.fields
        if f.name in actual and actual[f.name] != f.dataType
    ]
    problems = []
    if missing:
        problems.append(f"missing required column(s) {', '.join(missing)}")
    if retyped:
        problems.append(f"retyped column(s) {', '.join(retyped)}")
    if problems:
        raise MissingColumnsError(f"{source}: {'; '.join(problems)}")


def unexpected_columns(df: DataFrame, schema: T.StructType) -> list[str]:
    """Columns of `df` that `schema` does not declare: reported by jobs, then ignored."""
    return [c for c in df.columns if c not in schema.fieldNames()]


@dataclass(frozen=True)
class Rule:
    """A row-level expectation: `check` is true for a good row."""

    name: str
    check: Column
    reason: str


def not_null(column: str) -> Rule:
    return Rule(f"not_null:{column}", F.col(column).isNotNull(), f"{column} is null")


def in_range(column: str, minimum: float | None = None, maximum: float | None = None) -> Rule:
    """Null passes (declare not_null for that); a value outside [minimum, maximum] fails."""
    check, value = F.lit(True), F.col(column)
    if minimum is not None:
        check = check & (value >= F.lit(minimum))
    if maximum is not None:
        check = check & (value <= F.lit(maximum))
    if maximum is None:
        reason = f"{column} is below {minimum}"
    elif minimum is None:
        reason = f"{column} is above {maximum}"
    else:
        reason = f"{column} is outside [{minimum}, {maximum}]"
    return Rule(f"range:{column}", value.isNull() | check, reason)


def allowed_values(column: str, values: list[str | int | float]) -> Rule:
    """Null passes (declare not_null for that); any other value must be one of `values`."""
    shown = ", ".join(str(v) for v in values)
    return Rule(
        f"allowed_values:{column}",
        F.col(column).isNull() | F.col(column).isin(values),
        f"{column} is not one of {shown}",
    )


def apply_expectations(
    df: DataFrame, expectations: list[Expectation], *, source: str
) -> tuple[DataFrame, DataFrame]:
    """Split `df` by its declared expectations into (valid, quarantined with rule and reason).

    A `unique` expectation keeps one row per key (the first in a deterministic order of all
    columns) and quarantines the others as duplicates.

    Raises:
        MissingColumnsError: an expectation names a column `df` does not have.
    """
    named = [c for e in expectations for c in (e.columns if isinstance(e, UniqueExpectation) else [e.column])]
    missing = sorted({c for c in named if c not in df.columns})
    if missing:
        raise MissingColumnsError(f"{source}: expectations name missing column(s) {', '.join(missing)}")
    rules: list[Rule] = []
    helpers: list[str] = []
    for index, expectation in enumerate(expectations):
        if isinstance(expectation, NotNullExpectation):
            rules.append(not_null(expectation.column))
        elif isinstance(expectation, RangeExpectation):
            rules.append(in_range(expectation.column, expectation.min, expectation.max))
        elif isinstance(expectation, AllowedValuesExpectation):
            rules.append(allowed_values(expectation.column, expectation.values))
        else:
            rank = f"_unique_rank_{index}"
            order = [F.col(c).asc_nulls_last() for c in df.columns]
            df = df.withColumn(
                rank, F.row_number().over(Window.partitionBy(*expectation.columns).orderBy(*order))
            )
            helpers.append(rank)
            keys = ", ".join(expectation.columns)
            rules.append(
                Rule(f"unique:{'+'.join(expectation.columns)}", F.col(rank) == 1, f"duplicate {keys}")
            )
    valid, quarantined = split_valid(df, rules)
    return valid.drop(*helpers), quarantined.drop(*helpers)


def check_freshness(df: DataFrame, conf: SourceQualityConf, *, source: str, now: dt.datetime) -> None:
    """Fail when the newest `time_column` value is older than `max_staleness_hours` (runs a Spark job).

    Raises:
        StaleSourceError: naming the source, its newest time and the limit.
    """
    if conf.max_staleness_hours is None or conf.time_column is None:
        return
    newest = df.agg(F.max(conf.time_column).alias("newest")).first()
    latest = None if newest is None else newest["newest"]
    limit = now.replace(tzinfo=None) - dt.timedelta(hours=conf.max_staleness_hours)
    if latest is None or latest < limit:
        raise StaleSourceError(
            f"{source} is stale: newest {conf.time_column} is {latest}, older than "
            f"{conf.max_staleness_hours} h before {now:%Y-%m-%d %H:%M}"
        )


def split_valid(df: DataFrame, rules: list[Rule]) -> tuple[DataFrame, DataFrame]:
    """Split `df` into rows that pass every rule and rows that fail one.

    A failing row is quarantined under the first rule it breaks, in the order given.

    Returns:
        (valid rows with the input's columns, quarantined rows with `quarantine_rule` and
        `quarantine_reason` added).
    """
    failed_rule: Column = F.lit(None).cast("string")
    failed_reason: Column = F.lit(None).cast("string")
    for rule in reversed(rules):
        broken = ~F.coalesce(rule.check, F.lit(False))
        failed_rule = F.when(broken, F.lit(rule.name)).otherwise(failed_rule)
        failed_reason = F.when(broken, F.lit(rule.reason)).otherwise(failed_reason)
    tagged = df.withColumn(QUARANTINE_RULE, failed_rule).withColumn(QUARANTINE_REASON, failed_reason)
    valid = tagged.filter(F.col(QUARANTINE_RULE).isNull()).drop(QUARANTINE_RULE, QUARANTINE_REASON)
    quarantined = tagged.filter(F.col(QUARANTINE_RULE).isNotNull())
    return valid, quarantined
