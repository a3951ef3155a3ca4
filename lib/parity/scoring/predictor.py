"""Vectorized predict on the executors: a single-node model loaded once per Python worker,
predicting on Arrow batches of a tuned size.

The fitted model (a sklearn Pipeline that prepares its own inputs) travels to the executors
as skops bytes in a broadcast, never pickled, and is loaded once per Python worker: Spark
reuses its workers across tasks, and the loaded model is kept in this module, keyed by the
digest of its bytes. Each task groups Spark's Arrow batches into chunks of `batch_rows`
rows (a predict call has a fixed cost, so small batches waste time) and caps the native
threads (OpenMP, BLAS) to the task's cores, so that two tasks do not oversubscribe the cores.

Each chunk is predicted by `parity.model.packaged.predict_frame`, the code the packaged
model's own `predict` runs, so both give the same numbers on the same rows.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from parity.core.columns import PREDICTION
from parity.core.hashing import bytes_digest
from parity.model.spec import FeatureSpec

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.core.broadcast import Broadcast

BATCH_ROWS = 100_000  # rows per predict call; bench/scoring.py measured 50k-250k alike, 10k 1.3x slower
_LOADED_MODELS = 4  # models a Python worker keeps loaded (a champion and a challenger, and room)
_models: OrderedDict[str, Any] = OrderedDict()


@dataclass(frozen=True)
class ShippedModel:
    """A fitted single-node model on its way to the executors: its skops bytes in a broadcast,
    the digest that names it in each worker's cache, and its feature spec."""

    digest: str
    blob: Broadcast[bytes]
    spec: FeatureSpec

    def load(self) -> Any:
        """The model, loaded at most once per Python worker (the bytes are read only then)."""
        model = _models.get(self.digest)
        if model is None:
            import skops.io

            from parity.model.packaged import SKOPS_TRUSTED_TYPES

            model = skops.io.loads(self.blob.value, trusted=SKOPS_TRUSTED_TYPES)
            _models[self.digest] = model
            while len(_models) > _LOADED_MODELS:
                _models.popitem(last=False)
        _models.move_to_end(self.digest)
        return model


def ship_model(spark: SparkSession, model: Any, spec: FeatureSpec) -> ShippedModel:
    """Serialize a fitted sklearn model with skops (its types checked against
    SKOPS_TRUSTED_TYPES) and broadcast it.

    Raises:
        UntrustedModelTypesError: the model holds a type skops would refuse to load.
    """
    import skops.io

    from parity.model.packaged import check_trusted

    check_trusted(model)
    blob = skops.io.dumps(model)
    return ShippedModel(bytes_digest(blob), spark.sparkContext.broadcast(blob), spec)


def predict_batches(
    rows: DataFrame,
    shipped: ShippedModel,
    *,
    keep: list[str],
    batch_rows: int = BATCH_ROWS,
    threads: int | None = None,
) -> DataFrame:
    """Predict every row with the shipped model on the executors.

    Needs: the spec's inputs, typed as the model's signature types them, and `keep`.
    Returns: `keep` (as they were), prediction (double).

    `threads` caps each task's native threads; by default the task's cores (`spark.task.cpus`).
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    spark = rows.sparkSession
    threads = threads or int(spark.conf.get("spark.task.cpus", "1") or 1)
    inputs = shipped.spec.inputs
    schema = T.StructType([*(rows.schema[c] for c in keep), T.StructField(PREDICTION, T.DoubleType())])

    def predict(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa
        from threadpoolctl import threadpool_limits

        from parity.model.packaged import predict_frame

        model = shipped.load()
        with threadpool_limits(limits=threads):
            for chunk in _chunks(batches, batch_rows):
                table = pa.Table.from_batches(chunk)
                predicted = predict_frame(model, shipped.spec, table.select(inputs).to_pandas())
                out = table.select(keep).append_column(
                    PREDICTION, pa.array(predicted.to_numpy(), type=pa.float64())
                )
                yield from out.to_batches()

    return rows.select(*keep, *(c for c in inputs if c not in keep)).mapInArrow(predict, schema)


def _chunks(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[list[pa.RecordBatch]]:
    """Spark's Arrow batches grouped into lists of at least `rows` rows (the last may hold fewer)."""
    chunk: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        chunk.append(batch)
        held += batch.num_rows
        if held >= rows:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk
