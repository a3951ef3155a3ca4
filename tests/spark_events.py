"""What a Spark application's event log says ran where: its executors, and the tasks of the
jobs that ran a given plan (a SQL execution's physical plan) or belonged to a job group.

The cluster test reads these to show that each engine path ran as tasks on the cluster's
executors, not in a driver. Event logs are JSON lines (`spark.eventLog.enabled`, uncompressed).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

_SQL = "org.apache.spark.sql.execution.ui."


@dataclass(frozen=True)
class Task:
    stage: int
    executor: str
    host: str
    failed: bool
    records_written: int


@dataclass
class AppEvents:
    """One application's event log, reduced to what the cluster test asks."""

    app_id: str
    app_name: str
    executors: dict[str, str] = field(default_factory=dict)  # executor id -> host
    plans: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))  # SQL execution -> plans
    job_execution: dict[int, int] = field(default_factory=dict)
    job_group: dict[int, str] = field(default_factory=dict)
    stage_job: dict[int, int] = field(default_factory=dict)
    tasks: list[Task] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> AppEvents:
        events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        start = next(e for e in events if e["Event"] == "SparkListenerApplicationStart")
        app = cls(start["App ID"], start["App Name"])
        for e in events:
            kind = e["Event"]
            if kind == "SparkListenerExecutorAdded":
                app.executors[e["Executor ID"]] = e["Executor Info"]["Host"]
            elif kind in (
                _SQL + "SparkListenerSQLExecutionStart",
                _SQL + "SparkListenerSQLAdaptiveExecutionUpdate",
            ):
                app.plans[int(e["executionId"])].append(e["physicalPlanDescription"])
            elif kind == "SparkListenerJobStart":
                props = e.get("Properties") or {}
                if "spark.sql.execution.id" in props:
                    app.job_execution[e["Job ID"]] = int(props["spark.sql.execution.id"])
                if props.get("spark.jobGroup.id"):
                    app.job_group[e["Job ID"]] = props["spark.jobGroup.id"]
                app.stage_job.update({stage: e["Job ID"] for stage in e["Stage IDs"]})
            elif kind == "SparkListenerTaskEnd":
                info, metrics = e["Task Info"], e.get("Task Metrics") or {}
                written = (metrics.get("Output Metrics") or {}).get("Records Written", 0)
                app.tasks.append(
                    Task(e["Stage ID"], info["Executor ID"], info["Host"], info["Failed"], written)
                )
        return app

    def jobs_mapping_in_arrow(self, function: str) -> set[int]:
        """Jobs of the SQL executions whose physical plan maps Arrow batches with a Python
        function of this name (`DataFrame.mapInArrow`; the plan's node details name it)."""
        pattern = re.compile(
            rf"^\(\d+\) MapInArrow\n[^\n]*\nArguments: {re.escape(function)}\(", re.MULTILINE
        )
        executions = {ex for ex, plans in self.plans.items() if any(pattern.search(p) for p in plans)}
        return {job for job, ex in self.job_execution.items() if ex in executions}

    def jobs_in_group(self, prefix: str) -> set[int]:
        return {job for job, group in self.job_group.items() if group.startswith(prefix)}

    def tasks_of(self, jobs: set[int]) -> list[Task]:
        """The finished tasks of these jobs' stages."""
        return [t for t in self.tasks if self.stage_job.get(t.stage) in jobs and not t.failed]


def read_apps(folder: Path) -> dict[str, AppEvents]:
    """Every finished application's event log in `folder`, by application id."""
    apps = [AppEvents.read(p) for p in sorted(folder.iterdir()) if not p.name.endswith(".inprogress")]
    return {app.app_id: app for app in apps}
