"""Where things came from: `parity lineage` walks audit.runs (read with delta-rs, no Spark) from a
table version, a model version or a run, backwards or forwards; `parity reproduce` rebuilds a
model version's training set with the code the model carries (parity.app.reproduce)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from parity.app.cli.conf_args import settings_of
from parity.core.catalog import table_path
from parity.core.conf import ConfError


def lineage(args: argparse.Namespace) -> int:
    """Print the chain of runs behind (or, with --forward, in front of) a table version, a
    model version or a run, read from audit.runs with delta-rs."""

    from parity.governance import lineage_query as q

    settings = settings_of(args)
    runs = q.runs_from_rows(_append_only_rows(table_path(settings, settings.tables.audit_runs)))
    direction = "forwards" if args.forward else "backwards"
    first: list[q.Step] = []
    if args.run:
        found = [r for r in runs if r.run_id.startswith(args.run)]
        if len(found) != 1:
            problem = "no run" if not found else "several runs"
            raise ConfError(f"{problem} in {settings.tables.audit_runs} with id {args.run}")
        start_node = q.Node("run", found[0].job, found[0].run_id)
        first = [q.Step(0, found[0], start_node)]
        start = found[0].inputs if direction == "backwards" else found[0].outputs
    elif args.model:
        try:
            settings.model(args.model)
        except ValueError as exc:
            raise ConfError(str(exc)) from None
        start_node = q.Node("model", args.model, args.version)
        start = [start_node]
    else:
        start_node = q.Node("table", args.table, args.version)
        start = [start_node]
    steps = first + q.walk(runs, start, direction)
    pending = q.unfinished(runs)
    named = start_node.label() if start_node.kind != "run" else f"run {args.run}"
    if args.format == "json":
        found_steps = {
            "start": named,
            "direction": direction,
            "steps": [s.as_dict() for s in steps],
            "unfinished": [q.Step(0, r, start_node).as_dict() for r in pending],
        }
        print(json.dumps(found_steps, indent=2, default=str))
    else:
        print(f"lineage {direction} from {named} ({len(steps)} runs)")
        print(q.as_table(steps, pending))
    return 0


def _append_only_rows(path: str) -> list[dict[str, Any]]:
    """The rows of an append-only Delta table (no deletes, so no deletion vectors), as dicts:
    delta-rs lists the files, pyarrow reads them. (Reading the rows through delta-rs itself
    makes the process abort now and then as it exits: delta-rs issue #2184.)"""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    files = DeltaTable(path).file_uris()
    if not files:
        return []
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default").to_pylist()


def reproduce(args: argparse.Namespace) -> int:
    """`parity reproduce`: one JSON line, and exit 1 with the problem when it did not reproduce."""
    from parity.app.reproduce import ReproduceError
    from parity.app.reproduce import reproduce as rebuild

    try:
        result = rebuild(args)
    except ReproduceError as exc:
        print(f"error: reproduce: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, sort_keys=True, default=str))
    if not result.get("reproduced"):
        print(f"error: reproduce: {result.get('problem')}", file=sys.stderr)
        return 1
    return 0


def reproduce_worker(args: argparse.Namespace) -> int:
    """The step `parity reproduce` runs in the environment it made: one JSON line."""
    from parity.app.reproduce import worker

    try:
        result = worker(args)
    except ValueError as exc:
        raise ConfError(str(exc)) from None
    print(json.dumps(result, sort_keys=True, default=str))
    return 0 if result.get("reproduced") else 1
