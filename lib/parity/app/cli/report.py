"""`parity report`: what the pipeline produced, read back with an independent Delta reader.

It takes the newest successful run of each pipeline job (per declared model for the model jobs)
from audit.runs, reads its summary into the job's typed summary (parity.app.summaries), counts
the rows that summary asks for with delta-rs, prints them, and reconciles: exit 1 with one
`error:` line per problem when a job's counts do not add up or a table does not hold what the
summary says the run wrote.
"""

from __future__ import annotations

import argparse
import json
import sys

from parity.app.cli.conf_args import settings_of
from parity.app.summaries import RowCount, summary_of
from parity.core.catalog import table_path
from parity.core.conf import Settings

PIPELINE = ("generate_data", "build_features", "build_training_set", "train", "promote", "score")
MODEL_JOBS = ("build_training_set", "train", "promote", "score")  # run once per declared model (--model NAME)


def report(args: argparse.Namespace) -> int:
    """Print what the pipeline produced, re-counting every table with delta-rs."""
    from deltalake import DeltaTable

    settings = settings_of(args)
    runs = DeltaTable(table_path(settings, settings.tables.audit_runs)).to_pandas()
    runs = runs[runs["status"] == "succeeded"].sort_values("ended_at")
    problems = []
    print(f"parity demo report (env {settings.env}, storage {settings.storage.root})")
    models = sorted(settings.models)
    steps = [(job, model) for job in PIPELINE for model in (models if job in MODEL_JOBS else [None])]
    streamed = sorted(
        name for name, declared in settings.models.items() if declared.scoring.stream is not None
    )
    steps += [("score_stream", model) for model in streamed if (runs["job"] == "score_stream").any()]
    for job, model in steps:
        job_runs = runs[runs["job"] == job]
        if model and "model" in runs:
            job_runs = job_runs[job_runs["model"] == model]
        named = f"{job} --model {model}" if model else job
        if job_runs.empty:
            problems.append(f"no successful run of {named} in {settings.tables.audit_runs}")
            continue
        summary = summary_of(job, json.loads(job_runs.iloc[-1]["summary"]), settings)
        rows = read_row_counts(settings, summary.row_counts())
        print(f"\n{named}  run {summary.run_id[:12]}")
        for table, version in summary.outputs:
            print(f"  wrote {table:<32} version {version:<4} rows {rows[RowCount(table, version)]}")
        for key, value in sorted(summary.counts.items()):
            print(f"  {key:<38} {value}")
        for line in summary.details():
            print(f"  {line}")
        problems += summary.reconcile(rows)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    print("\nevery reported table opened with delta-rs and its row count matches the job summary")
    return 0


def read_row_counts(settings: Settings, wanted: list[RowCount]) -> dict[RowCount, int]:
    """Count each table's rows at its version with delta-rs; a prediction slice's rows by its
    score time (to the second) and model version."""
    from deltalake import DeltaTable

    rows: dict[RowCount, int] = {}
    for count in wanted:
        table = DeltaTable(table_path(settings, count.table), version=count.version)
        if count.score_ts is None:
            rows[count] = table.to_pyarrow_dataset().count_rows()
            continue
        at = table.to_pandas(columns=["score_ts", "model_version"])
        same_time = at["score_ts"].astype(str).str.slice(0, 19) == count.score_ts
        rows[count] = int((same_time & (at["model_version"] == count.model_version)).sum())
    return rows
