"""Two writers on one table, in two processes: neither discards a commit of the other.

Two Spark drivers, A and B, each a process of its own (`python -m tests.test_concurrent_writers
a|b ROOT`), run three scenarios as parity jobs (`run_job`) on tables under one folder. They hand
over through empty files in ROOT/signals, so the interleaving is fixed rather than left to timing:

1. alone: A's job overwrites and appends to a table, creates another, then fails; both are put back.
2. interleaved: A's job appends to a table, B's job appends after it, then A's job fails. A leaves
   the table at B's version, and its error line and audit row say so.
3. conflict: A's job and B's job overwrite one table at once. B commits while A's write is under way
   (A's transaction has read the table and waits inside a UDF), so A's commit conflicts and A fails.
   A's rollback removes the table A created before, and does not RESTORE over B's version.

The test process starts no Spark: it reads what the workers report and the tables' Delta logs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_SPARK
from tests.support import CONF_DIR, REPO, set_args, storage_overrides

pytestmark = pytest.mark.integration  # two Spark processes of their own (not in make test-fast)

WAIT_SECONDS = 300  # for one hand-over; the two workers take one to three minutes in all
SETUP_RUN = "setup"
OLD_AUDIT_RUN = "old-audit-row"


class Handover:
    """Named signals between the two processes: empty files in one folder."""

    def __init__(self, root: Path) -> None:
        self.folder = root / "signals"
        self.folder.mkdir(exist_ok=True)

    def signal(self, name: str) -> None:
        (self.folder / name).touch()

    def wait(self, name: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not (self.folder / name).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no signal {name} after {WAIT_SECONDS}s")
            time.sleep(0.1)


# ---------------------------------------------------------------- the workers (one per process)


def _run(job: str, argv: list[str], body: Any) -> dict[str, Any]:
    """Run one job as `main` would, capturing its exit code and what it printed."""
    from parity.app.jobkit import run_job

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_job(job, argv, body, conf_dir=CONF_DIR)
    return {
        "code": code,
        "stdout": out.getvalue(),
        "error_lines": [line for line in err.getvalue().splitlines() if line.startswith("error:")],
    }


def _rows_that_wait(
    spark: Any, handover: Handover, *, start: int, stop: int, signal: str, wait_for: str
) -> Any:
    """Rows `id` in [start, stop) whose computation signals `signal`, then waits for `wait_for`:
    a write of them has started its Delta transaction (read the table) and not committed yet."""
    from pyspark.sql import functions as F

    folder, seconds = str(handover.folder), WAIT_SECONDS

    def hand_over(value: int) -> int:
        import pathlib
        import time

        pathlib.Path(folder, signal).touch()
        deadline = time.monotonic() + seconds
        while not pathlib.Path(folder, wait_for).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no signal {wait_for}")
            time.sleep(0.1)
        return value

    return spark.range(start, stop, numPartitions=1).select(F.udf(hand_over, "long")("id").alias("id"))


def worker_a(root: Path) -> dict[str, Any]:
    """A: sets the tables up, then runs the failing job of each scenario."""
    from delta.tables import DeltaTable
    from pyspark.sql import types as T

    from parity.core.catalog import Catalog
    from parity.core.conf import load_settings
    from parity.core.session import get_spark
    from parity.governance.lineage import RunRecord

    overrides = storage_overrides(root) + TEST_SPARK
    settings, argv, handover = (
        load_settings(CONF_DIR, overrides=overrides),
        set_args(overrides),
        Handover(root),
    )
    spark = get_spark(settings)
    setup = Catalog(spark, settings, run_id=SETUP_RUN)
    for name in ("features.alone", "features.interleaved", "features.conflict"):
        setup.write(spark.range(3), name)
    # An audit table as jobs wrote it before AUDIT_RUNS had its `rollback` column.
    old = RunRecord(
        OLD_AUDIT_RUN, "older_job", settings.env, "c", "g", "h", dt.datetime.now(dt.UTC), status="succeeded"
    )
    older = old.to_frame(spark).drop("rollback", "model")
    ended_required = T.StructType(
        [T.StructField(f.name, f.dataType, f.name != "ended_at") for f in older.schema]
    )  # as it was then
    setup.write(spark.createDataFrame(older.rdd, ended_required), settings.tables.audit_runs, mode="append")
    runs: dict[str, dict[str, Any]] = {}

    def alone(ctx: Any) -> None:
        ctx.catalog.write(spark.range(100, 105), "features.alone")
        ctx.catalog.write(spark.range(105, 107), "features.alone", mode="append")
        ctx.catalog.write(spark.range(100, 102), "features.created_by_a")
        raise RuntimeError("A fails after its own writes")

    runs["a_alone"] = _run("a_alone", argv, alone)

    def interleaved(ctx: Any) -> None:
        ctx.catalog.write(spark.range(100, 102), "features.interleaved", mode="append")
        handover.signal("a_appended")
        handover.wait("b_appended")
        raise RuntimeError("A fails after B committed")

    runs["a_interleaved"] = _run("a_interleaved", argv, interleaved)

    def conflict(ctx: Any) -> None:
        ctx.catalog.write(spark.range(100, 102), "features.a_side")
        rows = _rows_that_wait(
            spark, handover, start=100, stop=103, signal="a_overwriting", wait_for="b_overwrote"
        )
        ctx.catalog.write(rows, "features.conflict")

    runs["a_conflict"] = _run("a_conflict", argv, conflict)

    catalog = Catalog(spark, settings)
    audit = [row.asDict(recursive=True) for row in catalog.read(settings.tables.audit_runs).collect()]
    return {
        "runs": runs,
        "audit": {
            row["job"]: row
            for row in audit
            if row["job"] not in ("b_interleaved", "b_conflict") and row["status"] != "started"
        },
        "started": sorted(
            row["job"] for row in audit if row["status"] == "started" and row["ended_at"] is None
        ),
        "audit_properties": DeltaTable.forPath(spark, catalog.path(settings.tables.audit_runs))
        .detail()
        .first()["properties"],
        "rows": {
            name: sorted(r.id for r in catalog.read(name).collect())
            for name in ("features.alone", "features.interleaved", "features.conflict")
        },
        "exists": {name: catalog.exists(name) for name in ("features.created_by_a", "features.a_side")},
    }


def worker_b(root: Path) -> dict[str, Any]:
    """B: the other writer, committing at the points A hands over."""
    from parity.core.conf import load_settings
    from parity.core.session import get_spark

    overrides = storage_overrides(root) + TEST_SPARK
    settings, argv, handover = (
        load_settings(CONF_DIR, overrides=overrides),
        set_args(overrides),
        Handover(root),
    )
    spark = get_spark(settings)  # started while A sets up
    runs: dict[str, dict[str, Any]] = {}

    handover.wait("a_appended")
    runs["b_interleaved"] = _run(
        "b_interleaved",
        argv,
        lambda ctx: ctx.catalog.write(spark.range(200, 202), "features.interleaved", mode="append"),
    )
    handover.signal("b_appended")

    handover.wait("a_overwriting")
    runs["b_conflict"] = _run(
        "b_conflict", argv, lambda ctx: ctx.catalog.write(spark.range(200, 203), "features.conflict")
    )
    handover.signal("b_overwrote")
    return {"runs": runs}


# ---------------------------------------------------------------- the test process


@dataclass
class Race:
    """What the two workers reported, and where their tables are."""

    root: Path
    a: dict[str, Any]
    b: dict[str, Any]

    def run_id(self, job: str) -> str:
        if job in self.a["audit"]:
            return str(self.a["audit"][job]["run_id"])
        return str(json.loads(self.b["runs"][job]["stdout"].splitlines()[-1])["run_id"])

    def commits(self, name: str) -> list[tuple[int, str, str | None]]:
        """(version, operation, run id) of each commit of a table, oldest first, read from its Delta log."""
        zone, _, table = name.partition(".")
        found = []
        for log in sorted((self.root / "data" / zone / table / "_delta_log").glob("*.json")):
            for line in log.read_text().splitlines():
                info = json.loads(line).get("commitInfo")
                if info is not None:
                    metadata = json.loads(info.get("userMetadata") or "{}")
                    found.append((int(log.stem), info["operation"], metadata.get("parity.run_id")))
                    break
        return found


@pytest.fixture(scope="module")
def race(tmp_path_factory: pytest.TempPathFactory) -> Race:
    root = tmp_path_factory.mktemp("race")
    Handover(root)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    procs, logs = {}, {}
    for role in ("a", "b"):
        logs[role] = root / f"{role}.log"
        with logs[role].open("w") as log:  # a file, not a pipe: a full pipe would stall a worker
            procs[role] = subprocess.Popen(
                [sys.executable, "-m", "tests.test_concurrent_writers", role, str(root)],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=log,
            )
    deadline = time.monotonic() + 2 * WAIT_SECONDS
    while any(p.poll() is None for p in procs.values()):
        if any(p.returncode not in (None, 0) for p in procs.values()) or time.monotonic() > deadline:
            for p in procs.values():  # one failed or both hang: the other would only wait
                if p.poll() is None:
                    p.kill()
                    p.wait()
            break
        time.sleep(0.5)
    failed = {role: p.returncode for role, p in procs.items() if p.returncode != 0}
    if failed:
        tails = "\n".join(
            f"--- {role} ({code}):\n{logs[role].read_text()[-3000:]}" for role, code in failed.items()
        )
        raise AssertionError(f"a worker failed: {failed}\n{tails}")
    return Race(root, *(json.loads((root / f"{role}.json").read_text()) for role in ("a", "b")))


def test_a_failed_job_alone_puts_back_every_table_it_wrote(race: Race) -> None:
    run, audit, a = race.a["runs"]["a_alone"], race.a["audit"]["a_alone"], race.run_id("a_alone")
    assert run["code"] == 1
    assert run["error_lines"] == [
        "error: a_alone: RuntimeError: A fails after its own writes (rolled back features.created_by_a, features.alone)"
    ]
    assert race.commits("features.alone") == [
        (0, "WRITE", SETUP_RUN),
        (1, "WRITE", a),
        (2, "WRITE", a),
        (3, "RESTORE", a),
    ]
    assert race.a["rows"]["features.alone"] == [0, 1, 2]
    assert not race.a["exists"]["features.created_by_a"]
    assert [(r["table"], r["action"], r["version"]) for r in audit["rollback"]] == [
        ("features.created_by_a", "removed", None),
        ("features.alone", "restored", 0),
    ]
    assert audit["outputs"] == []


def test_a_failed_job_leaves_a_table_another_writer_committed_to_after_it(race: Race) -> None:
    run, audit = race.a["runs"]["a_interleaved"], race.a["audit"]["a_interleaved"]
    a, b = race.run_id("a_interleaved"), race.run_id("b_interleaved")
    assert race.b["runs"]["b_interleaved"]["code"] == 0
    assert run["code"] == 1
    assert run["error_lines"] == [
        "error: a_interleaved: RuntimeError: A fails after B committed "
        "(left features.interleaved at version 2: another writer committed version 2 after this run's version 1)"
    ]
    # No RESTORE: B's commit is the newest, and both writers' rows are in the table.
    assert race.commits("features.interleaved") == [(0, "WRITE", SETUP_RUN), (1, "WRITE", a), (2, "WRITE", b)]
    assert race.a["rows"]["features.interleaved"] == [0, 1, 2, 100, 101, 200, 201]
    assert audit["rollback"] == [
        {"table": "features.interleaved", "action": "left", "version": 2, "own": [1], "others": [2]}
    ]
    assert audit["outputs"] == [
        {"table": "features.interleaved", "version": 1}
    ]  # A's commit, still in the table


def test_the_loser_of_two_overwrites_does_not_restore_over_the_winner(race: Race) -> None:
    run, audit = race.a["runs"]["a_conflict"], race.a["audit"]["a_conflict"]
    assert race.b["runs"]["b_conflict"]["code"] == 0
    assert run["code"] == 1
    (line,) = run["error_lines"]
    assert re.match(r"error: a_conflict: Concurrent\w+Exception: ", line) and line.endswith(
        "(rolled back features.a_side)"
    )
    assert race.commits("features.conflict") == [
        (0, "WRITE", SETUP_RUN),
        (1, "WRITE", race.run_id("b_conflict")),
    ]
    assert race.a["rows"]["features.conflict"] == [200, 201, 202]
    assert not race.a["exists"]["features.a_side"]
    assert [(r["table"], r["action"]) for r in audit["rollback"]] == [("features.a_side", "removed")]


def test_an_audit_table_from_before_the_rollback_column_takes_the_new_rows(race: Race) -> None:
    assert race.a["audit"]["older_job"]["rollback"] is None
    assert {job for job in race.a["audit"]} == {"older_job", "a_alone", "a_interleaved", "a_conflict"}
    # It holds every run's started row too, both workers' (with no end: the older table's ended_at
    # was required), and is append-only now.
    assert race.a["started"] == ["a_alone", "a_conflict", "a_interleaved", "b_conflict", "b_interleaved"]
    assert race.a["audit_properties"].get("delta.appendOnly") == "true"


if __name__ == "__main__":  # a worker: python -m tests.test_concurrent_writers a|b ROOT
    role, folder = sys.argv[1], Path(sys.argv[2])
    report = worker_a(folder) if role == "a" else worker_b(folder)
    (folder / f"{role}.json").write_text(json.dumps(report, default=str))
