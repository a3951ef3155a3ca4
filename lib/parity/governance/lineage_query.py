"""Lineage you can query: the chain of runs behind a table version or a model version, or in
front of one, walked over the rows of `audit.runs`.

Every run's closing row records the Delta versions it read and wrote; a train run also
produced a model version, and a run that used one (score, promote) records it. So the rows
form a graph: table versions and model versions are its nodes, runs its edges.
- `backwards` from a node finds the run that produced it, then the runs that produced that
  run's inputs, down to the raw sources: a prediction slice's scoring run, the model version,
  its sweep run (the train run's MLflow run), the training set and its manifest, the feature
  builds and their code hashes, the raw versions they read.
- `forwards` from a node finds every run that read it, and what those runs wrote, onwards:
  feature builds, training sets, model versions, and prediction slices that depend on it.

A run with a `started` row and no closing row never finished (it was killed, or is still
going); `unfinished` lists them, since their commits, if any, were not rolled back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

Direction = str  # "backwards" or "forwards"


@dataclass(frozen=True, order=True)
class Node:
    """A table version (`kind` table), a registered model version (`kind` model, `name` the
    declared model), or a run a walk starts from (`kind` run, `name` its job, `version` its id)."""

    kind: str
    name: str
    version: str

    def label(self) -> str:
        if self.kind == "run":
            return f"run {self.version[:12]} ({self.name})"
        return f"{self.name}@{self.version}" if self.kind == "table" else f"model {self.name} v{self.version}"


@dataclass
class Run:
    """One run as its audit rows tell it."""

    run_id: str
    job: str
    status: str
    model: str | None
    started_at: Any
    ended_at: Any
    code_hash: str
    git_sha: str
    mlflow_run_id: str | None
    inputs: list[Node] = field(default_factory=list)
    outputs: list[Node] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status != "started"


def runs_from_rows(rows: Iterable[dict[str, Any]]) -> list[Run]:
    """The runs of `audit.runs` rows (as plain dicts): one per run id, its closing row where it
    has one (a run with only its `started` row is unfinished)."""
    by_id: dict[str, Run] = {}
    for row in rows:
        if row["run_id"] in by_id and row["status"] == "started":
            continue  # the closing row is already there
        summary = json.loads(row["summary"]) if row.get("summary") else {}
        inputs = [Node("table", t["table"], str(t["version"])) for t in row.get("inputs") or []]
        outputs = [Node("table", t["table"], str(t["version"])) for t in row.get("outputs") or []]
        model, version = row.get("model"), row.get("model_version")
        if model and version:
            (outputs if row["job"] == "train" else inputs).append(Node("model", model, str(version)))
        by_id[row["run_id"]] = Run(
            row["run_id"],
            row["job"],
            row["status"],
            model,
            row.get("started_at"),
            row.get("ended_at"),
            row.get("code_hash") or "",
            row.get("git_sha") or "",
            row.get("mlflow_run_id"),
            inputs,
            outputs,
            summary,
        )
    return sorted(by_id.values(), key=lambda r: (str(r.started_at), r.run_id))


@dataclass
class Step:
    """One run on the walk, and how far from the start it is."""

    depth: int
    run: Run
    via: Node  # the node that led to it (what it produced, walking backwards; what it read, forwards)

    def as_dict(self) -> dict[str, Any]:
        run = self.run
        details: dict[str, Any] = {
            k: run.summary[k]
            for k in ("manifest", "training_set_digest", "labels_until", "outcome", "checks", "score_ts")
            if k in run.summary
        }
        return {
            "depth": self.depth,
            "via": self.via.label(),
            "job": run.job,
            "run_id": run.run_id,
            "status": run.status if run.finished else "unfinished",
            "model": run.model,
            "mlflow_run_id": run.mlflow_run_id,
            "code_hash": run.code_hash,
            "git_sha": run.git_sha,
            "started_at": str(run.started_at),
            "ended_at": None if run.ended_at is None or str(run.ended_at) == "NaT" else str(run.ended_at),
            "read": [n.label() for n in run.inputs],
            "wrote": [n.label() for n in run.outputs],
            **details,
        }


def walk(runs: list[Run], start: list[Node], direction: Direction) -> list[Step]:
    """The runs reachable from `start`, nearest first: producers of each node walking
    `backwards`, consumers of it walking `forwards`. Only successful runs count: a failed run
    rolled back what it wrote."""
    done = [r for r in runs if r.status == "succeeded"]
    steps: list[Step] = []
    seen_runs: set[str] = set()
    frontier, seen_nodes, depth = list(start), set(start), 0
    while frontier:
        depth += 1
        following: list[Node] = []
        for node in frontier:
            linked = [r for r in done if node in (r.outputs if direction == "backwards" else r.inputs)]
            for run in linked:
                if run.run_id in seen_runs:
                    continue
                seen_runs.add(run.run_id)
                steps.append(Step(depth, run, node))
                for onward in run.inputs if direction == "backwards" else run.outputs:
                    if onward not in seen_nodes:
                        seen_nodes.add(onward)
                        following.append(onward)
        frontier = following
    return steps


def unfinished(runs: list[Run]) -> list[Run]:
    """Runs that started and never wrote their closing row."""
    return [r for r in runs if not r.finished]


def as_table(steps: list[Step], pending: list[Run]) -> str:
    """The walk as a fixed-width text table, then the unfinished runs."""
    header = f"{'depth':<5} {'job':<18} {'run':<12} {'code':<16} {'via':<30} read -> wrote"
    lines = [header, "-" * len(header)]
    for step in steps:
        row = step.as_dict()
        extra = f"  [mlflow run {row['mlflow_run_id'][:12]}]" if row["mlflow_run_id"] else ""
        lines.append(
            f"{row['depth']:<5} {row['job']:<18} {row['run_id'][:12]:<12} {row['code_hash']:<16} {row['via']:<30} "
            f"{', '.join(row['read']) or '-'} -> {', '.join(row['wrote']) or '-'}{extra}"
        )
    if pending:
        lines.append("")
        lines.append(
            "unfinished runs (a started row and no end: killed, or still going; any commits they made were "
            "not rolled back):"
        )
        lines += [f"  {r.job:<18} {r.run_id[:12]}  started {r.started_at}" for r in pending]
    return "\n".join(lines)
