"""VACUUM that keeps what lineage needs: no file a protected version still reads is deleted."""

from __future__ import annotations

import datetime as dt
import math

from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from parity.core.commits import interval_days, session_conf


class VersionExpiredError(LookupError):
    """A version to protect has no log entry left."""


def vacuum_protecting(
    spark: SparkSession, path: str, *, name: str, retain_hours: float, protect: set[int] | None = None
) -> float:
    """VACUUM the Delta table at `path` (logical name `name`), keeping every `protect`ed version readable.

    The retention used is the larger of `retain_hours` and the age of the oldest protected
    version (files removed after that version was committed stay); the table's log
    retention is raised too if it would expire that version's log entries first.

    Returns:
        The retention, in hours, the VACUUM ran with.

    Raises:
        VersionExpiredError: a protected version's log entry has already expired.
    """
    table = DeltaTable.forPath(spark, path)
    hours = float(retain_hours)
    if protect:
        oldest = min(protect)
        commit = table.history().filter(f"version = {int(oldest)}").select("timestamp").first()
        if commit is None:
            raise VersionExpiredError(f"{name} has no version {oldest} left to protect: its log has expired")
        age = (dt.datetime.now() - commit["timestamp"]).total_seconds() / 3600  # session time is UTC
        hours = max(hours, math.ceil(age) + 1.0)
        days = math.ceil(hours / 24) + 1
        current = table.detail().select("properties").first()
        log_retention = (current["properties"] if current else {}).get(
            "delta.logRetentionDuration", "interval 30 days"
        )
        if interval_days(log_retention) < days:
            spark.sql(
                f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.logRetentionDuration' = 'interval {days} days')"
            )
    settings = {
        # the guard above replaces Delta's 7-day check
        "spark.databricks.delta.retentionDurationCheck.enabled": "false",
        # VACUUM lists files with this many tasks (10,000 by default): a few per core is plenty.
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(
            4 * spark.sparkContext.defaultParallelism
        ),
    }
    with session_conf(spark, settings):
        table.vacuum(hours)
    return hours
