"""What every job shares: argument parsing, conf, session, lineage, the summary, exit codes.

A job module defines its work as `body(ctx) -> None` and calls
`run_job(name, argv, body, conf_dir=...)` from `main(argv)`; a `parity` command that writes
calls `run_parsed(name, args, settings, body)` with what it parsed. Contract (DESIGN.md):
- success: exit 0, and the last line of stdout is one JSON summary;
- bad arguments or conf: exit 2 with one `error: ...` line on stderr, before any write;
- failure: exit 1 with one `error: ...` line on stderr; every table is left as it was,
  except one another writer committed to after the job: that one keeps both writers' commits,
  and the error line (and the audit row) names it and the version it was left at.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NoReturn

from pyspark.sql import SparkSession

from parity.app.wording import cli_wording
from parity.core.catalog import Catalog
from parity.core.conf import ConfError, ModelDecl, Settings, load_settings
from parity.core.session import MissingJarsError, get_spark
from parity.features.build import transform_code_hash
from parity.governance.lineage import RunRecord, append_audit, git_sha

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
CONF_DIR_ENV = "PARITY_CONF_DIR"  # the conf folder of a project of its own, instead of the jobs' conf/


class UsageError(ValueError):
    """Bad command-line arguments."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one UsageError line, with no abbreviated options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def job_parser(job: str) -> argparse.ArgumentParser:
    """The shared arguments: `--env NAME` and repeated `--set dotted.key=value`."""
    parser = OneLineParser(prog=job, description=f"parity job {job}")
    parser.add_argument("--env", default=None, help="conf overlay to apply (conf/<env>.yaml); default dev")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    return parser


def iso_day(text: str) -> dt.date:
    """An argparse type: a day as YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a day (YYYY-MM-DD)") from None


@dataclass
class JobContext:
    """What a job body works with: conf, session, catalog, parsed args and its run record."""

    settings: Settings
    spark: SparkSession
    catalog: Catalog
    args: argparse.Namespace
    record: RunRecord
    counts: dict[str, int] = field(default_factory=dict)

    def summary_extra(self, **items: object) -> None:
        self.record.extra.update(items)


def _one_line(exc: BaseException) -> str:
    """The first line of what went wrong; for an untranslated JVM error, its root cause."""
    if isinstance(exc, (ConfError, UsageError)):
        return str(exc).strip().splitlines()[0]
    worded = cli_wording(exc)  # a library error's data, in the command line's words
    if worded is not None:
        return f"{type(exc).__name__}: {worded}"
    java = getattr(exc, "java_exception", None)
    if java is not None:
        cause = java
        while cause.getCause() is not None:
            cause = cause.getCause()
        lines = str(cause.toString()).strip().splitlines()
        return lines[0] if lines else type(exc).__name__
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


@dataclass(frozen=True)
class JobOptions:
    """What a job adds to the shared contract (see `run_job`): its `parser` (`job_parser(job)`
    with the job's own arguments added; default: the shared ones only), `check_args`, which
    validates the parsed arguments against the conf before Spark starts and raises UsageError
    for a bad combination, and `keep_writes_on_failure`: a job that keeps them (a stream, whose
    checkpoint counts its committed batches as done) is not rolled back."""

    parser: argparse.ArgumentParser | None = None
    check_args: Callable[[argparse.Namespace, Settings], None] | None = None
    keep_writes_on_failure: bool = False


def run_job(
    job: str,
    argv: list[str] | None,
    body: Callable[[JobContext], None],
    *,
    conf_dir: str | Path,
    options: JobOptions = JobOptions(),
    model_of: Callable[[argparse.Namespace, Settings], str] | None = None,
) -> int:
    """Run one job body under the shared contract and return its exit code.

    The conf folder is `conf_dir`, unless the environment names another in `PARITY_CONF_DIR`;
    `options` hold the job's own arguments, their check, and whether it keeps its writes when
    it fails. `model_of` names the model the run is for, from the parsed arguments and conf.
    """
    parser = options.parser or job_parser(job)
    conf_dir = os.environ.get(CONF_DIR_ENV) or conf_dir  # a project of its own (spark-submit.sh sets it)
    try:
        args = parser.parse_args(argv if argv is not None else sys.argv[1:])
        settings = load_settings(conf_dir, env=args.env, overrides=args.overrides)
        if options.check_args is not None:
            options.check_args(args, settings)
    except (UsageError, ConfError) as exc:
        print(f"error: {job}: {_one_line(exc).removeprefix(f'{parser.prog}: ')}", file=sys.stderr)
        return EXIT_USAGE
    model = model_of(args, settings) if model_of is not None else None
    return run_parsed(
        job, args, settings, body, keep_writes_on_failure=options.keep_writes_on_failure, model=model
    )


def run_parsed(
    job: str,
    args: argparse.Namespace,
    settings: Settings,
    body: Callable[[JobContext], None],
    *,
    keep_writes_on_failure: bool = False,
    model: str | None = None,
) -> int:
    """Run one job body under the shared contract, with arguments already parsed and the conf
    already loaded and checked (as `run_job` does them, or a `parity` command), and return its
    exit code: start Spark, append the run's started row, run the body, roll back its own
    writes if it fails, append the closing row, print the summary or one error line."""
    try:
        spark = get_spark(settings)
    except MissingJarsError as exc:
        print(f"error: {job}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a session that cannot start is a failed run with nothing written
        print(f"error: {job}: cannot start Spark: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    record = RunRecord(
        run_id=uuid.uuid4().hex,
        job=job,
        env=settings.env,
        conf_hash=settings.conf_hash(),
        git_sha=git_sha(settings.project_root),
        code_hash=transform_code_hash(),
        started_at=dt.datetime.now(dt.UTC),
        model=model,
    )
    catalog = Catalog(spark, settings, run_id=record.run_id)  # every commit of the run carries its id
    ctx = JobContext(settings=settings, spark=spark, catalog=catalog, args=args, record=record)
    try:  # before the first write: a run killed from here on shows as started and never finished
        append_audit(
            Catalog(spark, settings, run_id=record.run_id),
            record.to_frame(spark, started=True),
            settings.tables.audit_runs,
            nullable=("ended_at",),
        )
    except Exception as exc:
        print(
            f"error: {job}: cannot append to {settings.tables.audit_runs}: {_one_line(exc)}", file=sys.stderr
        )
        return EXIT_FAILED
    try:
        body(ctx)
        record.status = "succeeded"
    except Exception as exc:  # every failure becomes one line, a rollback and a failed audit row
        record.status, record.error = "failed", _one_line(exc)
        if os.environ.get("PARITY_DEBUG"):
            traceback.print_exc()
        record.error += "" if keep_writes_on_failure else _rollback_note(catalog, record)
    record.inputs, record.outputs, record.counts = catalog.inputs, catalog.outputs, ctx.counts
    record.ended_at = dt.datetime.now(dt.UTC)
    try:
        _append_audit(ctx)
    except Exception as exc:  # a run without its lineage row is a failed run: undo its writes too
        note = (
            _rollback_note(catalog, record)
            if record.status == "succeeded" and not keep_writes_on_failure
            else ""
        )
        print(
            f"error: {job}: cannot append to {settings.tables.audit_runs}: {_one_line(exc)}{note}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if record.status != "succeeded":
        log = os.environ.get("PARITY_SPARK_LOG")
        print(f"error: {job}: {record.error}" + (f" (Spark log: {log})" if log else ""), file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(record.summary(), default=str, sort_keys=True))
    return EXIT_OK


def _rollback_note(catalog: Catalog, record: RunRecord) -> str:
    """Roll back the job's own writes, keep what was done in the record, and say so: which
    tables were put back, and which were left at which version because another writer
    committed after the job (or that the rollback itself failed)."""
    try:
        outcomes = catalog.rollback()
    except Exception as exc:
        return f" (rollback failed: {_one_line(exc)})"
    record.rollback = outcomes
    undone = [o.table for o in outcomes if o.action != "left"]
    left = [o.describe() for o in outcomes if o.action == "left"]
    parts = ([f"rolled back {', '.join(undone)}"] if undone else []) + left
    return f" ({'; '.join(parts)})" if parts else ""


def _append_audit(ctx: JobContext) -> None:
    """Append the run's closing row to audit.runs; the audit write is not itself recorded as an
    output. (The run's `started` row made the table append-only and fit for it.)"""
    audit = Catalog(ctx.spark, ctx.settings, run_id=ctx.record.run_id)
    audit.write(
        ctx.record.to_frame(ctx.spark), ctx.settings.tables.audit_runs, mode="append", merge_schema=True
    )


def run_model_job(
    job: str,
    argv: list[str] | None,
    body: Callable[[JobContext, ModelDecl], None],
    *,
    conf_dir: str | Path,
    options: JobOptions = JobOptions(),
) -> int:
    """`run_job` for a job that runs one declared model, named by `--model NAME` (optional when
    exactly one is declared). An unknown or missing name fails before Spark starts, listing the
    declared models, as does anything `options.check_args` refuses; the summary and the audit
    row name the model."""
    parser = options.parser or job_parser(job)
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help="the declared model (conf/models/NAME.yaml); optional when only one is",
    )

    def check(args: argparse.Namespace, settings: Settings) -> None:
        try:
            settings.model(args.model)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if options.check_args is not None:
            options.check_args(args, settings)

    def model_body(ctx: JobContext) -> None:
        body(ctx, ctx.settings.model(ctx.args.model))

    def model_of(args: argparse.Namespace, settings: Settings) -> str:
        return settings.model(args.model).name

    return run_job(
        job,
        argv,
        model_body,
        conf_dir=conf_dir,
        options=replace(options, parser=parser, check_args=check),
        model_of=model_of,
    )
