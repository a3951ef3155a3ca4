"""All table I/O behind one facade: logical names to Delta paths, reads pinned to a version,
atomic writes, and a run's lineage.

A logical name `<zone>.<name>` maps to `<storage.root>/<zone>/<name>`. Every read and write in
parity goes through a `Catalog`, built from three parts, each of which can be used alone:

- the table store (`parity.core.table_store`): read a version, write one commit, MERGE;
- the history of a table (`parity.core.table_history`): commit metadata, operation metrics,
  the change data feed, manifests and landing times;
- the run's transaction (`parity.core.transaction`): the run id and a commit id in every
  commit's metadata, the versions the run used and created, and a rollback of only its own
  commits.

Each write is one Delta commit: it lands whole or not at all, and a failed job leaves the table
at its previous version. A run's lineage is what fed its results: `read`, `read_versioned`,
`read_history` and `read_stream` record the version they read as an input; `schema`, `exists`,
`version`, `snapshot` and `row_count` are probes and record nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from parity.core.commits import (
    COMMIT_ID_KEY,
    ROLLBACK_OF_KEY,
    RUN_ID_KEY,
    USER_METADATA_CONF,
    Commit,
    CommitNotFoundError,
    RollbackOutcome,
)
from parity.core.conf import Settings
from parity.core.delta_log import latest_version
from parity.core.digests import content_digest
from parity.core.table_history import CHANGE_DATA_FEED, LANDED_AT, TableHistory
from parity.core.table_store import (
    DeltaTableStore,
    MergeOptions,
    TableNotFoundError,
    TableStore,
    WriteOptions,
    pinned_version,
    table_path,
)
from parity.core.transaction import RunTransaction, TableVersion

__all__ = [  # what this module held before the storage parts moved out; `parity.tables` is this module too
    "CHANGE_DATA_FEED",
    "COMMIT_ID_KEY",
    "LANDED_AT",
    "ROLLBACK_OF_KEY",
    "RUN_ID_KEY",
    "USER_METADATA_CONF",
    "Catalog",
    "Commit",
    "CommitNotFoundError",
    "RollbackOutcome",
    "TableNotFoundError",
    "TableStore",
    "TableVersion",
    "content_digest",
    "latest_version",
    "table_path",
]


@dataclass
class Catalog:
    """Reads and writes logical tables, remembering the versions a run used and made.

    `run_id` goes into the metadata of every commit the catalog makes; a job passes its run's
    id, and a catalog made without one (a notebook, a test) draws its own. `inputs` and
    `outputs` are the run's lineage (its `transaction`'s).
    """

    spark: SparkSession
    settings: Settings
    inputs: list[TableVersion] = field(default_factory=list)
    outputs: list[TableVersion] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    store: DeltaTableStore = field(init=False, repr=False)
    history: TableHistory = field(init=False, repr=False)
    transaction: RunTransaction = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.store = DeltaTableStore(self.spark, self.settings)
        self.history = TableHistory(self.store)
        self.transaction = RunTransaction(self.store, self.run_id, self.inputs, self.outputs)

    def path(self, name: str) -> str:
        return self.store.path(name)

    def exists(self, name: str) -> bool:
        """Whether the table exists (a probe: not recorded as an input)."""
        return self.store.exists(name)

    def version(self, name: str) -> int | None:
        """The table's newest version, None when there is none (not recorded as an input)."""
        return self.store.version(name)

    def schema(self, name: str) -> T.StructType:
        """The newest version's schema (a probe: not recorded as an input).

        Raises:
            TableNotFoundError: there is no Delta table at the name's path.
        """
        return self.store.schema(name)

    def table_id(self, name: str) -> str | None:
        """The id Delta gave the table when it was created (None if there is none)."""
        return self.history.table_id(name)

    def read(self, name: str, version: int | None = None) -> DataFrame:
        """Read a table pinned to one version (the newest by default) and record it as an input.

        Raises:
            TableNotFoundError: there is no Delta table at the name's path.
        """
        return self.read_versioned(name, version)[0]

    def read_versioned(self, name: str, version: int | None = None) -> tuple[DataFrame, int]:
        """Like `read`, and also return the version that was read."""
        current = pinned_version(self.store, name, version)
        self.transaction.used(name, current)
        return self.store.read(name, current), current

    def read_stream(self, name: str, **options: str) -> DataFrame:
        """The table as a Structured Streaming source (reader `options`, e.g. maxFilesPerTrigger),
        recorded as an input at its newest version when the stream is defined.

        Raises:
            TableNotFoundError: there is no Delta table at the name's path.
        """
        self.transaction.used(name, pinned_version(self.store, name))
        return self.store.read_stream(name, options)

    def write(  # noqa: PLR0913  the keyword API users and notebooks call (README); folded into WriteOptions
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
        options = WriteOptions(mode, replace_where, partition_by, properties, merge_schema, txn)
        return self.transaction.write(df, name, options, commit_metadata or {})

    def merge(  # noqa: PLR0913  the keyword API users and notebooks call (README); folded into MergeOptions
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
                df, commit_metadata = self.history.with_landing_times(df, name, before, commit_metadata)
            return self.write(
                df, name, partition_by=partition_by, commit_metadata=commit_metadata, properties=properties
            )
        options = MergeOptions(keys, scope, versioned)
        return self.transaction.merge(df, name, options, commit_metadata or {}, compared_with=before)

    def read_history(
        self, name: str, version: int | None = None, *, landed_at: str = LANDED_AT
    ) -> tuple[DataFrame, int]:
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
        current = pinned_version(self.store, name, version)
        rows = self.history.change_feed(name, current, landed_at=landed_at)
        self.transaction.used(name, current)
        return rows, current

    def commit_metadata_history(self, name: str, *, containing: str) -> list[dict[str, object]]:
        """The metadata of every commit still in a table's history whose metadata holds the key
        `containing`, newest first (empty when there is no table)."""
        return self.history.commit_metadata_history(name, containing=containing)

    def vacuum(self, name: str, *, retain_hours: float, protect: set[int] | None = None) -> float:
        """VACUUM a table, but never delete a file that a protected version still needs (see
        `parity.core.vacuum.vacuum_protecting`).

        Returns:
            The retention, in hours, the VACUUM ran with.
        """
        return self.store.vacuum(name, retain_hours=retain_hours, protect=protect)

    def latest_commit_metadata(self, name: str, key: str) -> dict[str, object]:
        """The metadata of the newest commit of a table whose metadata holds `key` (empty if none).

        Commits that carry no such metadata (a VACUUM, an OPTIMIZE) are skipped. A RESTORE
        (a rollback) skips the commits it undid too: what it returns describes the content
        the table holds, not a commit that was rolled back.
        """
        return self.history.latest_commit_metadata(name, key)

    def operation_metrics(self, name: str, version: int) -> dict[str, int]:
        """Delta's operation metrics of one commit (rows inserted, updated, deleted, files ...),
        read from its log file (no Spark job)."""
        return self.history.operation_metrics(name, version)

    def snapshot(self, name: str, version: int) -> DataFrame:
        """One version of a table for checking what a job wrote (not recorded as an input)."""
        return self.store.read(name, version)

    def row_count(self, name: str, version: int) -> int:
        """Rows in one version of a table (a check, not recorded as an input)."""
        return self.snapshot(name, version).count()

    def manifest_entry(self, name: str, version: int) -> dict[str, object]:
        """What pins one input of a build: (table, version, commit time, content digest).

        The digest is order-independent (a sum of row hashes), so it identifies the rows of
        that version whatever the file layout; it runs one Spark job over the table.
        """
        return self.history.manifest_entry(name, version)

    def commit_metadata(self, name: str, version: int) -> dict[str, object]:
        """The metadata stored with one commit of a table (empty if none); parity's own keys
        (`parity.run_id`, `parity.commit_id`) say which run made it."""
        return self.history.commit_metadata(name, version)

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
        return self.transaction.rollback()
