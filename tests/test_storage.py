"""The storage parts on their own: a run's transaction on an in-memory table store (no Delta),
the one module that reaches into Delta's log through py4j, and declared types parsed with
pyspark's public API."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from parity.core.columns import struct_of
from parity.core.commits import RUN_ID_KEY, Commit, RollbackOutcome
from parity.core.table_store import MergeOptions, TableNotFoundError, TableStore, WriteOptions, pinned_version
from parity.core.transaction import RunTransaction, TableVersion
from tests.support import REPO


@dataclass
class _Version:
    operation: str
    metadata: dict[str, object]
    rows: list[Any]


@dataclass
class MemoryStore:
    """A `TableStore` in memory: each table a list of versions, each a commit and its rows."""

    tables: dict[str, list[_Version]] = field(default_factory=dict)

    def path(self, name: str) -> str:
        return f"memory://{name}"

    def exists(self, name: str) -> bool:
        return name in self.tables

    def version(self, name: str) -> int | None:
        return len(self.tables[name]) - 1 if name in self.tables else None

    def schema(self, name: str) -> T.StructType:
        raise TableNotFoundError(name)

    def read(self, name: str, version: int) -> Any:
        return self.tables[name][version].rows

    def write(self, df: Any, name: str, options: WriteOptions, metadata: Mapping[str, object]) -> None:
        kept = self.tables[name][-1].rows if options.mode == "append" and name in self.tables else []
        self.tables.setdefault(name, []).append(_Version("WRITE", dict(metadata), [*kept, *df]))

    def merge(
        self, df: Any, name: str, options: MergeOptions, *, compared_with: int, metadata: Mapping[str, object]
    ) -> bool:
        rows = sorted({*self.read(name, compared_with), *df})
        if rows == self.tables[name][-1].rows:
            return False
        self.tables[name].append(_Version("MERGE", dict(metadata), rows))
        return True

    def commits(self, name: str, *, after: int | None, upto: int) -> list[Commit]:
        first = 0 if after is None else after + 1
        versions = self.tables[name]
        return [
            Commit(v, versions[v].operation, v - 1 if v else None, versions[v].metadata)
            for v in range(upto, first - 1, -1)
        ]

    def restore(self, name: str, version: int, metadata: Mapping[str, object]) -> None:
        self.tables[name].append(_Version("RESTORE", dict(metadata), self.read(name, version)))

    def remove(self, name: str) -> None:
        del self.tables[name]


def test_a_run_records_and_rolls_back_only_its_own_commits_on_any_table_store() -> None:
    store = MemoryStore()
    typed: TableStore = store  # the Protocol a transaction takes: no Delta here
    theirs, ours = RunTransaction(typed, run_id="theirs"), RunTransaction(typed, run_id="ours")
    theirs.write([1, 2], "features.shared", WriteOptions(), {})  # 0
    theirs.write([9], "features.alone", WriteOptions(), {})  # 0
    assert ours.write([3], "features.shared", WriteOptions(mode="append"), {"note": "ours"}) == 1
    assert ours.merge([7], "features.alone", MergeOptions(keys=["id"]), {}, compared_with=0) == 1
    assert (
        ours.merge([7], "features.alone", MergeOptions(keys=["id"]), {}, compared_with=1) == 1
    )  # nothing differs: no commit
    ours.write([5], "features.created", WriteOptions(), {})  # 0
    theirs.write([4], "features.shared", WriteOptions(mode="append"), {})  # 2, after ours
    ours.used("raw.events", 3)
    assert ours.outputs == [
        TableVersion("features.shared", 1),
        TableVersion("features.alone", 1),
        TableVersion("features.created", 0),
    ]
    metadata = store.commits("features.shared", after=0, upto=1)[0].metadata
    assert (
        metadata["note"] == "ours" and metadata[RUN_ID_KEY] == "ours"
    )  # the caller's metadata, and who committed

    assert ours.rollback() == [
        RollbackOutcome("features.created", "removed", None, own=(0,)),
        RollbackOutcome("features.alone", "restored", 0, own=(1,)),
        RollbackOutcome("features.shared", "left", 2, own=(1,), others=(2,)),
    ]
    assert not store.exists("features.created") and store.read("features.alone", 2) == [9]
    assert store.read("features.shared", 2) == [1, 2, 3, 4]  # the other writer's commit is kept
    assert ours.outputs == [TableVersion("features.shared", 1)]  # still in the table
    assert ours.inputs == [TableVersion("raw.events", 3)]
    with pytest.raises(TableNotFoundError, match=r"raw\.missing"):
        pinned_version(store, "raw.missing")


def test_only_the_delta_log_module_reaches_into_the_jvm() -> None:
    reaching = re.compile(r"\._(jvm|jsc|jsparkSession|jdf)\b")
    found = sorted(
        str(path.relative_to(REPO))
        for path in (REPO / "lib" / "parity").rglob("*.py")
        if reaching.search(path.read_text())
    )
    assert found == ["lib/parity/core/delta_log.py"]


@pytest.mark.parametrize(
    ("declared", "parsed"),
    [
        ("double", T.DoubleType()),
        ("bigint", T.LongType()),
        ("int", T.IntegerType()),
        ("string", T.StringType()),
        ("timestamp", T.TimestampType()),
        ("date", T.DateType()),
        ("boolean", T.BooleanType()),
        ("decimal(10,2)", T.DecimalType(10, 2)),
        ("array<string>", T.ArrayType(T.StringType())),
        ("map<string,double>", T.MapType(T.StringType(), T.DoubleType())),
    ],
)
def test_declared_types_parse_with_the_public_api_as_they_did_with_the_private_one(
    spark: SparkSession, declared: str, parsed: T.DataType
) -> None:
    assert T.DataType.fromDDL(declared) == T._parse_datatype_string(declared) == parsed
    assert struct_of({"x": declared}) == T.StructType([T.StructField("x", parsed, True)])


def test_nothing_in_lib_uses_the_private_type_parser() -> None:
    users = [p for p in (REPO / "lib").rglob("*.py") if "_parse_datatype_string" in p.read_text()]
    assert users == [], users
