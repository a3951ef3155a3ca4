"""The history of a table: its commits' metadata and operation metrics, its change data feed,
what pins a version in a manifest, and when its rows landed.

Nothing here writes a table or records lineage: these are questions about versions a table
already holds (`parity.core.table_store` reads and writes them, `parity.core.transaction`
records what a run used and made).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from parity.core import delta_log
from parity.core import versioned as versioned_rows
from parity.core.commits import parse_metadata
from parity.core.digests import content_digest
from parity.core.table_store import DeltaTableStore, TableNotFoundError

CHANGE_DATA_FEED = "delta.enableChangeDataFeed"
LANDED_AT = versioned_rows.LANDED_AT  # in a table's history: when the row landed


@dataclass
class TableHistory:
    """Questions about the versions of the tables in a Delta `store`."""

    store: DeltaTableStore

    def table_id(self, name: str) -> str | None:
        """The id Delta gave the table when it was created (None if there is none)."""
        return delta_log.table_id(self.store.spark, self.store.path(name))

    def _history(self, name: str) -> DataFrame:
        return DeltaTable.forPath(self.store.spark, self.store.path(name)).history()

    def commit_metadata(self, name: str, version: int) -> dict[str, object]:
        """The metadata stored with one commit (empty if none, or there is no table)."""
        if version < 0 or not self.store.exists(name):
            return {}
        found = self.store.commits(name, after=version - 1, upto=version)
        return found[0].metadata if found else {}

    def operation_metrics(self, name: str, version: int) -> dict[str, int]:
        """Delta's operation metrics of one commit (rows inserted, updated, deleted, files ...),
        read from its log file (no Spark job)."""
        found = self.store.commits(name, after=version - 1, upto=version)
        return found[0].metrics if found else {}

    def commit_metadata_history(self, name: str, *, containing: str) -> list[dict[str, object]]:
        """The metadata of every commit still in the history whose metadata holds the key
        `containing`, newest first (empty when there is no table)."""
        if not self.store.exists(name):
            return []
        history = self._history(name).select("version", "userMetadata")
        rows = (
            history.filter(F.col("userMetadata").contains(json.dumps(containing)))
            .orderBy(F.desc("version"))
            .collect()
        )
        found = [parse_metadata(row["userMetadata"]) for row in rows]
        return [metadata for metadata in found if containing in metadata]

    def latest_commit_metadata(self, name: str, key: str) -> dict[str, object]:
        """The metadata of the newest commit whose metadata holds `key` (empty if none), skipping
        commits without it (a VACUUM, an OPTIMIZE) and the commits a RESTORE undid."""
        rows = (
            self._history(name)
            .filter(F.col("userMetadata").contains(json.dumps(key)) | (F.col("operation") == "RESTORE"))
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

    def manifest_entry(self, name: str, version: int) -> dict[str, object]:
        """What pins one input of a build: (table, version, commit time, content digest); the
        digest runs one Spark job over the version's rows.

        Raises:
            TableNotFoundError: the table has no such version.
        """
        commit = self._history(name).filter(f"version = {int(version)}").first()
        if commit is None:
            raise TableNotFoundError(f"table {name} has no version {version}")
        return {
            "table": name,
            "version": version,
            "commit_time": commit["timestamp"].isoformat(),
            "digest": content_digest(self.store.read(name, version)),
        }

    def keeps_change_feed(self, name: str) -> bool:
        """Whether the table was created with Delta's change data feed."""
        detail = DeltaTable.forPath(self.store.spark, self.store.path(name)).detail()
        properties = detail.select("properties").first()
        return properties is not None and properties["properties"].get(CHANGE_DATA_FEED) == "true"

    def change_feed(self, name: str, version: int, *, landed_at: str = LANDED_AT) -> DataFrame:
        """Every version of every row the table has held up to `version`, each with the time its
        commit landed in `landed_at`: the inserts and the new sides of updates in its change data
        feed (a row a later commit deleted stays, since it was known until then).

        Raises:
            ValueError: the table was created without the change data feed.
        """
        if not self.keeps_change_feed(name):
            raise ValueError(
                f"{name} keeps no change data feed, so when its rows landed is unknown; rebuild it with --full-refresh"
            )
        return self._changes(name, version, landed_at=landed_at)

    def _changes(self, name: str, version: int, *, landed_at: str = LANDED_AT) -> DataFrame:
        changes = (
            self.store.spark.read.format("delta")
            .option("readChangeFeed", "true")
            .option("startingVersion", 0)
            .option("endingVersion", version)
            .load(self.store.path(name))
        )
        history = changes.filter(F.col("_change_type").isin("insert", "update_postimage"))
        return history.withColumn(landed_at, F.col("_commit_timestamp")).drop(
            "_change_type", "_commit_version", "_commit_timestamp"
        )

    def with_landing_times(
        self, df: DataFrame, name: str, replaced: int | None, commit_metadata: dict[str, object] | None
    ) -> tuple[DataFrame, dict[str, object]]:
        """A versioned table's rows about to be written whole over version `replaced` (None: a
        new table), and their commit's metadata: each row keeps the landing time the replaced
        version proves (its own `landed_at`; for a table of the older layout, its change data
        feed), the others land once they are computed (`LANDED_AT_KEY` in the metadata)."""
        proven = None
        if replaced is not None:
            previous = self.store.read(name, replaced)
            proves = not versioned_rows.is_versioned(previous) and self.keeps_change_feed(name)
            proven = versioned_rows.proven_rows(previous, self._changes(name, replaced) if proves else None)
        rows = versioned_rows.with_proven_landing(
            df, proven
        ).localCheckpoint()  # computed before the landing time is taken
        landed_at = versioned_rows.now()
        stamped = rows.withColumn(
            versioned_rows.LANDED_AT, F.coalesce(versioned_rows.LANDED_AT, F.lit(landed_at).cast("timestamp"))
        )
        return stamped, {**(commit_metadata or {}), versioned_rows.LANDED_AT_KEY: landed_at}
