"""Near-time scoring: a stream of scoring requests over a Delta table, each micro-batch scored
by the batch path, exactly once.

A producer appends requests (the model's keys and lookup columns, a request time, optionally
a request id) to a Delta table. Spark Structured Streaming reads the new rows with a
checkpoint, and `StreamScorer` scores each micro-batch inside `foreachBatch`: the requests
are validated (a bad one is quarantined with its reason, never fatal), the features assembled
as of each request's time from the feature tables' newest versions, and the predictions
appended. Every table a batch writes is written with Delta's `txnAppId` (the stream's query
id, which the checkpoint keeps) and `txnVersion` (the batch id), so a batch replayed after a
crash commits nothing twice. A stream never rolls its tables back: the checkpoint counts
every committed batch as done, and a restart resumes from it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from parity.core.catalog import Catalog
from parity.core.columns import SCORE_DATE, SCORE_TS
from parity.core.conf import StreamDecl
from parity.features.asof import FeatureLookup, Strategy
from parity.model.spec import FeatureSpec
from parity.scoring import batch

STREAM_BATCH = "stream_batch"  # the micro-batch that wrote a row
STREAM_BATCH_KEY = "parity.stream_batch"  # in a batch's commit metadata, with the feature versions it read


def split_requests(requests: DataFrame, spec: FeatureSpec, stream: StreamDecl) -> tuple[DataFrame, DataFrame]:
    """Requests split into valid ones (typed, with score_ts = the request time) and ones to
    quarantine: a null or malformed key, or request time (see `batch.split_valid_keys`).

    Returns:
        (the spec's caller columns, score_ts, the request id if declared; quarantined rows as
        text, with quarantine_rule, quarantine_reason and score_ts, null when the time is bad).
    """
    checked = {**spec.caller_columns, stream.request_time: "timestamp"}
    carry = [stream.request_id] if stream.request_id and stream.request_id not in checked else []
    valid, quarantined = batch.split_valid_keys(requests, checked, source=stream.requests, carry=carry)
    request_ts = F.col(stream.request_time)
    valid = valid.select(*spec.caller_columns, request_ts.alias(SCORE_TS), *carry)
    return valid, quarantined.withColumn(SCORE_TS, request_ts.try_cast("timestamp"))


@dataclass(frozen=True)
class RequestSample:
    """Which sample requests to send (see `sample_requests`): `count` of them, timed `at`, with
    request ids `<tag>-<n>`, and `malformed` more with a null key (a demo of quarantine)."""

    count: int
    at: dt.datetime
    tag: str
    malformed: int = 0


def sample_requests(
    population: DataFrame, columns: list[str], stream: StreamDecl, sample: RequestSample
) -> DataFrame:
    """`sample.count` scoring requests for distinct population rows, as a producer appends them:
    the caller `columns`, the request time `sample.at`, and a request id `<sample.tag>-<n>` (if
    declared); then `sample.malformed` requests with a null key.

    Returns: `columns`, the request time, the request id.
    """
    count, at, tag, malformed = sample.count, sample.at, sample.tag, sample.malformed
    keys = population.select(*columns).dropna().distinct()
    picked = keys.orderBy(F.xxhash64(*columns, F.lit(tag))).limit(count)
    bad = picked.limit(malformed).withColumn(
        columns[0], F.lit(None).cast(population.schema[columns[0]].dataType)
    )
    rows = picked.unionByName(bad).withColumn(stream.request_time, F.lit(at).cast("timestamp"))
    if stream.request_id:
        numbered = F.row_number().over(Window.orderBy(*columns))
        rows = rows.withColumn(stream.request_id, F.concat(F.lit(f"{tag}-"), numbered.cast("string")))
    return rows


@dataclass
class StreamCounts:
    """What a stream run did: requests taken; of them, scored, quarantined, or found already
    committed (a batch replayed after a crash); and batches run and replayed."""

    requests_in: int = 0
    predictions_out: int = 0
    quarantined: int = 0
    already_committed: int = 0
    batches: int = 0
    replayed: int = 0

    def as_counts(self) -> dict[str, int]:
        return {
            "requests.in": self.requests_in,
            "predictions.out": self.predictions_out,
            "requests.quarantined": self.quarantined,
            "requests.already_committed": self.already_committed,
            "batches": self.batches,
            "batches.replayed": self.replayed,
        }


@dataclass
class StreamScorer:
    """The `foreachBatch` function of a scoring stream: one micro-batch of requests in, its
    predictions and quarantined requests appended, each table's write idempotent.

    `read_lookups` reads the feature tables at their newest versions (once per batch, so a
    long-running stream sees each new build); `lineage` holds the model's identity and the
    scoring run id every row carries. `after_predictions(batch_id)` runs once the batch's
    predictions are committed (a test pauses there to kill the job mid-batch).
    """

    catalog: Catalog
    spec: FeatureSpec
    stream: StreamDecl
    model: Any
    model_uri: str
    lineage: dict[str, str]
    read_lookups: Callable[[], list[FeatureLookup]]
    predictions_table: str
    quarantine_table: str
    strategy: Strategy = "sort"
    batch_rows: int = batch.BATCH_ROWS
    after_predictions: Callable[[int], None] | None = None
    counts: StreamCounts = field(default_factory=StreamCounts)
    failure: Exception | None = None  # the error a batch failed with (Spark reports it wrapped)
    _app_id: str | None = field(default=None, repr=False)
    _started: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self, app_id: str) -> None:
        """Name the stream (its query id) that every batch writes as; batches wait for it."""
        self._app_id = app_id
        self._started.set()

    def __call__(self, requests: DataFrame, batch_id: int) -> None:
        try:
            self._score(requests, batch_id)
        except Exception as exc:
            self.failure = exc
            raise

    def _score(self, requests: DataFrame, batch_id: int) -> None:
        self._started.wait()
        txn = (str(self._app_id), batch_id)  # start() set the id before the wait returned
        requests = requests.persist()
        try:
            taken = requests.count()
            lookups = self.read_lookups()
            valid, quarantined = split_requests(requests, self.spec, self.stream)
            scorable = valid.count()
            carry = [c for c in valid.columns if c not in (*self.spec.caller_columns, SCORE_TS)]
            metadata: dict[str, object] = {
                STREAM_BATCH_KEY: {
                    "batch": batch_id,
                    "features": {lookup.table: lookup.version for lookup in lookups},
                }
            }
            written: int | None = 0
            if scorable:
                scored = batch.score(
                    self.catalog.spark,
                    valid,
                    lookups,
                    self.spec,
                    model=batch.ScoredModel(
                        self.model_uri,
                        self.lineage["model_name"],
                        self.lineage["model_version"],
                        self.lineage["model_run_id"],
                    ),
                    options=batch.ScoringOptions(
                        strategy=self.strategy, batch_rows=self.batch_rows, fitted=self.model, carry=carry
                    ),
                )
                written = self._append(
                    batch.with_lineage(scored, **self.lineage), self.predictions_table, txn, metadata
                )
            if self.after_predictions is not None:
                self.after_predictions(batch_id)
            held: int | None = 0
            if taken > scorable:
                held = self._append(
                    batch.with_lineage(quarantined, **self.lineage), self.quarantine_table, txn, metadata
                )
        finally:
            requests.unpersist()
        already = (scorable if written is None else 0) + (taken - scorable if held is None else 0)
        self.counts.batches += 1
        self.counts.replayed += 1 if already else 0
        self.counts.requests_in += taken
        self.counts.predictions_out += written or 0
        self.counts.quarantined += held or 0
        self.counts.already_committed += already

    def _append(
        self, rows: DataFrame, name: str, txn: tuple[str, int], metadata: dict[str, object]
    ) -> int | None:
        """Append the batch's rows (at least one) to one table as its transaction `txn`; the rows
        written, or None when that transaction was committed already (no new version)."""
        before = self.catalog.version(name)
        stamped = rows.withColumn(STREAM_BATCH, F.lit(txn[1]).cast("long"))
        version = self.catalog.write(
            stamped, name, mode="append", partition_by=[SCORE_DATE], txn=txn, commit_metadata=metadata
        )
        if before is not None and version == before:
            return None
        return int(self.catalog.operation_metrics(name, version).get("numOutputRows", 0))
