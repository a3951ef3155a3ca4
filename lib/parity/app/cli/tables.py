"""The `parity` commands about the declared tables: the declared models' names (`parity models`),
VACUUM that keeps what manifests name (`parity vacuum`), and sample scoring requests appended as
a producer would (`parity send-requests`, a run under the job contract: an audit.runs row, and
its append rolled back if it fails)."""

from __future__ import annotations

import argparse
import datetime as dt
import uuid

from parity.app.cli.conf_args import settings_of
from parity.app.jobkit import JobContext, run_parsed
from parity.core.conf import ConfError, ModelDecl

SEND_REQUESTS = "send_requests"  # the job name of `parity send-requests` in audit.runs


def models(args: argparse.Namespace) -> int:
    """Print the declared models' names, one a line (what `make demo` runs the model jobs for);
    with `--streaming`, only those that declare a stream of scoring requests."""
    for name, declared in sorted(settings_of(args).models.items()):
        if not args.streaming or declared.scoring.stream is not None:
            print(name)
    return 0


def vacuum(args: argparse.Namespace) -> int:
    """VACUUM the raw, label, feature and training tables, keeping every version a training set's
    manifest names."""
    from parity.core.catalog import Catalog
    from parity.core.session import get_spark
    from parity.features.training_sets import manifest_versions

    settings = settings_of(args)
    catalog = Catalog(get_spark(settings), settings)
    tables = settings.tables
    protected: dict[str, set[int]] = {}
    for model in settings.models.values():
        if catalog.exists(model.training_set()):
            for name, versions in manifest_versions(catalog, model.training_set()).items():
                protected.setdefault(name, set()).update(versions)
    names = [tables.raw_customers, tables.raw_events, tables.raw_labels]
    names += [
        table for model in settings.models.values() for table in (model.labels.table, model.training_set())
    ]
    names += [decl.table for decl in settings.feature_sets.values()]
    for name in dict.fromkeys(names):
        if not catalog.exists(name):
            continue
        keep = protected.get(name, set())
        hours = catalog.vacuum(name, retain_hours=args.retain_hours, protect=keep)
        kept = f"; keeps version(s) {', '.join(map(str, sorted(keep)))} named by manifests" if keep else ""
        print(f"{name}: vacuumed with {hours:g} h retention{kept}")
    return 0


def send_requests(args: argparse.Namespace) -> int:
    """Append `--count` sample requests (and `--malformed` bad ones) to a model's requests table,
    timed `--at` (default: the newest feature time of the model's first lookup), as a run of the
    job `send_requests`: its JSON summary is the last line of stdout."""
    settings = settings_of(args)
    try:
        model = settings.model(args.model)
    except ValueError as exc:
        raise ConfError(str(exc)) from None
    if model.scoring.stream is None:
        raise ConfError(f"model {model.name} declares no scoring.stream")
    return run_parsed(
        SEND_REQUESTS, args, settings, lambda ctx: append_requests(ctx, model), model=model.name
    )


def append_requests(ctx: JobContext, model: ModelDecl) -> None:
    """Append the sample requests in one commit (the body of `parity send-requests`).

    Raises:
        ConfError: no `--at`, and the model's first feature table has no rows to time them by.
    """
    from pyspark.sql import functions as F

    from parity.scoring.stream import RequestSample, sample_requests

    stream, args = model.scoring.stream, ctx.args
    if stream is None:
        raise ConfError(f"model {model.name} declares no scoring.stream")
    at: dt.datetime | None = args.at
    if at is None:
        first = ctx.settings.feature_sets[model.features[0].feature_set]
        newest = ctx.catalog.read(first.table).agg(F.max(first.timestamp)).first()
        at = newest[0] if newest is not None else None
        if at is None:
            raise ConfError(f"{first.table} is empty: build the features first, or give --at")
    population = ctx.catalog.read(model.scoring.population.table)
    columns = list(model.labels.lookup_columns())
    tag = uuid.uuid4().hex[:8]
    sample = RequestSample(count=args.count, at=at, tag=tag, malformed=args.malformed)
    rows = sample_requests(population, columns, stream, sample)
    version = ctx.catalog.write(rows, stream.requests, mode="append")
    appended = ctx.catalog.operation_metrics(stream.requests, version).get("numOutputRows", 0)
    ctx.counts["requests.out"] = int(appended)
    ctx.summary_extra(requests=stream.requests, at=str(at))
