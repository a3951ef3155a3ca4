"""The `parity` command's parser: one subcommand per command, those that read the conf sharing
one parent parser for `--conf-dir`, `--env` and `--set` (parity.app.cli.conf_args)."""

from __future__ import annotations

import argparse
import datetime as dt

from parity.app.cli.conf_args import conf_parent
from parity.app.cli.lineage import lineage, reproduce, reproduce_worker
from parity.app.cli.package import package, submit_args
from parity.app.cli.report import report
from parity.app.cli.tables import models, send_requests, vacuum
from parity.app.jobkit import OneLineParser


def build_parser() -> argparse.ArgumentParser:
    """The `parity` parser; each subcommand sets `fn`, the function that runs it."""
    parser = OneLineParser(prog="parity")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    conf = [conf_parent()]

    cmd = sub.add_parser("submit-args", parents=conf, help="the spark-submit arguments the conf implies")
    cmd.add_argument("--log-file", default=None, help="where the driver's Spark log goes")
    cmd.add_argument("--package-out", default=None, help="also write the library zip for --py-files here")
    cmd.set_defaults(fn=submit_args)

    cmd = sub.add_parser("report", parents=conf, help="what the pipeline produced, re-counted with delta-rs")
    cmd.set_defaults(fn=report)

    cmd = sub.add_parser("vacuum", parents=conf, help="VACUUM, keeping every version a manifest names")
    cmd.add_argument("--retain-hours", type=float, default=168.0, help="Delta's default is 168 (7 days)")
    cmd.set_defaults(fn=vacuum)

    cmd = sub.add_parser("models", parents=conf, help="the declared models' names")
    cmd.add_argument("--streaming", action="store_true", help="only the models that declare scoring.stream")
    cmd.set_defaults(fn=models)

    cmd = sub.add_parser("send-requests", parents=conf, help="append sample scoring requests, as a producer")
    cmd.add_argument("--model", default=None, help="a declared model (optional when only one is)")
    cmd.add_argument("--at", type=_iso_time, default=None, help="the requests' time (ISO 8601, UTC)")
    cmd.add_argument("--count", type=_count, default=100)
    cmd.add_argument(
        "--malformed",
        type=_count,
        default=0,
        help="also append this many requests with a null key (at most --count)",
    )
    cmd.set_defaults(fn=send_requests)

    trace = "what a table version, model version or run came from, or what depends on it"
    _add_lineage(sub.add_parser("lineage", parents=conf, help=trace))

    cmd = sub.add_parser(
        "reproduce", parents=conf, help="rebuild a model version's training set with its own code"
    )
    cmd.add_argument("--model", default=None, help="a declared model (optional when only one is)")
    cmd.add_argument("--version", required=True, help="the registered model version")
    cmd.add_argument(
        "--keep", action="store_true", help="keep the reproduction's virtual environment (build/reproduce/)"
    )
    cmd.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds the rebuild may take (default 3600)"
    )
    cmd.set_defaults(fn=reproduce)

    # what `parity reproduce` runs in the environment it made
    cmd = sub.add_parser("reproduce-worker", parents=conf)
    cmd.add_argument("--model", required=True)
    cmd.add_argument("--table", required=True)
    cmd.add_argument("--table-version", type=int, required=True)
    cmd.add_argument("--digest", required=True)
    cmd.set_defaults(fn=reproduce_worker)

    cmd = sub.add_parser("package", help="zip the library for spark-submit --py-files")
    cmd.add_argument("--out", required=True)
    cmd.set_defaults(fn=package)
    return parser


def _add_lineage(cmd: argparse.ArgumentParser) -> None:
    start = cmd.add_mutually_exclusive_group(required=True)
    start.add_argument("--model", default=None, help="a declared model (with --version N)")
    start.add_argument("--table", default=None, help="a logical table, e.g. raw.events (with --version N)")
    start.add_argument(
        "--run", default=None, help="a run id (or its start), e.g. a prediction's scoring_run_id"
    )
    cmd.add_argument("--version", default=None, help="the model or table version")
    cmd.add_argument("--forward", action="store_true", help="what depends on it (default: what it came from)")
    cmd.add_argument("--format", choices=("table", "json"), default="table")
    cmd.set_defaults(fn=lineage)


def _iso_time(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an ISO 8601 time (e.g. 2026-06-01T00:00:00)"
        ) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a count (0 or more)")
    return int(text)
