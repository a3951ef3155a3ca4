#!/usr/bin/env python3
"""Content digests of what a project's pipeline produced, to show that a change to parity left
its results as they were: run it after `make demo` on the commit before and on the commit
after, and compare the two outputs.

    .venv/bin/python scripts/table_digests.py [--conf-dir conf] [--env dev]

It prints one JSON object: for every declared feature set, model training set and model
predictions table, the content digest (`parity.core.digests`) of its current version's rows,
and the training-set digests the `build_training_set` runs recorded in `audit.runs`, in the
order they ran. What differs from one run to the next by design is left out: the landing
times of feature rows (`landed_at`, `superseded_at`: when the build ran), and the run ids
predictions carry (`model_run_id`, `scoring_run_id`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pyspark.sql import functions as F

from parity.core.catalog import Catalog
from parity.core.conf import load_settings
from parity.core.digests import content_digest
from parity.core.session import get_spark
from parity.core.versioned import LANDED_AT, SUPERSEDED_AT, current_rows, is_versioned

RUN_COLUMNS = (LANDED_AT, SUPERSEDED_AT, "model_run_id", "scoring_run_id")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf-dir", type=Path, default=Path("conf"))
    parser.add_argument("--env", default=None)
    args = parser.parse_args(argv)
    settings = load_settings(args.conf_dir, env=args.env)
    catalog = Catalog(get_spark(settings), settings)
    tables = [decl.table for decl in settings.feature_sets.values()]
    for model in settings.models.values():
        tables += [model.training_set(), model.predictions()]
    digests: dict[str, object] = {}
    for table in sorted(dict.fromkeys(tables)):
        if not catalog.exists(table):
            digests[table] = None
            continue
        rows = catalog.read(table)
        rows = current_rows(rows) if is_versioned(rows) else rows
        digests[table] = content_digest(rows.drop(*[c for c in RUN_COLUMNS if c in rows.columns]))
    runs = catalog.read(settings.tables.audit_runs).filter(F.col("job") == "build_training_set")
    digests["audit.runs: training_set_digest"] = [
        json.loads(row["summary"]).get("training_set_digest")
        for row in runs.filter(F.col("status") == "succeeded").orderBy("started_at").collect()
    ]
    print(json.dumps(digests, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
