"""The `parity` command: helpers for spark-submit.sh and the demo.

- `parity submit-args`: validates the conf and prints the spark-submit arguments it implies,
  one per line (master, Delta jars, Spark conf), so a bad conf fails before Spark starts.
- `parity package`: zips lib/parity for `--py-files`, so executors import the same code.
- `parity report`: reads the newest run of each pipeline job from audit.runs with an
  independent Delta reader (delta-rs) and reconciles each job's typed summary with the
  tables it wrote (parity.app.summaries).
- `parity vacuum`: VACUUMs the raw, feature and training tables without deleting any version
  a training set's manifest names.
- `parity send-requests`: appends sample scoring requests to a model's requests table, as a
  producer would (what the demo's stream then drains), as a run under the job contract.
- `parity lineage`: walks audit.runs backwards (what a table version, a model version or a
  run came from) or forwards (what depends on it), as a table or as JSON.
- `parity reproduce`: rebuilds a model version's training set with the parity wheel the
  model carries, in a virtual environment of its own, and compares digests.
- `parity promote | approve | rollback ...`: the governance jobs, run as
  `./spark-submit.sh <job> ...` would run them (see `parity.app.governance_run`).

One module per concern: the parser (parser, with the conf arguments every subcommand shares
in conf_args), spark-submit's helpers (package), the report (report), lineage and reproduce
(lineage), and the commands about the declared tables (tables).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import parity
from parity.app.cli.lineage import lineage
from parity.app.cli.package import package, submit_args, write_package
from parity.app.cli.parser import build_parser
from parity.app.cli.report import MODEL_JOBS, PIPELINE, report
from parity.app.cli.tables import models, send_requests, vacuum
from parity.app.jobkit import UsageError
from parity.core.conf import ConfError
from parity.core.session import MissingJarsError

__all__ = [
    "GOVERNANCE_JOBS",
    "MODEL_JOBS",
    "PIPELINE",
    "build_parser",
    "lineage",
    "main",
    "models",
    "package",
    "report",
    "run_job_script",
    "send_requests",
    "submit_args",
    "vacuum",
    "write_package",
]

GOVERNANCE_JOBS = ("promote", "approve", "rollback")  # `parity <job> ...` runs ./spark-submit.sh <job> ...


def run_job_script(job: str, argv: list[str]) -> int:
    """Run one of parity's jobs through the checkout's spark-submit.sh, in place of this process."""
    script = Path(parity.__file__).resolve().parents[2] / "spark-submit.sh"
    if not script.is_file():
        print(
            f"error: parity {job}: no spark-submit.sh beside this parity ({script}); run it from a parity checkout",
            file=sys.stderr,
        )
        return 2
    sys.stdout.flush()
    os.execv(str(script), [str(script), job, *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in GOVERNANCE_JOBS:
        return run_job_script(argv[0], argv[1:])
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown and args.command != "submit-args":  # submit-args ignores a job's own arguments
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        if args.command == "lineage" and (args.model or args.table) and not (args.version or "").isdigit():
            parser.error("lineage: --model and --table need --version N")
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.fn(args))
    except (ConfError, MissingJarsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
