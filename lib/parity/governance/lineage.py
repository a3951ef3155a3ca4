"""Lineage: the `audit.runs` rows every job appends, and the facts they record.

A job appends a `started` row before its first write and a second row when it ends, so a run
that was killed shows as started and never finished. The second row says which job ran, with
which conf (hash), code (git sha, transform code hash), which Delta versions it read and
wrote, its row counts, its MLflow run and model version, whether it succeeded, and when; for a
failed run, what its rollback did to each table it wrote. The run id is also in the metadata
of every Delta commit the run made. Audit tables are append-only (`append_audit`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from parity.core.catalog import Catalog, TableVersion
from parity.core.commits import RollbackOutcome, ensure_table_properties, table_properties

STARTED = "started"  # the status of the row a job appends before its first write
APPEND_ONLY = {"delta.appendOnly": "true"}  # audit tables: Delta refuses DELETE, UPDATE and overwrite

_TABLE_VERSION = T.StructType(
    [T.StructField("table", T.StringType()), T.StructField("version", T.LongType())]
)
# What a failed run's rollback did to each table it wrote: restored (to `version`), removed, or
# left at `version` because another writer committed after it (those commits are `others`).
_ROLLBACK_OUTCOME = T.StructType(
    [
        T.StructField("table", T.StringType()),
        T.StructField("action", T.StringType()),
        T.StructField("version", T.LongType()),
        T.StructField("own", T.ArrayType(T.LongType())),
        T.StructField("others", T.ArrayType(T.LongType())),
    ]
)
AUDIT_RUNS = T.StructType(
    [
        T.StructField("run_id", T.StringType(), False),
        T.StructField("job", T.StringType(), False),
        T.StructField("env", T.StringType(), False),
        T.StructField("status", T.StringType(), False),
        T.StructField("error", T.StringType(), True),
        T.StructField("conf_hash", T.StringType(), False),
        T.StructField("git_sha", T.StringType(), False),
        T.StructField("code_hash", T.StringType(), False),
        T.StructField("inputs", T.ArrayType(_TABLE_VERSION), False),
        T.StructField("outputs", T.ArrayType(_TABLE_VERSION), False),
        T.StructField("counts", T.MapType(T.StringType(), T.LongType()), False),
        T.StructField("mlflow_run_id", T.StringType(), True),
        T.StructField("model_version", T.StringType(), True),
        T.StructField("started_at", T.TimestampType(), False),
        T.StructField("ended_at", T.TimestampType(), True),  # null in a run's `started` row
        T.StructField("summary", T.StringType(), False),
        T.StructField("rollback", T.ArrayType(_ROLLBACK_OUTCOME), True),  # added later: null in older rows
        T.StructField("model", T.StringType(), True),  # the declared model a job ran for (added later)
    ]
)


def git_sha(project_root: str) -> str:
    """The checkout's commit (with `+dirty` when it has local changes), or `unknown`."""
    if os.environ.get("PARITY_GIT_SHA"):
        return os.environ["PARITY_GIT_SHA"]
    if not (Path(project_root) / ".git").exists():
        return "unknown"
    try:
        sha = subprocess.run(
            ["git", "-C", project_root, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", project_root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


@dataclass
class RunRecord:
    run_id: str
    job: str
    env: str
    conf_hash: str
    git_sha: str
    code_hash: str
    started_at: dt.datetime
    status: str = "running"
    error: str | None = None
    inputs: list[TableVersion] = field(default_factory=list)
    outputs: list[TableVersion] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    model_version: str | None = None
    ended_at: dt.datetime | None = None
    extra: dict[str, object] = field(default_factory=dict)
    rollback: list[RollbackOutcome] = field(default_factory=list)
    model: str | None = None  # the declared model, for the jobs that run one

    def summary(self) -> dict[str, object]:
        """The job's JSON summary (the last line a job prints)."""
        return {
            "job": self.job,
            "run_id": self.run_id,
            "status": self.status,
            "env": self.env,
            "inputs": [t.as_dict() for t in self.inputs],
            "outputs": [t.as_dict() for t in self.outputs],
            "counts": self.counts,
            "mlflow_run_id": self.mlflow_run_id,
            "model_version": self.model_version,
            **({"model": self.model} if self.model else {}),
            "conf_hash": self.conf_hash,
            "git_sha": self.git_sha,
            "code_hash": self.code_hash,
            **self.extra,
            **({"error": self.error} if self.error else {}),
            **({"rollback": [o.as_dict() for o in self.rollback]} if self.rollback else {}),
        }

    def to_frame(self, spark: SparkSession, *, started: bool = False) -> DataFrame:
        """The run's row: as it ended, or (`started`) as it began, with no end, outputs or counts."""
        ended = None if started else self.ended_at or dt.datetime.now(dt.UTC)
        row = (
            self.run_id,
            self.job,
            self.env,
            STARTED if started else self.status,
            self.error,
            self.conf_hash,
            self.git_sha,
            self.code_hash,
            [] if started else [(t.table, t.version) for t in self.inputs],
            [] if started else [(t.table, t.version) for t in self.outputs],
            {} if started else {k: int(v) for k, v in self.counts.items()},
            self.mlflow_run_id,
            self.model_version,
            self.started_at,
            ended,
            json.dumps(self.summary(), default=str, sort_keys=True),
            [(o.table, o.action, o.version, list(o.own), list(o.others)) for o in self.rollback],
            self.model,
        )
        return spark.createDataFrame([row], AUDIT_RUNS)


class AuditTableError(RuntimeError):
    """An audit table's append-only protection was turned off."""


def append_audit(catalog: Catalog, rows: DataFrame, table: str, *, nullable: tuple[str, ...] = ()) -> int:
    """Append rows to an audit table, created append-only (`APPEND_ONLY`).

    An audit table written before audit tables were append-only (it has no such property) is
    made so first, and its `nullable` columns may hold nulls; one written before a column was
    added gains it (its older rows hold null).

    Raises:
        AuditTableError: the table's append-only property was set to false: someone turned
            the protection off, and its rows may have been changed since. Nothing is appended.
    """
    if catalog.exists(table):
        protected = table_properties(catalog.spark, catalog.path(table)).get("delta.appendOnly")
        if protected not in (None, "true"):
            raise AuditTableError(
                f"{table} has delta.appendOnly={protected}: its protection was turned off, and its rows "
                "may have been changed since (see its Delta history); set it back only after reviewing "
                "that history"
            )
        ensure_table_properties(
            catalog.spark, catalog.path(table), {} if protected else APPEND_ONLY, nullable=nullable
        )
        return catalog.write(rows, table, mode="append", merge_schema=True)
    return catalog.write(rows, table, mode="append", merge_schema=True, properties=APPEND_ONLY)
