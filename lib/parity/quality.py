"""Validation at the edge: required columns and types, row rules, and quarantine.

`require_columns` fails before anything is written when a source lost or retyped a column.
`split_valid` routes rows that break a rule to a quarantine frame with the rule and a reason,
so that rows in = rows out + rows quarantined, always.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from parity.schema import QUARANTINE_REASON, QUARANTINE_RULE


class MissingColumnsError(ValueError):
    """A DataFrame lacks columns the next step needs, or has them with the wrong type."""


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


def at_least(column: str, minimum: float) -> Rule:
    return Rule(f"min:{column}", F.col(column) >= F.lit(minimum), f"{column} is below {minimum}")


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
