"""A run's transaction: the versions it used and the commits it made, and a rollback of only those.

Several writers may write one table at once (two jobs, a job and a notebook). Every commit a
run makes carries its run id and a commit id of its own in Delta's commit metadata
(userMetadata), so the run knows which versions are its own: a write records the version its
own commit created, not whatever is newest, and a rollback undoes only its own commits. Where
another writer committed after them it leaves the table as it is and says so, rather than
discard that work.

The run's lineage is what it `used` (each read that fed a result records the version it read;
a probe, or a read of the run's own output, records nothing) and the versions its commits
created. It works through a `TableStore`, so a test can run it on a fake one.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from pyspark.sql import DataFrame

from parity.core.commits import (
    COMMIT_ID_KEY,
    ROLLBACK_OF_KEY,
    RUN_ID_KEY,
    Commit,
    CommitNotFoundError,
    RollbackOutcome,
)
from parity.core.table_store import MergeOptions, TableStore, WriteOptions


@dataclass(frozen=True)
class TableVersion:
    table: str
    version: int

    def as_dict(self) -> dict[str, object]:
        return {"table": self.table, "version": self.version}


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class RunTransaction:
    """One run's reads and commits on a `store`; `run_id` goes into every commit's metadata."""

    store: TableStore
    run_id: str = field(default_factory=_new_id)
    inputs: list[TableVersion] = field(default_factory=list)
    outputs: list[TableVersion] = field(default_factory=list)
    _versions_before: dict[str, int | None] = field(default_factory=dict, repr=False)

    def used(self, name: str, version: int) -> None:
        """Record that a version of a table fed this run's results (an input of its lineage)."""
        _add(self.inputs, TableVersion(name, version))

    def write(
        self, df: DataFrame, name: str, options: WriteOptions, commit_metadata: Mapping[str, object]
    ) -> int:
        """Write `df` as one commit of this run, and record the version it created (see `Catalog.write`).

        Raises:
            CommitNotFoundError: the write returned, but left no commit of its own.
        """
        before = self.store.version(name)
        self._versions_before.setdefault(name, before)
        metadata, commit_id = self._stamp(commit_metadata)
        self.store.write(df, name, options, metadata)
        commit = self._own_commit(name, commit_id, after=before)
        if commit is None:
            if before is None:
                raise CommitNotFoundError(
                    f"write to {name} returned, but there is no commit of it at {self.store.path(name)}"
                )
            return before  # nothing committed (Delta skips an empty append, or a transaction it has)
        _add(self.outputs, TableVersion(name, commit.version))
        return commit.version

    def merge(
        self,
        df: DataFrame,
        name: str,
        options: MergeOptions,
        commit_metadata: Mapping[str, object],
        *,
        compared_with: int,
    ) -> int:
        """MERGE `df` into version `compared_with` of an existing table as one commit of this run,
        and record the version it created; when nothing differs there is no commit, and it
        returns `compared_with` (see `Catalog.merge`)."""
        self._versions_before.setdefault(name, compared_with)
        metadata, commit_id = self._stamp(commit_metadata)
        if not self.store.merge(df, name, options, compared_with=compared_with, metadata=metadata):
            return compared_with
        commit = self._own_commit(name, commit_id, after=compared_with)
        if commit is None:  # the rows changed nothing after all (another writer got there first)
            return compared_with
        _add(self.outputs, TableVersion(name, commit.version))
        return commit.version

    def rollback(self) -> list[RollbackOutcome]:
        """Undo this run's commits to every table it wrote, and only its own (see `Catalog.rollback`).

        Returns:
            One outcome for each table that holds a commit of this run, newest write first.
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
        """Undo this run's commits to one table since version `before`, unless another writer's follow them."""
        newest = self.store.version(name)
        if newest is None or newest == before:
            return None
        commits = self.store.commits(name, after=before, upto=newest)
        own = sorted(c.version for c in commits if c.run_id == self.run_id)
        if not own:
            return None
        others = sorted(c.version for c in commits if c.version > own[0] and c.run_id != self.run_id)
        if others:
            return RollbackOutcome(name, "left", newest, tuple(own), tuple(others))
        target = own[0] - 1
        if target < 0:  # this run created the table
            if self.store.version(name) != newest:  # someone committed since the look above: look again
                return self._roll_back(name, before)
            self.store.remove(name)
            return RollbackOutcome(name, "removed", None, tuple(own))
        restore = self._restore(name, target, after=newest)
        if restore is not None and restore.read_version is not None and restore.read_version != newest:
            # Another writer committed between the look above and the RESTORE, which undid that
            # commit too: put the table back as the RESTORE found it, and leave it there.
            again = self._restore(name, restore.read_version, after=restore.version)
            late = tuple(range(newest + 1, restore.version))
            return RollbackOutcome(
                name, "left", again.version if again else restore.version, tuple(own), late
            )
        return RollbackOutcome(name, "restored", target, tuple(own))

    def _restore(self, name: str, version: int, *, after: int) -> Commit | None:
        """RESTORE a table to `version` as a commit of this run; return that commit."""
        metadata, commit_id = self._stamp({ROLLBACK_OF_KEY: version + 1})
        self.store.restore(name, version, metadata)
        return self._own_commit(name, commit_id, after=after)

    def _stamp(self, commit_metadata: Mapping[str, object]) -> tuple[dict[str, object], str]:
        """The metadata of one commit (the caller's, with this run's id and a fresh commit id),
        and that commit id."""
        commit_id = _new_id()
        return {**commit_metadata, RUN_ID_KEY: self.run_id, COMMIT_ID_KEY: commit_id}, commit_id

    def _own_commit(self, name: str, commit_id: str, *, after: int | None) -> Commit | None:
        """The commit after version `after` that carries `commit_id` (None if there is none).

        Another writer may have committed since: the search reads the commits from the newest
        back to `after`, usually just one.
        """
        newest = self.store.version(name)
        if newest is None:
            return None
        for commit in self.store.commits(name, after=after, upto=newest):
            if commit.metadata.get(COMMIT_ID_KEY) == commit_id:
                return commit
        return None


def _add(entries: list[TableVersion], entry: TableVersion) -> None:
    if entry not in entries:
        entries.append(entry)
