"""All table I/O: logical names to Delta paths, reads pinned to a version, atomic writes.

A logical name `<zone>.<name>` maps to `<storage.root>/<zone>/<name>`. Every read and write
in parity goes through a `Catalog`, which also records the Delta versions it read and wrote,
so that a job's lineage is exactly what it touched. Each write is one Delta commit: it either
lands whole or not at all, and a failed job leaves the table at its previous version.

Several writers may write one table at once (two jobs, a job and a notebook). Every commit a
catalog makes carries its run id and a commit id of its own in Delta's commit metadata, so a
catalog knows which versions are its own: a write records the version its own commit created,
not whatever is newest, and a rollback undoes only its own commits. Where another writer
committed after them it leaves the table as it is and says so, rather than discard that work.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from parity.core import versioned as versioned_rows
from parity.core.commits import (
    COMMIT_ID_KEY,
    ROLLBACK_OF_KEY,
    RUN_ID_KEY,
    USER_METADATA_CONF,
    Commit,
    CommitNotFoundError,
    RollbackOutcome,
    commits_between,
    ensure_table_properties,
    latest_version,
    parse_metadata,
    session_conf,
    table_id,
)
from parity.core.conf import ZONES, Settings
from parity.core.digests import content_digest
from parity.core.merges import CHECKPOINTED_SOURCE, upsert
from parity.core.vacuum import vacuum_protecting

CHANGE_DATA_FEED = "delta.enableChangeDataFeed"
LANDED_AT = versioned_rows.LANDED_AT  # in a table's history: when the row landed

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


@dataclass
class Catalog:
    """Reads and writes logical tables, remembering the versions for lineage.

    `run_id` goes into the metadata of every commit the catalog makes; a job passes its run's
    id, and a catalog made without one (a notebook, a test) draws its own.
    """

    spark: SparkSession
    settings: Settings
    inputs: list[TableVersion] = field(default_factory=list)
    outputs: list[TableVersion] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    _versions_before: dict[str, int | None] = field(default_factory=dict, repr=False)

    def path(self, name: str) -> str:
        return table_path(self.settings, name)

    def exists(self, name: str) -> bool:
        return DeltaTable.isDeltaTable(self.spark, self.path(name))

    def version(self, name: str) -> int | None:
        return latest_version(self.spark, self.path(name))

    def table_id(self, name: str) -> str | None:
        """The id Delta gave the table when it was created (None if there is none)."""
        return table_id(self.spark, self.path(name))

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
        merge_schema: bool = False,
        txn: tuple[str, int] | None = None,
    ) -> int:
        """Write `df` to a table as one Delta commit and record the version it created as an output.

        `overwrite` replaces the whole table (and its schema) unless `replace_where` limits the
        replacement to the rows matching that predicate; `append` adds rows, and with
        `merge_schema` adds the columns of `df` the table lacks. `commit_metadata` is stored with
        the commit (Delta's userMetadata, with the catalog's run id) and read back by
        `commit_metadata`. `properties` (e.g. delta.appendOnly) are set on the table, an existing one too.
        `txn` (app id, version) makes the write idempotent (Delta's txnAppId and txnVersion): a
        write of a version that app has already committed to the table commits nothing.

        Returns:
            The version this write's commit created, even when another writer has committed
            since. A write that commits nothing (Delta skips an empty append) records no output
            and returns the version it found.

        Raises:
            CommitNotFoundError: the write returned, but left no commit of its own.
        """
        before = self.version(name)
        if properties and before is not None:
            ensure_table_properties(self.spark, self.path(name), properties)
        self._versions_before.setdefault(name, before)
        metadata, commit_id = self._stamp(commit_metadata)
        writer = df.write.format("delta").mode(mode).option("userMetadata", metadata)
        if mode == "overwrite" and replace_where is None:
            writer = writer.option("overwriteSchema", "true")
        if replace_where is not None:
            writer = writer.option("replaceWhere", replace_where)
        if merge_schema:
            writer = writer.option("mergeSchema", "true")
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        for key, value in {**(properties or {}), **({"txnAppId": txn[0], "txnVersion": str(txn[1])} if txn else {})}.items():
            writer = writer.option(key, value)
        writer.save(self.path(name))
        commit = self._own_commit(name, commit_id, after=before)
        if commit is None:
            if before is None:
                raise CommitNotFoundError(f"write to {name} returned, but there is no commit of it at {self.path(name)}")
            return before
        self._record(self.outputs, TableVersion(name, commit.version))
        return commit.version

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
        versioned: bool = False,
    ) -> int:
        """Upsert `df` into a table keyed by `keys`, as one Delta MERGE commit.

        New keys are inserted and rows that differ are updated. With a `scope` (a SQL predicate
        over the target, aliased `t`) the rows in scope end up exactly the rows of `df`: target
        rows in scope whose key `df` lacks are deleted, rows outside it are untouched, and a
        scope on partition columns keeps the MERGE to those partitions. Without one, nothing
        is deleted. Merging the same rows again changes no row and rewrites no
        file. A table that does not exist yet, or `replace`, is written whole.

        A `versioned` table (`parity.core.versioned`) is never overwritten: an update
        supersedes the row it changes and inserts the new version, a deletion supersedes the
        row, and the rows landing carry the landing time, which the commit's metadata records
        (`LANDED_AT_KEY`). Written whole, it keeps the landing time of each row equal to a
        current row of the table it replaces (for a table of the older layout, as its change
        data feed proves it).

        Returns:
            The version this MERGE's commit created; when nothing differs there is no commit,
            and it returns the version the rows were compared with.
        """
        before = self.version(name)
        if replace or before is None:
            if versioned:
                df, commit_metadata = self._landing(df, name, before, commit_metadata)
            return self.write(df, name, partition_by=partition_by, commit_metadata=commit_metadata, properties=properties)
        self._versions_before.setdefault(name, before)
        current = self.snapshot(name, before).alias("t")
        if versioned:
            current = current.filter(F.col(versioned_rows.SUPERSEDED_AT).isNull())
        planned = upsert(self.spark, self.path(name), df, current, keys=keys, scope=scope, versioned=versioned)
        if planned is None:  # nothing differs: no MERGE, no commit
            return before
        merge, landed_at = planned
        metadata, commit_id = self._stamp({**(commit_metadata or {}), **({versioned_rows.LANDED_AT_KEY: landed_at} if landed_at else {})})
        with session_conf(self.spark, {USER_METADATA_CONF: metadata, **CHECKPOINTED_SOURCE}):  # MERGE takes no userMetadata option
            merge.execute()
        commit = self._own_commit(name, commit_id, after=before)
        if commit is None:  # the rows changed nothing after all (another writer got there first)
            return before
        self._record(self.outputs, TableVersion(name, commit.version))
        return commit.version

    def _landing(
        self, df: DataFrame, name: str, before: int | None, commit_metadata: dict[str, object] | None
    ) -> tuple[DataFrame, dict[str, object]]:
        """A versioned table's rows written whole, and their commit's metadata: each row keeps
        the landing time the replaced table proves, the others land once they are computed."""
        proven = None
        if before is not None:
            previous = self.snapshot(name, before)
            history = None if versioned_rows.is_versioned(previous) or not self._keeps_change_feed(name) else self._change_feed(name, before)
            proven = versioned_rows.proven_rows(previous, history)
        rows = versioned_rows.with_proven_landing(df, proven).localCheckpoint()  # computed before the landing time is taken
        landed_at = versioned_rows.now()
        stamped = rows.withColumn(versioned_rows.LANDED_AT, F.coalesce(versioned_rows.LANDED_AT, F.lit(landed_at).cast("timestamp")))
        return stamped, {**(commit_metadata or {}), versioned_rows.LANDED_AT_KEY: landed_at}

    def read_history(self, name: str, version: int | None = None, *, landed_at: str = LANDED_AT) -> tuple[DataFrame, int]:
        """Every version of every row a table has held up to `version` (the newest by default),
        each with the time its commit landed in `landed_at`, from Delta's change data feed: how
        as-known-at joins read tables built before rows kept their landing times (a versioned
        table holds them in its rows, which VACUUM cannot remove; the change data feed it can).

        Rows are inserts and the new side of updates; a row a later commit deleted stays in the
        history, since it was known until then. Recorded as an input at `version`.

        Raises:
            TableNotFoundError: there is no table.
            ValueError: the table was created without the change data feed.
        """
        current = self.version(name) if version is None else version
        if current is None:
            raise TableNotFoundError(f"table {name} does not exist at {self.path(name)}; run the job that builds it first")
        if not self._keeps_change_feed(name):
            raise ValueError(f"{name} keeps no change data feed, so when its rows landed is unknown; rebuild it with --full-refresh")
        self._record(self.inputs, TableVersion(name, current))
        return self._change_feed(name, current, landed_at=landed_at), current

    def _keeps_change_feed(self, name: str) -> bool:
        properties = DeltaTable.forPath(self.spark, self.path(name)).detail().select("properties").first()
        return properties is not None and properties["properties"].get(CHANGE_DATA_FEED) == "true"

    def _change_feed(self, name: str, version: int, *, landed_at: str = LANDED_AT) -> DataFrame:
        """The inserts and updates' new sides in a table's change data feed up to `version`, each
        with its commit's time in `landed_at`."""
        changes = (
            self.spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", 0)
            .option("endingVersion", version)
            .load(self.path(name))
        )
        history = changes.filter(F.col("_change_type").isin("insert", "update_postimage"))
        return history.withColumn(landed_at, F.col("_commit_timestamp")).drop("_change_type", "_commit_version", "_commit_timestamp")

    def commit_metadata_history(self, name: str, *, containing: str) -> list[dict[str, object]]:
        """The metadata of every commit still in a table's history whose metadata holds the key
        `containing`, newest first (empty when there is no table)."""
        if not self.exists(name):
            return []
        history = DeltaTable.forPath(self.spark, self.path(name)).history().select("version", "userMetadata")
        rows = history.filter(F.col("userMetadata").contains(json.dumps(containing))).orderBy(F.desc("version")).collect()
        found = [parse_metadata(row["userMetadata"]) for row in rows]
        return [metadata for metadata in found if containing in metadata]

    def vacuum(self, name: str, *, retain_hours: float, protect: set[int] | None = None) -> float:
        """VACUUM a table, but never delete a file that a protected version still needs (see
        `parity.core.vacuum.vacuum_protecting`).

        Returns:
            The retention, in hours, the VACUUM ran with.
        """
        return vacuum_protecting(self.spark, self.path(name), name=name, retain_hours=retain_hours, protect=protect)

    def latest_commit_metadata(self, name: str, key: str) -> dict[str, object]:
        """The metadata of the newest commit of a table whose metadata holds `key` (empty if none).

        Commits that carry no such metadata (a VACUUM, an OPTIMIZE) are skipped. A RESTORE
        (a rollback) skips the commits it undid too: what it returns describes the content
        the table holds, not a commit that was rolled back.
        """
        history = DeltaTable.forPath(self.spark, self.path(name)).history()
        rows = (
            history.filter(F.col("userMetadata").contains(json.dumps(key)) | (F.col("operation") == "RESTORE"))
            .select("version", "operation", "operationParameters", "userMetadata")
            .orderBy(F.desc("version"))
            .collect()
        )
        restored_to: int | None = None
        for row in rows:
            if restored_to is not None and row["version"] > restored_to:
                continue  # undone by a newer RESTORE
            if row["operation"] == "RESTORE":
                restored_to = int((row["operationParameters"] or {}).get("version", row["version"]))
                continue
            metadata = parse_metadata(row["userMetadata"])
            if key in metadata:
                return metadata
        return {}

    def operation_metrics(self, name: str, version: int) -> dict[str, int]:
        """Delta's operation metrics of one commit (rows inserted, updated, deleted, files ...),
        read from its log file (no Spark job)."""
        found = commits_between(self.spark, self.path(name), after=version - 1, upto=version)
        return found[0].metrics if found else {}

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
        """The metadata stored with one commit of a table (empty if none); parity's own keys
        (`parity.run_id`, `parity.commit_id`) say which run made it."""
        if version < 0 or not self.exists(name):
            return {}
        found = commits_between(self.spark, self.path(name), after=version - 1, upto=version)
        return found[0].metadata if found else {}

    def rollback(self) -> list[RollbackOutcome]:
        """Undo this catalog's commits to every table it wrote, and only its own commits.

        A job calls this when it fails after some of its commits, so that a failed job leaves
        every table as it was. A table whose commits since this catalog's first write are all
        its own (other writers' commits before its first are kept) is restored to the version
        before that write (a RESTORE commit), or removed if this catalog created it. Where
        another writer committed after (or between) its commits, restoring would discard that
        writer's work: the table is left as it is, and the outcome says so. A table with no
        commit of this catalog (its write failed) is not touched.

        Returns:
            One outcome for each table that holds a commit of this catalog, newest write first.
        """
        outcomes = []
        for name, before in reversed(list(self._versions_before.items())):
            outcome = self._roll_back(name, before)
            if outcome is not None:
                outcomes.append(outcome)
        left = {o.table for o in outcomes if o.action == "left"}
        self.outputs[:] = [entry for entry in self.outputs if entry.table in left]  # commits still in place
        self._versions_before.clear()
        return outcomes

    def _roll_back(self, name: str, before: int | None) -> RollbackOutcome | None:
        """Undo this catalog's commits to one table since version `before`, unless another writer's follow them."""
        newest = self.version(name)
        if newest is None or newest == before:
            return None
        commits = commits_between(self.spark, self.path(name), after=before, upto=newest)
        own = sorted(c.version for c in commits if c.run_id == self.run_id)
        if not own:
            return None
        others = sorted(c.version for c in commits if c.version > own[0] and c.run_id != self.run_id)
        if others:
            return RollbackOutcome(name, "left", newest, tuple(own), tuple(others))
        target = own[0] - 1
        if target < 0:  # this catalog created the table
            if self.version(name) != newest:  # someone committed since the look above: look again
                return self._roll_back(name, before)
            self._delete_path(self.path(name))
            return RollbackOutcome(name, "removed", None, tuple(own))
        restore = self._restore(name, target, after=newest)
        if restore is not None and restore.read_version is not None and restore.read_version != newest:
            # Another writer committed between the look above and the RESTORE, which undid that
            # commit too: put the table back as the RESTORE found it, and leave it there.
            again = self._restore(name, restore.read_version, after=restore.version)
            late = tuple(range(newest + 1, restore.version))
            return RollbackOutcome(name, "left", again.version if again else restore.version, tuple(own), late)
        return RollbackOutcome(name, "restored", target, tuple(own))

    def _restore(self, name: str, version: int, *, after: int) -> Commit | None:
        """RESTORE a table to `version` as a commit of this catalog; return that commit."""
        metadata, commit_id = self._stamp({ROLLBACK_OF_KEY: version + 1})
        with session_conf(self.spark, {USER_METADATA_CONF: metadata}):
            DeltaTable.forPath(self.spark, self.path(name)).restoreToVersion(version)
        return self._own_commit(name, commit_id, after=after)

    def _stamp(self, commit_metadata: dict[str, object] | None) -> tuple[str, str]:
        """The userMetadata of one commit (the caller's metadata with this catalog's run id and a
        fresh commit id), and that commit id."""
        commit_id = uuid.uuid4().hex
        metadata = {**(commit_metadata or {}), RUN_ID_KEY: self.run_id, COMMIT_ID_KEY: commit_id}
        return json.dumps(metadata, sort_keys=True, default=str), commit_id

    def _own_commit(self, name: str, commit_id: str, *, after: int | None) -> Commit | None:
        """The commit after version `after` that carries `commit_id` (None if there is none).

        Another writer may have committed since: the search reads the commits from the newest
        back to `after`, usually just one.
        """
        newest = self.version(name)
        if newest is None:
            return None
        for commit in commits_between(self.spark, self.path(name), after=after, upto=newest):
            if commit.metadata.get(COMMIT_ID_KEY) == commit_id:
                return commit
        return None

    def _delete_path(self, path: str) -> None:
        jvm = self.spark.sparkContext._jvm
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
        hadoop_path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration()).delete(hadoop_path, True)

    @staticmethod
    def _record(entries: list[TableVersion], entry: TableVersion) -> None:
        if entry not in entries:
            entries.append(entry)
