"""The score_stream job's flow: resolve a declared model's version once, then score its
requests table as a stream (see `parity.scoring.stream`), continuously with a processing-time
trigger, or draining what is there and stopping (`--available-now`)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from pathlib import Path

from pyspark.sql.streaming import StreamingQuery

from parity.app.jobkit import JobContext, UsageError
from parity.app.scoring_run import add_version_argument, check_arguments
from parity.core.catalog import TableNotFoundError
from parity.core.conf import ModelDecl, Settings
from parity.features.quality import MissingColumnsError
from parity.governance import tracking
from parity.governance.registry import resolve_model
from parity.scoring import batch
from parity.scoring.batch import read_lookups
from parity.scoring.predictor import ship_model
from parity.scoring.stream import StreamScorer

# A test's hook: pause a batch once its predictions are committed (the test kills the job there).
PAUSE_FILE_ENV = "PARITY_TEST_STREAM_PAUSE_FILE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The score_stream job's own arguments."""
    add_version_argument(parser)
    parser.add_argument(
        "--available-now", action="store_true", help="score every request there is, then stop"
    )


def check_stream_arguments(args: argparse.Namespace, settings: Settings) -> None:
    """Refuse a model that declares no stream, or a bad model version, before Spark starts."""
    model = settings.model(args.model)
    if model.scoring.stream is None:
        raise UsageError(
            f"score_stream: model {model.name} declares no scoring.stream (a requests table to score); see the README"
        )
    check_arguments(args, settings)


def checkpoint_location(settings: Settings, model: ModelDecl) -> str:
    """The stream's checkpoint folder: the declared one, or one per model under the storage root."""
    declared = model.scoring.stream.checkpoint if model.scoring.stream else None
    return declared or f"{settings.storage.root.rstrip('/')}/_checkpoints/score_stream/{model.name}"


def score_stream(ctx: JobContext, model: ModelDecl) -> None:
    """Score the model's requests as a stream into its stream predictions table (the score_stream job's body)."""
    settings, args, stream = ctx.settings, ctx.args, model.scoring.stream
    if stream is None:  # check_stream_arguments refuses it first; a caller of this body may not have
        raise UsageError(f"score_stream: model {model.name} declares no scoring.stream")
    tracking.configure_mlflow(settings)
    resolved = resolve_model(
        model,
        args.model_version or settings.scoring.model_version,
        allow_code_mismatch=settings.scoring.allow_code_mismatch,
    )
    ctx.record.mlflow_run_id, ctx.record.model_version = resolved.run_id, resolved.version
    spark, catalog, spec = ctx.spark, ctx.catalog, resolved.spec
    if not catalog.exists(stream.requests):
        raise TableNotFoundError(
            f"{stream.requests} (scoring.stream.requests) does not exist yet: a producer appends requests "
            "to it (`parity send-requests` appends samples)"
        )
    columns = catalog.schema(stream.requests).fieldNames()
    missing = [
        c
        for c in [
            *spec.caller_columns,
            stream.request_time,
            *([stream.request_id] if stream.request_id else []),
        ]
        if c not in columns
    ]
    if missing:
        raise MissingColumnsError(f"{stream.requests}: missing required column(s) {', '.join(missing)}")
    batch.check_feature_tables(catalog, spec)  # before the stream starts; each batch reads (and records) them
    fitted = batch.load_model(resolved.uri, allow_code_mismatch=settings.scoring.allow_code_mismatch)
    scorer = StreamScorer(
        catalog=catalog,
        spec=spec,
        stream=stream,
        model=ship_model(spark, fitted, spec) if spec.flavor == "sklearn" else fitted,
        model_uri=resolved.uri,
        lineage=resolved.lineage(ctx.record.run_id),
        read_lookups=lambda: read_lookups(catalog, spec),
        predictions_table=model.stream_predictions(),
        quarantine_table=model.stream_quarantine(),
        strategy=settings.scoring.asof_strategy,
        batch_rows=settings.scoring.batch_rows,
        after_predictions=_pause_hook(),
    )
    requests = catalog.read_stream(stream.requests, maxFilesPerTrigger=str(stream.max_files_per_batch))
    writer = requests.writeStream.foreachBatch(scorer)
    writer = writer.option("checkpointLocation", checkpoint_location(settings, model)).queryName(
        f"score_stream_{model.name}"
    )
    writer = (
        writer.trigger(availableNow=True)
        if args.available_now
        else writer.trigger(processingTime=f"{stream.trigger_seconds} seconds")
    )
    started = time.perf_counter()
    query = writer.start()
    scorer.start(str(query.id))
    try:
        _run_until_stopped(query)
    except Exception as exc:  # a batch failed: name its own error, not Spark's wrapper of it
        raise scorer.failure or exc from None
    finally:  # what the committed batches did is recorded, however the stream ended
        ctx.counts.update(scorer.counts.as_counts())
        ctx.summary_extra(
            model=model.name,
            model_name=resolved.name,
            model_uri=resolved.uri,
            stream_query_id=str(query.id),
            checkpoint=checkpoint_location(settings, model),
            seconds={"streaming": round(time.perf_counter() - started, 3)},
        )


def _run_until_stopped(query: StreamingQuery) -> None:
    """Wait for the query to end: by itself (--available-now, or a failed batch), or stopped by
    SIGTERM or Ctrl-C, which stop it cleanly so that the job still records its run."""
    stopping = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while not query.awaitTermination(1):
            if stopping.is_set():
                query.stop()
    except KeyboardInterrupt:
        query.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _pause_hook():  # type: ignore[no-untyped-def]
    """With PARITY_TEST_STREAM_PAUSE_FILE set: after the first batch with predictions committed,
    write its id to that file and wait (to be killed) there."""
    path = os.environ.get(PAUSE_FILE_ENV)
    if not path:
        return None

    def pause(batch_id: int) -> None:
        if not Path(path).exists():
            Path(path).write_text(str(batch_id))
            time.sleep(3600)

    return pause
