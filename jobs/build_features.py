"""Build the declared feature sets: validate each source's new slice, quarantine bad rows, upsert
features (see parity.app.features_run).

    build_features [--feature-set NAME ...] [--full-refresh | --backfill --from DAY --to DAY] [--assume-valid-since DAY]

By default every declared feature set (conf/features/*.yaml) is built incrementally from its
watermark. `--backfill` recomputes the given days (UTC, inclusive) and leaves the rest of each
table untouched; `--full-refresh` rebuilds each table from all of its source.
`--assume-valid-since` stamps a snapshot set's first build (or full refresh) at that day.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from parity.app.features_run import add_arguments, build_features, check_arguments
from parity.app.jobkit import JobOptions, job_parser, run_job

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def parser() -> argparse.ArgumentParser:
    parser = job_parser("build_features")
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    options = JobOptions(parser=parser(), check_args=check_arguments)
    return run_job("build_features", argv, build_features, conf_dir=CONF_DIR, options=options)


if __name__ == "__main__":
    sys.exit(main())
