"""The one door to Delta's transaction log through py4j: what Delta's public Python API does not offer.

`delta.tables.DeltaTable` answers these questions too, but each answer is a Spark job (about
half a second); Delta's own log handle answers from the log with no job, which is what lets
every write look up its own commit cheaply. These calls reach into the JVM (`spark._jvm`),
past any public API, so they live here and nowhere else, each with a fallback to the public
API for a later Delta whose internals differ. Nothing here knows parity's commit metadata:
`parity.core.commits` reads that from what this module returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from delta.tables import DeltaTable
from pyspark.sql import SparkSession


class CommitInfoMissingError(LookupError):
    """A version's log file holds no commit info."""


@dataclass(frozen=True)
class LoggedCommit:
    """One commit's commitInfo as Delta's log holds it: the operation, the version it was based
    on, the userMetadata text and the operation metrics (as the strings Delta keeps)."""

    version: int
    operation: str
    read_version: int | None
    user_metadata: str | None
    metrics: dict[str, str]


def _log(spark: SparkSession, path: str) -> Any:
    """Delta's log handle of the table at `path` (its `DeltaLog`)."""
    jvm: Any = spark.sparkContext._jvm
    return jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)


def _snapshot(spark: SparkSession, path: str) -> Any:
    """The log's newest snapshot, brought up to date."""
    jvm: Any = spark.sparkContext._jvm
    return _log(spark, path).update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty())


def _as_dict(spark: SparkSession, scala_map: Any) -> dict[str, str]:
    jvm: Any = spark.sparkContext._jvm
    return {str(k): str(v) for k, v in jvm.scala.jdk.javaapi.CollectionConverters.asJava(scala_map).items()}


def latest_version(spark: SparkSession, path: str) -> int | None:
    """The newest committed version of the Delta table at `path`, or None if there is none."""
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    try:
        return int(_snapshot(spark, path).version())
    except Exception:  # an API change in a later Delta: ask the history instead
        row = DeltaTable.forPath(spark, path).history(1).select("version").first()
        return None if row is None else int(row["version"])


def table_id(spark: SparkSession, path: str) -> str | None:
    """The id Delta gave the table at `path` when it was created (None if there is none): a
    table deleted and created again at the same path has a new id, though its versions restart."""
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    try:
        return str(_snapshot(spark, path).metadata().id())
    except Exception:  # an API change in a later Delta: ask the table's detail instead
        row = DeltaTable.forPath(spark, path).detail().select("id").first()
        return None if row is None else str(row["id"])


def table_properties(spark: SparkSession, path: str) -> dict[str, str]:
    """An existing table's properties (delta.appendOnly, delta.enableChangeDataFeed, ...)."""
    try:
        return _as_dict(spark, _snapshot(spark, path).metadata().configuration())
    except Exception:  # an API change in a later Delta: ask the table's detail instead
        detail = DeltaTable.forPath(spark, path).detail().first()
        return dict(detail["properties"] or {}) if detail is not None else {}


def logged_commit(spark: SparkSession, path: str, version: int) -> LoggedCommit:
    """One commit's commitInfo, read from its log file (the first action Delta writes there):
    a few milliseconds, no Spark job. Callers fall back to `DeltaTable.history` when it fails.

    Raises:
        CommitInfoMissingError: the version's log file holds no commit info.
    """
    jvm: Any = spark.sparkContext._jvm
    delta = jvm.org.apache.spark.sql.delta
    log = _log(spark, path)
    found = delta.DeltaHistoryManager.getCommitInfoOpt(
        log.store(), delta.util.FileNames.unsafeDeltaFile(log.logPath(), version), log.newDeltaHadoopConf()
    )
    if not found.isDefined():
        raise CommitInfoMissingError(f"version {version} of {path} records no commit info")
    info = found.get()
    read_version, metadata, metrics = info.readVersion(), info.userMetadata(), info.operationMetrics()
    return LoggedCommit(
        version=version,
        operation=str(info.operation()),
        read_version=int(read_version.get()) if read_version.isDefined() else None,
        user_metadata=str(metadata.get()) if metadata.isDefined() else None,
        metrics=_as_dict(spark, metrics.get()) if metrics.isDefined() else {},
    )


def delete_path(spark: SparkSession, path: str) -> None:
    """Delete a table's folder, log and all, through Hadoop's file system (any scheme Spark reads)."""
    jvm: Any = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(hadoop_path, True)
