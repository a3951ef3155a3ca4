"""All table I/O: logical names to Delta paths, reads pinned to a version, atomic writes.

A logical name `<zone>.<name>` maps to `<storage.root>/<zone>/<name>`. Every read and write
in parity goes through a `Catalog`, which also records the Delta versions it read and wrote,
so that a job's lineage is exactly what it touched. Each write is one Delta commit: it either
lands whole or not at all, and a failed job leaves the table at its previous version.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from parity.core.conf import ZONES, Settings

_TOMBSTONE = "_parity_tombstone"
CHANGE_DATA_FEED = "delta.enableChangeDataFeed"
LANDED_AT = "landed_at"  # in a table's history: when the commit that wrote the row landed


class TableNotFoundError(LookupError):
    """A logical table has no Delta table at its path yet."""


@dataclass(frozen=True)
class TableVersion:
    table: str
    version: int

    def as_dict(self) -> dict[str, object]:
        return {"table": self.table, "version": self.version}


def table_path(settings: Settings, name: str) -> str:
    """The Delta path of a logical table name."""
    zone, _, rest = name.partition(".")
    if zone not in ZONES or not rest or "." in rest:
        raise ValueError(f"'{name}' is not a logical table name <zone>.<name> (zones: {', '.join(ZONES)})")
    return f"{settings.storage.root.rstrip('/')}/{zone}/{rest}"


def latest_version(spark: SparkSession, path: str) -> int | None:
    """The newest committed version of the Delta table at `path`, or None if there is none."""
    if not DeltaTable.isDeltaTable(spark, path):
        return None
    try:  # Delta's own log handle: no Spark job, so builds that ask often stay cheap
        jvm = spark.sparkContext._jvm
        log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, path)  # type: ignore[union-attr]
        return int(log.update(False, jvm.scala.Option.empty(), jvm.scala.Option.empty()).version())  # type: ignore[union-attr]
    except Exception:  # an API change in a later Delta: ask the history instead
        row = DeltaTable.forPath(spark, path).history(1).select("version").first()
        return None if row is None else int(row["version"])


def _days(interval: str) -> float:
    """Days in a Delta interval property such as 'interval 30 days' (unknown units count as 0)."""
    parts = interval.lower().replace("interval", "").split()
    units = {"day": 1.0, "days": 1.0, "hour": 1 / 24, "hours": 1 / 24, "week": 7.0, "weeks": 7.0}
    return float(parts[0]) * units.get(parts[1], 0.0) if len(parts) == 2 and parts[0].replace(".", "").isdigit() else 0.0


def _same(left: DataFrame, right: DataFrame, columns: list[str]) -> Column:
    condition = F.lit(True)
    for c in columns:
        condition &= left[f"`{c}`"].eqNullSafe(right[f"`{c}`"])
    return condition


def content_digest(df: DataFrame) -> str:
    """An order-independent digest of a frame's rows: row count plus the sum of 64-bit row hashes."""
    # to_json drops null fields, so (a, NULL) and (NULL, a) hash differently; xxhash64 alone would not.
    row_hash = F.xxhash64(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])))
    row = df.agg(F.count(F.lit(1)).alias("n"), F.sum(row_hash.cast("decimal(38,0)")).alias("h")).first()
    n, total = (0, 0) if row is None else (row["n"], row["h"] or 0)
    return f"{n}:{int(total) % (1 << 64):016x}"


@dataclass
class Catalog:
    """Reads and writes logical tables, remembering the versions for lineage."""

    spark: SparkSession
    settings: Settings
    inputs: list[TableVersion] = field(default_factory=list)
    outputs: list[TableVersion] = field(default_factory=list)
    _versions_before: dict[str, int | None] = field(default_factory=dict, repr=False)

    def path(self, name: str) -> str:
        return table_path(self.settings, name)

    def exists(self, name: str) -> bool:
        return DeltaTable.isDeltaTable(self.spark, self.path(name))

    def version(self, name: str) -> int | None:
        return latest_version(self.spark, self.path(name))

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """Read a table pinned to one version (the newest by default) and record it as an input.

        Raises:
            TableNotFoundError: there is no Delta table at the name's path.
        """
        return self.read_versioned(name, version)[0]

    def read_versioned(self, name: str, version: int | None = None) -> tuple[DataFrame, int]:
        """Like `read`, and also return the version that was read."""
        current = self.version(name) if version is None else version
        if current is None:
            raise TableNotFoundError(f"table {name} does not exist at {self.path(name)}; run the job that builds it first")
        self._record(self.inputs, TableVersion(name, current))
        return self.spark.read.format("delta").option("versionAsOf", current).load(self.path(name)), current

    def write(
        self,
        df: DataFrame,
        name: str,
        *,
        mode: str = "overwrite",
        replace_where: str | None = None,
        partition_by: list[str] | None = None,
        commit_metadata: dict[str, object] | None = None,
        properties: dict[str, str] | None = None,
    ) -> int:
        """Write `df` to a table as one Delta commit and record the new version as an output.

        `overwrite` replaces the whole table (and its schema) unless `replace_where` limits the
        replacement to the rows matching that predicate; `append` adds rows.
        `commit_metadata` is stored with the commit (Delta's userMetadata) and read back by
        `commit_metadata`. `properties` (e.g. delta.enableChangeDataFeed) are set on the table.

        Returns:
            The version the commit created.
        """
        self._versions_before.setdefault(name, self.version(name))
        writer = df.write.format("delta").mode(mode)
        if mode == "overwrite" and replace_where is None:
            writer = writer.option("overwriteSchema", "true")
        if replace_where is not None:
            writer = writer.option("replaceWhere", replace_where)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        if commit_metadata is not None:
            writer = writer.option("userMetadata", json.dumps(commit_metadata, sort_keys=True, default=str))
        for key, value in (properties or {}).items():
            writer = writer.option(key, value)
        writer.save(self.path(name))
        version = self.version(name)
        if version is None:  # pragma: no cover - a successful save always commits
            raise RuntimeError(f"write to {name} left no Delta table at {self.path(name)}")
        self._record(self.outputs, TableVersion(name, version))
        return version

    def merge(
        self,
        df: DataFrame,
        name: str,
        *,
        keys: list[str],
        scope: str | None = None,
        partition_by: list[str] | None = None,
        commit_metadata: dict[str, object] | None = None,
        replace: bool = False,
        properties: dict[str, str] | None = None,
    ) -> int:
        """Upsert `df` into a table keyed by `keys`, as one Delta MERGE commit.

        New keys are inserted and rows that differ are updated. With a `scope` (a SQL predicate
        over the target, aliased `t`) the rows in scope end up exactly the rows of `df`: target
        rows in scope whose key `df` lacks are deleted, rows outside it are untouched, and a
        scope on partition columns keeps the MERGE to those partitions. Without one, nothing
        is deleted. Merging the same rows again changes no row and rewrites no
        file. A table that does not exist yet, or `replace`, is written whole.

        Returns:
            The version the commit created.
        """
        if replace or not self.exists(name):
            return self.write(df, name, partition_by=partition_by, commit_metadata=commit_metadata, properties=properties)
        self._versions_before.setdefault(name, self.version(name))
        path = self.path(name)
        # Only what differs goes into the MERGE: rows of `df` the target does not hold as they
        # are, and tombstones for target rows in scope whose key `df` lacks. A rerun of the same
        # rows is then an empty MERGE that rewrites no file. (WHEN NOT MATCHED BY SOURCE would
        # delete in one clause, but makes Delta rewrite every file of the table.)
        df = df.localCheckpoint()  # computed once, however often the comparisons below read it
        current = self.spark.read.format("delta").load(path).alias("t")
        if scope:
            current = current.filter(F.expr(scope))
        current = current.select(*[F.col(f"`{c}`") for c in df.columns])
        fresh = df.join(current, _same(df, current, df.columns), "left_anti")
        source = fresh.withColumn(_TOMBSTONE, F.lit(False))
        if scope:
            wanted = df.select(*[F.col(f"`{k}`").alias(f"_key{i}") for i, k in enumerate(keys)])
            matches = [current[f"`{k}`"].eqNullSafe(wanted[f"_key{i}"]) for i, k in enumerate(keys)]
            source = source.unionByName(current.join(wanted, matches, "left_anti").withColumn(_TOMBSTONE, F.lit(True)))
        source = source.localCheckpoint()
        if source.isEmpty():  # nothing differs: no MERGE, no commit
            return self.version(name) or 0
        on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
        if scope:
            on += f" AND ({scope})"
        values: dict[str, str | Column] = {f"`{c}`": f"s.`{c}`" for c in df.columns}
        merge = (
            DeltaTable.forPath(self.spark, path)
            .alias("t")
            .merge(source.alias("s"), on)
            .whenMatchedDelete(condition=f"s.{_TOMBSTONE}")
            .whenMatchedUpdate(condition=f"NOT s.{_TOMBSTONE}", set=values)
            .whenNotMatchedInsert(condition=f"NOT s.{_TOMBSTONE}", values=values)
        )
        key = "spark.databricks.delta.commitInfo.userMetadata"
        previous = self.spark.conf.get(key, None)
        if commit_metadata is not None:
            self.spark.conf.set(key, json.dumps(commit_metadata, sort_keys=True, default=str))
        try:
            merge.execute()
        finally:
            if previous is None:
                self.spark.conf.unset(key)
            else:
                self.spark.conf.set(key, previous)
        version = self.version(name)
        if version is None:  # pragma: no cover - a merge into an existing table always commits
            raise RuntimeError(f"merge into {name} left no Delta table at {self.path(name)}")
        self._record(self.outputs, TableVersion(name, version))
        return version

    def read_history(self, name: str, version: int | None = None, *, landed_at: str = LANDED_AT) -> tuple[DataFrame, int]:
        """Every version of every row a table has held up to `version` (the newest by default),
        each with the time its commit landed in `landed_at`, from Delta's change data feed.

        Rows are inserts and the new side of updates; a row a later commit deleted stays in the
        history, since it was known until then. Recorded as an input at `version`.

        Raises:
            TableNotFoundError: there is no table.
            ValueError: the table was created without the change data feed.
        """
        current = self.version(name) if version is None else version
        if current is None:
            raise TableNotFoundError(f"table {name} does not exist at {self.path(name)}; run the job that builds it first")
        properties = DeltaTable.forPath(self.spark, self.path(name)).detail().select("properties").first()
        if properties is None or properties["properties"].get(CHANGE_DATA_FEED) != "true":
            raise ValueError(f"{name} keeps no change data feed, so when its rows landed is unknown; rebuild it with --full-refresh")
        changes = (
            self.spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", 0)
            .option("endingVersion", current)
            .load(self.path(name))
        )
        self._record(self.inputs, TableVersion(name, current))
        history = changes.filter(F.col("_change_type").isin("insert", "update_postimage"))
        return history.withColumn(landed_at, F.col("_commit_timestamp")).drop("_change_type", "_commit_version", "_commit_timestamp"), current

    def commit_metadata_history(self, name: str, *, containing: str) -> list[dict[str, object]]:
        """The metadata of every commit still in a table's history whose metadata holds the key
        `containing`, newest first (empty when there is no table)."""
        if not self.exists(name):
            return []
        history = DeltaTable.forPath(self.spark, self.path(name)).history().select("version", "userMetadata")
        rows = history.filter(F.col("userMetadata").contains(json.dumps(containing))).orderBy(F.desc("version")).collect()
        found = [json.loads(row["userMetadata"]) for row in rows]
        return [metadata for metadata in found if isinstance(metadata, dict) and containing in metadata]

    def vacuum(self, name: str, *, retain_hours: float, protect: set[int] | None = None) -> float:
        """VACUUM a table, but never delete a file that a protected version still needs.

        The retention used is the larger of `retain_hours` and the age of the oldest protected
        version (files removed after that version was committed stay); the table's log
        retention is raised too if it would expire that version's log entries first.

        Returns:
            The retention, in hours, the VACUUM ran with.
        """
        table = DeltaTable.forPath(self.spark, self.path(name))
        hours = float(retain_hours)
        if protect:
            oldest = min(protect)
            commit = table.history().filter(f"version = {int(oldest)}").select("timestamp").first()
            if commit is None:
                raise TableNotFoundError(f"{name} has no version {oldest} left to protect: its log has expired")
            age = (dt.datetime.now() - commit["timestamp"]).total_seconds() / 3600  # session time is UTC
            hours = max(hours, math.ceil(age) + 1.0)
            days = math.ceil(hours / 24) + 1
            current = table.detail().select("properties").first()
            log_retention = (current["properties"] if current else {}).get("delta.logRetentionDuration", "interval 30 days")
            if _days(log_retention) < days:
                self.spark.sql(f"ALTER TABLE delta.`{self.path(name)}` SET TBLPROPERTIES ('delta.logRetentionDuration' = 'interval {days} days')")
        settings = {
            "spark.databricks.delta.retentionDurationCheck.enabled": "false",  # the guard above replaces Delta's 7-day check
            # VACUUM lists files with this many tasks (10,000 by default): a few per core is plenty.
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(4 * self.spark.sparkContext.defaultParallelism),
        }
        previous = {key: self.spark.conf.get(key, None) for key in settings}
        for key, value in settings.items():
            self.spark.conf.set(key, value)
        try:
            table.vacuum(hours)
        finally:
            for key, before in previous.items():
                if before is None:
                    self.spark.conf.unset(key)
                else:
                    self.spark.conf.set(key, before)
        return hours

    def latest_commit_metadata(self, name: str, key: str) -> dict[str, object]:
        """The metadata of the newest commit of a table whose metadata holds `key` (empty if none).

        Commits that carry no such metadata (a VACUUM, an OPTIMIZE, a RESTORE) are skipped.
        """
        history = DeltaTable.forPath(self.spark, self.path(name)).history()
        rows = history.filter(F.col("userMetadata").contains(json.dumps(key))).orderBy(F.desc("version")).limit(1)
        row = rows.select("userMetadata").first()
        if row is None:
            return {}
        loaded = json.loads(row["userMetadata"])
        return loaded if isinstance(loaded, dict) else {}

    def operation_metrics(self, name: str, version: int) -> dict[str, int]:
        """Delta's operation metrics of one commit (rows inserted, updated, deleted, files ...)."""
        history = DeltaTable.forPath(self.spark, self.path(name)).history()
        row = history.filter(f"version = {int(version)}").select("operationMetrics").first()
        metrics = {} if row is None or row["operationMetrics"] is None else row["operationMetrics"]
        return {k: int(v) for k, v in metrics.items() if str(v).lstrip("-").isdigit()}

    def snapshot(self, name: str, version: int) -> DataFrame:
        """One version of a table for checking what a job wrote (not recorded as an input)."""
        return self.spark.read.format("delta").option("versionAsOf", version).load(self.path(name))

    def row_count(self, name: str, version: int) -> int:
        """Rows in one version of a table (a check, not recorded as an input)."""
        return self.snapshot(name, version).count()

    def manifest_entry(self, name: str, version: int) -> dict[str, object]:
        """What pins one input of a build: (table, version, commit time, content digest).

        The digest is order-independent (a sum of row hashes), so it identifies the rows of
        that version whatever the file layout; it runs one Spark job over the table.
        """
        commit = (
            DeltaTable.forPath(self.spark, self.path(name)).history().filter(f"version = {int(version)}").first()
        )
        if commit is None:
            raise TableNotFoundError(f"table {name} has no version {version}")
        return {
            "table": name,
            "version": version,
            "commit_time": commit["timestamp"].isoformat(),
            "digest": content_digest(self.snapshot(name, version)),
        }

    def commit_metadata(self, name: str, version: int) -> dict[str, object]:
        """The metadata stored with one commit of a table (empty if none)."""
        history = DeltaTable.forPath(self.spark, self.path(name)).history()
        row = history.filter(f"version = {int(version)}").select("userMetadata").first()
        if row is None or not row["userMetadata"]:
            return {}
        loaded = json.loads(row["userMetadata"])
        return loaded if isinstance(loaded, dict) else {}

    def rollback(self) -> list[str]:
        """Put every table this catalog wrote back as it was before its first write.

        A job writing several tables calls this when it fails after some of its commits, so
        that a failed job leaves every table as it was: a table that existed is restored to
        its previous version (a RESTORE commit), and a table the job created is removed.

        Returns:
            The tables that were put back.
        """
        restored = []
        for name, before in reversed(list(self._versions_before.items())):
            current = self.version(name)
            if current == before:
                continue
            if before is None:
                self._delete_path(self.path(name))
            else:
                DeltaTable.forPath(self.spark, self.path(name)).restoreToVersion(before)
            restored.append(name)
        self.outputs.clear()
        self._versions_before.clear()
        return restored

    def _delete_path(self, path: str) -> None:
        jvm = self.spark.sparkContext._jvm
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
        hadoop_path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration()).delete(hadoop_path, True)

    @staticmethod
    def _record(entries: list[TableVersion], entry: TableVersion) -> None:
        if entry not in entries:
            entries.append(entry)
