"""The build_features job's flow: check the arguments against the declared feature sets before
Spark starts, then build each set (validate its source's new slice, quarantine bad rows, upsert
its features) incrementally, as a backfill of some days, or in full."""

from __future__ import annotations

import argparse

from parity.app.jobkit import JobContext, UsageError, iso_day
from parity.core.conf import Settings
from parity.features.build import BuildOptions, build_declared_sets
from parity.features.compute import declared_sets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The build_features job's own arguments."""
    parser.add_argument("--feature-set", dest="feature_sets", action="append", default=[], metavar="NAME")
    parser.add_argument(
        "--full-refresh", action="store_true", help="rebuild each table from all of its source"
    )
    parser.add_argument("--backfill", action="store_true", help="recompute the days --from .. --to only")
    parser.add_argument("--from", dest="first", type=iso_day, metavar="DAY")
    parser.add_argument("--to", dest="last", type=iso_day, metavar="DAY")
    parser.add_argument(
        "--assume-valid-since",
        dest="valid_since",
        type=iso_day,
        metavar="DAY",
        help="stamp a snapshot set's first build at DAY",
    )


def check_arguments(args: argparse.Namespace, settings: Settings) -> None:
    """Refuse a bad combination of arguments, or an undeclared feature set, before Spark starts."""
    if args.backfill and (args.first is None or args.last is None):
        raise UsageError("--backfill needs --from DAY and --to DAY")
    if not args.backfill and (args.first is not None or args.last is not None):
        raise UsageError("--from and --to only go with --backfill")
    if args.backfill and args.first > args.last:
        raise UsageError(f"--from {args.first} is after --to {args.last}")
    if args.backfill and args.full_refresh:
        raise UsageError("--backfill and --full-refresh exclude each other")
    if args.valid_since is not None and args.backfill:
        raise UsageError("--assume-valid-since and --backfill exclude each other")
    try:
        declared_sets(settings, args.feature_sets or None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def build_features(ctx: JobContext) -> None:
    """Build the declared feature sets the arguments name (all by default): the job's body."""
    args = ctx.args
    results = build_declared_sets(
        ctx.catalog,
        ctx.settings,
        args.feature_sets or None,
        BuildOptions(
            backfill=(args.first, args.last) if args.backfill else None,
            full_refresh=args.full_refresh,
            now=ctx.record.started_at,
            assume_valid_since=args.valid_since,
        ),
    )
    ctx.counts.update({f"{r.feature_set}.{name}": value for r in results for name, value in r.counts.items()})
    ctx.summary_extra(feature_sets={r.feature_set: r.summary() for r in results})
