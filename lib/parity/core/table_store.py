"""The table store: logical names to Delta paths, a version read, one commit written, a MERGE.

A logical name `<zone>.<name>` maps to `<storage.root>/<zone>/<name>`. `TableStore` is what
code needs of storage, as a Protocol, so that code which decides (a rollback, a build plan, a
gate) can take a fake or in-memory store in a test where Delta is beside the point;
`DeltaTableStore` is the store parity runs with. A store records nothing: which reads fed a
run and which commits it made are the run's (`parity.core.transaction`), and a commit's
metadata comes in whole from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from parity.core import delta_log
from parity.core.commits import (
    USER_METADATA_CONF,
    Commit,
    commits_between,
    ensure_table_properties,
    metadata_text,
    session_conf,
)
from parity.core.conf import ZONES, Settings
from parity.core.merges import (  # MergeOptions lives with the MERGE it describes; importable from here too
    CHECKPOINTED_SOURCE,
    MergeOptions,
    upsert,
)
from parity.core.vacuum import vacuum_protecting
from parity.core.versioned import LANDED_AT_KEY, SUPERSEDED_AT


class TableNotFoundError(LookupError):
    """A logical table has no Delta table at its path yet."""


def table_path(settings: Settings, name: str) -> str:
    """The Delta path of a logical table name."""
    zone, _, rest = name.partition(".")
    if zone not in ZONES or not rest or "." in rest:
        raise ValueError(f"'{name}' is not a logical table name <zone>.<name> (zones: {', '.join(ZONES)})")
    return f"{settings.storage.root.rstrip('/')}/{zone}/{rest}"


@dataclass(frozen=True)
class WriteOptions:
    """How one write commits (see `Catalog.write`): `overwrite` (the rows matching
    `replace_where`, else the whole table and its schema) or `append` (with `merge_schema`, adding
    the columns the table lacks); `properties` set on the table; `txn` (Delta's app id, version)."""

    mode: str = "overwrite"
    replace_where: str | None = None
    partition_by: list[str] | None = None
    properties: dict[str, str] | None = None
    merge_schema: bool = False
    txn: tuple[str, int] | None = None


class TableStore(Protocol):
    """Logical tables: read one version, write one commit, MERGE, and list who committed what."""

    def path(self, name: str) -> str:
        """Where the table lives."""
        ...

    def exists(self, name: str) -> bool:
        """Whether the table has been created."""
        ...

    def version(self, name: str) -> int | None:
        """The newest version (None when there is no table)."""
        ...

    def schema(self, name: str) -> T.StructType:
        """The newest version's schema (raises TableNotFoundError when there is no table)."""
        ...

    def read(self, name: str, version: int) -> DataFrame:
        """One version's rows."""
        ...

    def write(self, df: DataFrame, name: str, options: WriteOptions, metadata: Mapping[str, object]) -> None:
        """Write `df` as one commit carrying `metadata`."""
        ...

    def merge(
        self,
        df: DataFrame,
        name: str,
        options: MergeOptions,
        *,
        compared_with: int,
        metadata: Mapping[str, object],
    ) -> bool:
        """Upsert `df` into the table as it is at `compared_with`, as one commit carrying
        `metadata`; False when nothing differs, and nothing was committed."""
        ...

    def commits(self, name: str, *, after: int | None, upto: int) -> list[Commit]:
        """The commits with `after` < version <= `upto`, newest first."""
        ...

    def restore(self, name: str, version: int, metadata: Mapping[str, object]) -> None:
        """Put the table back to `version`, as one commit carrying `metadata`."""
        ...

    def remove(self, name: str) -> None:
        """Delete the table, history and all."""
        ...


def pinned_version(store: TableStore, name: str, version: int | None = None) -> int:
    """`version`, or else the table's newest.

    Raises:
        TableNotFoundError: there is no table.
    """
    current = store.version(name) if version is None else version
    if current is None:
        raise TableNotFoundError(
            f"table {name} does not exist at {store.path(name)}; run the job that builds it first"
        )
    return current


@dataclass
class DeltaTableStore:
    """Logical tables as Delta tables under `settings.storage.root` (a `TableStore`)."""

    spark: SparkSession
    settings: Settings

    def path(self, name: str) -> str:
        return table_path(self.settings, name)

    def exists(self, name: str) -> bool:
        return DeltaTable.isDeltaTable(self.spark, self.path(name))

    def version(self, name: str) -> int | None:
        return delta_log.latest_version(self.spark, self.path(name))

    def schema(self, name: str) -> T.StructType:
        if not self.exists(name):
            raise TableNotFoundError(
                f"table {name} does not exist at {self.path(name)}; run the job that builds it first"
            )
        return self.spark.read.format("delta").load(self.path(name)).schema

    def read(self, name: str, version: int) -> DataFrame:
        return self.spark.read.format("delta").option("versionAsOf", version).load(self.path(name))

    def read_stream(self, name: str, options: Mapping[str, str]) -> DataFrame:
        """The table as a stream source (Structured Streaming) with the reader's `options`."""
        return self.spark.readStream.format("delta").options(**options).load(self.path(name))

    def write(self, df: DataFrame, name: str, options: WriteOptions, metadata: Mapping[str, object]) -> None:
        if options.properties and self.exists(name):
            ensure_table_properties(self.spark, self.path(name), options.properties)
        writer = df.write.format("delta").mode(options.mode).option("userMetadata", metadata_text(metadata))
        if options.mode == "overwrite" and options.replace_where is None:
            writer = writer.option("overwriteSchema", "true")
        if options.replace_where is not None:
            writer = writer.option("replaceWhere", options.replace_where)
        if options.merge_schema:
            writer = writer.option("mergeSchema", "true")
        if options.partition_by:
            writer = writer.partitionBy(*options.partition_by)
        txn = {"txnAppId": options.txn[0], "txnVersion": str(options.txn[1])} if options.txn else {}
        for key, value in {**(options.properties or {}), **txn}.items():
            writer = writer.option(key, value)
        writer.save(self.path(name))

    def merge(
        self,
        df: DataFrame,
        name: str,
        options: MergeOptions,
        *,
        compared_with: int,
        metadata: Mapping[str, object],
    ) -> bool:
        """See `TableStore.merge`; a versioned MERGE adds its landing time to the metadata
        (`LANDED_AT_KEY`), taken once the rows to merge are computed."""
        current = self.read(name, compared_with).alias("t")
        if options.versioned:
            current = current.filter(F.col(SUPERSEDED_AT).isNull())
        planned = upsert(self.spark, self.path(name), df, current, options)
        if planned is None:  # nothing differs: no MERGE, no commit
            return False
        merge, landed_at = planned
        stamped = {**metadata, **({LANDED_AT_KEY: landed_at} if landed_at else {})}
        # A MERGE takes no userMetadata option: the session conf carries it.
        with session_conf(self.spark, {USER_METADATA_CONF: metadata_text(stamped), **CHECKPOINTED_SOURCE}):
            merge.execute()
        return True

    def commits(self, name: str, *, after: int | None, upto: int) -> list[Commit]:
        return commits_between(self.spark, self.path(name), after=after, upto=upto)

    def restore(self, name: str, version: int, metadata: Mapping[str, object]) -> None:
        with session_conf(self.spark, {USER_METADATA_CONF: metadata_text(metadata)}):
            DeltaTable.forPath(self.spark, self.path(name)).restoreToVersion(version)

    def remove(self, name: str) -> None:
        delta_log.delete_path(self.spark, self.path(name))

    def vacuum(self, name: str, *, retain_hours: float, protect: set[int] | None = None) -> float:
        """VACUUM a table, keeping every `protect`ed version readable (`vacuum_protecting`);
        the retention, in hours, it ran with."""
        return vacuum_protecting(
            self.spark, self.path(name), name=name, retain_hours=retain_hours, protect=protect
        )
