"""Build the declared feature sets: validate each source's new slice, quarantine bad rows, upsert features.

    build_features [--feature-set NAME ...] [--full-refresh | --backfill --from DAY --to DAY]

By default every declared feature set (conf/features/*.yaml) is built incrementally from its
watermark. `--backfill` recomputes the given days (UTC, inclusive) and leaves the rest of each
table untouched; `--full-refresh` rebuilds each table from all of its source.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from parity import features
from parity.conf import Settings
from parity.jobkit import JobContext, UsageError, job_parser, run_job

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a day (YYYY-MM-DD)") from None


def parser() -> argparse.ArgumentParser:
    parser = job_parser("build_features")
    parser.add_argument("--feature-set", dest="feature_sets", action="append", default=[], metavar="NAME")
    parser.add_argument("--full-refresh", action="store_true", help="rebuild each table from all of its source")
    parser.add_argument("--backfill", action="store_true", help="recompute the days --from .. --to only")
    parser.add_argument("--from", dest="first", type=_day, metavar="DAY")
    parser.add_argument("--to", dest="last", type=_day, metavar="DAY")
    return parser


def check_args(args: argparse.Namespace, settings: Settings) -> None:
    """Refuse a bad combination of arguments before Spark starts."""
    if args.backfill and (args.first is None or args.last is None):
        raise UsageError("--backfill needs --from DAY and --to DAY")
    if not args.backfill and (args.first is not None or args.last is not None):
        raise UsageError("--from and --to only go with --backfill")
    if args.backfill and args.first > args.last:
        raise UsageError(f"--from {args.first} is after --to {args.last}")
    if args.backfill and args.full_refresh:
        raise UsageError("--backfill and --full-refresh exclude each other")
    try:
        features.declared_sets(settings, args.feature_sets or None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def body(ctx: JobContext) -> None:
    args = ctx.args
    decls = features.declared_sets(ctx.settings, args.feature_sets or None)
    backfill = (args.first, args.last) if args.backfill else None
    # Every check of every set runs before the first write.
    plans = [
        features.plan_feature_build(
            ctx.catalog, ctx.settings, decl, backfill=backfill, full_refresh=args.full_refresh, now=ctx.record.started_at
        )
        for decl in decls
    ]
    built = {}
    for planned in plans:
        decl = planned.decl
        result = features.run_feature_build(ctx.catalog, planned)
        for name, value in result.counts.items():
            ctx.counts[f"{decl.name}.{name}"] = value
        built[decl.name] = {
            "table": result.table,
            "version": result.version,
            "quarantine_table": result.quarantine_table,
            "range": result.range.as_dict(),
            "watermark": result.watermark,
            "merge": {k: v for k, v in result.merge.items() if k.startswith("numTarget") or k == "numOutputRows"},
            "quarantine_rules": result.quarantine_rules,
            "ignored_columns": result.ignored_columns,
            "seconds": result.seconds,
        }
    ctx.summary_extra(feature_sets=built)


def main(argv: list[str] | None = None) -> int:
    return run_job("build_features", argv, body, conf_dir=CONF_DIR, parser=parser(), check_args=check_args)


if __name__ == "__main__":
    sys.exit(main())
