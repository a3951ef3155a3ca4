"""What every conf model shares: strictness, the error type, logical table names, Spark types."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

ZONES = ("raw", "features", "training", "predictions", "quarantine", "monitoring", "audit")
SPARK_TYPES = ("boolean", "int", "bigint", "float", "double", "string", "date", "timestamp")
NUMERIC_TYPES = (
    "boolean",
    "int",
    "bigint",
    "float",
    "double",
)  # model inputs as numbers; string ones are categorical
SparkType = Literal["boolean", "int", "bigint", "float", "double", "string", "date", "timestamp"]


class ConfError(ValueError):
    """The configuration cannot be loaded; the message names the key and the fix."""


class StrictModel(BaseModel):
    """A conf model: unknown keys are errors, and a loaded value never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_table_name(value: str) -> str:
    """`value` if it is a logical table name `<zone>.<name>`.

    Raises:
        ValueError: naming the zones.
    """
    zone, _, name = value.partition(".")
    if zone not in ZONES or not name or "." in name or "/" in name:
        raise ValueError(
            f"'{value}' is not a logical table name <zone>.<name> with zone in {', '.join(ZONES)}"
        )
    return value


def is_table_name(value: str) -> bool:
    try:
        check_table_name(value)
    except ValueError:
        return False
    return True
