"""Commits: who made which version of a table, and what a rollback did with a run's commits.

A table's commits with their metadata are read from Delta's log through `parity.core.delta_log`
(no Spark job: what lets every write find its own commit cheaply), or from Delta's history
where that cannot answer.

Every commit parity makes carries, in Delta's commit metadata (userMetadata), the run that made
it (`RUN_ID_KEY`) and which write of that run (`COMMIT_ID_KEY`); a rollback's RESTORE also
names the first version it undid (`ROLLBACK_OF_KEY`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from parity.core import delta_log
from parity.core.delta_log import latest_version, table_id, table_properties

__all__ = [  # `latest_version`, `table_id` and `table_properties` moved to `parity.core.delta_log`
    "COMMIT_ID_KEY",
    "ROLLBACK_OF_KEY",
    "RUN_ID_KEY",
    "USER_METADATA_CONF",
    "Commit",
    "CommitNotFoundError",
    "RollbackOutcome",
    "commits_between",
    "ensure_table_properties",
    "interval_days",
    "latest_version",
    "metadata_text",
    "parse_metadata",
    "session_conf",
    "table_id",
    "table_properties",
]

RUN_ID_KEY = "parity.run_id"  # in every commit's metadata: the run (catalog) that made it
COMMIT_ID_KEY = "parity.commit_id"  # in every commit's metadata: which write of that run made it
ROLLBACK_OF_KEY = "parity.rollback_of"  # in a rollback's RESTORE: the first version it undid
USER_METADATA_CONF = (
    "spark.databricks.delta.commitInfo.userMetadata"  # metadata of commits with no write option
)

RollbackAction = Literal["restored", "removed", "left"]


class CommitNotFoundError(RuntimeError):
    """A write returned, but no commit in the table's history carries its commit id."""


@dataclass(frozen=True)
class Commit:
    """One commit in a table's history: who made it (its metadata), on which version it was
    based, and Delta's operation metrics (rows written, updated, deleted, files ...)."""

    version: int
    operation: str
    read_version: int | None
    metadata: dict[str, object]
    metrics: dict[str, int] = field(default_factory=dict)

    @property
    def run_id(self) -> str | None:
        run_id = self.metadata.get(RUN_ID_KEY)
        return run_id if isinstance(run_id, str) else None


def commits_between(spark: SparkSession, path: str, *, after: int | None, upto: int) -> list[Commit]:
    """The commits of the Delta table at `path` with `after` < version <= `upto` (from version 0
    when `after` is None), newest first.

    Each commit's metadata is read from its own log file through Delta's log handle: a few
    milliseconds a commit and no Spark job (`DeltaTable.history` runs one, about half a
    second), so a write can afford to look up its own commit.
    """
    first = 0 if after is None else after + 1
    try:
        return [
            _commit(delta_log.logged_commit(spark, path, version)) for version in range(upto, first - 1, -1)
        ]
    except Exception:  # a missing commit file, or an API change in a later Delta: ask the history
        history = DeltaTable.forPath(spark, path).history()
        rows = (
            history.filter((F.col("version") >= first) & (F.col("version") <= upto))
            .select("version", "operation", "readVersion", "userMetadata", "operationMetrics")
            .orderBy(F.desc("version"))
            .collect()
        )
        return [
            Commit(
                int(r["version"]),
                str(r["operation"]),
                None if r["readVersion"] is None else int(r["readVersion"]),
                parse_metadata(r["userMetadata"]),
                _counts(r["operationMetrics"] or {}),
            )
            for r in rows
        ]


def _commit(logged: delta_log.LoggedCommit) -> Commit:
    """A commit of the log, its metadata parsed and its metrics counted."""
    return Commit(
        logged.version,
        logged.operation,
        logged.read_version,
        parse_metadata(logged.user_metadata),
        _counts(logged.metrics),
    )


def _counts(metrics: Mapping[str, object]) -> dict[str, int]:
    """Delta's operation metrics (strings) as numbers, leaving out any that is not a whole number."""
    return {str(k): int(str(v)) for k, v in metrics.items() if str(v).lstrip("-").isdigit()}


def parse_metadata(text: str | None) -> dict[str, object]:
    """A commit's userMetadata as a dict (empty when there is none, or it is not a JSON object)."""
    if not text:
        return {}
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError:  # written by another tool
        return {}
    return loaded if isinstance(loaded, dict) else {}


def metadata_text(metadata: Mapping[str, object]) -> str:
    """A commit's metadata as the userMetadata text parity writes (JSON, keys sorted)."""
    return json.dumps(dict(metadata), sort_keys=True, default=str)


@contextmanager
def session_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Set session confs for the commands inside the block, then put back what was there."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, before in previous.items():
            if before is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, before)


def interval_days(interval: str) -> float:
    """Days in a Delta interval property such as 'interval 30 days' (unknown units count as 0)."""
    parts = interval.lower().replace("interval", "").split()
    units = {"day": 1.0, "days": 1.0, "hour": 1 / 24, "hours": 1 / 24, "week": 7.0, "weeks": 7.0}
    return (
        float(parts[0]) * units.get(parts[1], 0.0)
        if len(parts) == 2 and parts[0].replace(".", "").isdigit()
        else 0.0
    )


@dataclass(frozen=True)
class RollbackOutcome:
    """What a rollback did to one table a failed run wrote.

    `restored`: the table holds `version` again, the version before the run's first commit.
    `removed`: the run created the table, and it is gone again (`version` is None).
    `left`: another writer committed after the run's first commit, so the table is left as it
    is, at `version` (its newest version), with the run's commits `own` and the other
    writers' commits `others` still in it.
    """

    table: str
    action: RollbackAction
    version: int | None
    own: tuple[int, ...] = ()
    others: tuple[int, ...] = ()

    def describe(self) -> str:
        """One phrase for an error line, e.g. `left features.x at version 2 (...)`."""
        if self.action == "restored":
            return f"restored {self.table} to version {self.version}"
        if self.action == "removed":
            return f"removed {self.table}"
        return (
            f"left {self.table} at version {self.version}: another writer committed "
            f"{_versions(self.others)} after this run's {_versions(self.own)}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "table": self.table,
            "action": self.action,
            "version": self.version,
            "own": list(self.own),
            "others": list(self.others),
        }


def _versions(versions: tuple[int, ...]) -> str:
    return ("version " if len(versions) == 1 else "versions ") + ", ".join(str(v) for v in versions)


def ensure_table_properties(
    spark: SparkSession, path: str, properties: Mapping[str, str], *, nullable: tuple[str, ...] = ()
) -> None:
    """Give an existing table the `properties` it lacks (or holds other values of), and let its
    `nullable` columns hold nulls: each change one ALTER TABLE commit, none when nothing differs."""
    current = table_properties(spark, path) if properties else {}
    differ = {key: value for key, value in properties.items() if current.get(key) != value}
    if differ:
        pairs = ", ".join(f"'{key}' = '{value}'" for key, value in sorted(differ.items()))
        spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ({pairs})")
    if nullable:
        schema = DeltaTable.forPath(spark, path).toDF().schema
        for column in nullable:
            if column in schema.fieldNames() and not schema[column].nullable:
                spark.sql(f"ALTER TABLE delta.`{path}` ALTER COLUMN {column} DROP NOT NULL")
