"""The Arrow engine of `add_rolling_aggregates`: the same rows, computed per group of entities.

Spark's own operators compute rolling windows in five steps over every row (a shuffle, a hash
aggregation into tiles, a second aggregation into candidate periods, a sort and a window); on
10M events and two cores that took 25-28 s where polars takes 7 s in one process
(BENCHMARKS.md, issue 14). Here Spark only shuffles the events into partitions of whole
entities and sorts each partition by a hash of the entity keys; a Python worker reads a
partition's Arrow batches in order (`mapInArrow`), cuts them into chunks of at least
`CHUNK_ROWS` events between two hash values (so no entity is split), and polars computes
each chunk: the same algorithm step for step, with the same integer arithmetic for
floating-point sums, so that both engines give the same rows to the bit
(tests/test_transforms.py compares them). Chunks by rows, not a fixed number of groups, keep a
worker's memory from growing with the data (a chunk is as large as its largest entity at
most, beyond `CHUNK_ROWS`), and a small input (an incremental day) to a few calls of the kernel.

Only what both engines compute identically comes here (`arrow_supported`): count and
count_distinct of any column; sum, mean, min and max of integer and floating-point columns.
Anything else (a decimal column's sum, say) stays with Spark's operators.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

ARROW_FUNCTIONS = ("count", "count_distinct", "sum", "mean", "min", "max")
_INTEGRAL = (T.ByteType, T.ShortType, T.IntegerType, T.LongType)
_FLOATING = (T.FloatType, T.DoubleType)
_NANOS = 1_000_000_000
_LONG_MAX = 2**63 - 1
# Events per call of the kernel, at least (more when one entity has more): 50k-200k measured
# alike at 10M events, 50k best on an incremental day. It is part of the transform's code digest.
CHUNK_ROWS = 50_000
_HASH = "_parity_entity_hash"


def arrow_supported(df: DataFrame, aggregates: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the Arrow engine computes these aggregates: count and count_distinct of any
    column; sum, mean, min and max of integer and floating-point columns."""
    types = {f.name: f.dataType for f in df.schema.fields}
    numeric = (*_INTEGRAL, *_FLOATING)
    return all(
        str(spec["column"]) in types
        and (
            spec["fn"] in ("count", "count_distinct")
            or (spec["fn"] in ARROW_FUNCTIONS and isinstance(types[str(spec["column"])], numeric))
        )
        for spec in aggregates
    )


def _output_type(spec: Mapping[str, Any], source: T.DataType) -> T.DataType:
    fn = spec["fn"]
    if fn in ("count", "count_distinct"):
        return T.LongType()
    if fn == "mean":
        return T.DoubleType()
    if fn == "sum":
        return T.DoubleType() if isinstance(source, _FLOATING) else T.LongType()
    return source  # min, max


def rolling_arrow(  # noqa: PLR0913 (add_rolling_aggregates' own keywords; in its digest closure)
    df: DataFrame,
    *,
    keys: list[str],
    time_column: str,
    spans: list[tuple[str, int]],
    aggregates: Sequence[Mapping[str, Any]],
    names: list[str],
    output: str,
    step: int,
    last_event_output: str | None,
) -> DataFrame:
    """`add_rolling_aggregates`' rows through the Arrow engine (see the module docstring).

    `spans` are the windows (label, length in periods) shortest first, `names` the output column
    of each (window, aggregate) pair in that order, `step` the period in microseconds.
    """
    types = {f.name: f.dataType for f in df.schema.fields}
    fields = [T.StructField(k, types[k]) for k in keys] + [T.StructField(output, T.TimestampType())]
    pairs = [(length, i, spec) for _, length in spans for i, spec in enumerate(aggregates)]
    fields += [
        T.StructField(name, _output_type(spec, types[str(spec["column"])]))
        for name, (_, _, spec) in zip(names, pairs, strict=True)
    ]
    if last_event_output is not None:
        fields.append(T.StructField(last_event_output, T.TimestampType()))
    columns = list(
        dict.fromkeys([*keys, time_column, *sorted({str(spec["column"]) for spec in aggregates})])
    )  # an aggregate may count a key or the time
    floating = sorted(
        {str(spec["column"]) for spec in aggregates if isinstance(types[str(spec["column"])], _FLOATING)}
    )
    plan = {
        "keys": keys,
        "time": time_column,
        "output": output,
        "step": step,
        "last_event": last_event_output,
        "lengths": sorted({length for _, length in spans}),
        "longest": spans[-1][1],
        "floating": floating,
        "windows": [
            (length, i, str(spec["column"]), str(spec["fn"]), name)
            for (length, i, spec), name in zip(pairs, names, strict=True)
        ],
        "aggregates": [(i, str(spec["column"]), str(spec["fn"])) for i, spec in enumerate(aggregates)],
    }
    hashed = df.select(*columns, F.xxhash64(*[F.col(k) for k in keys]).alias(_HASH))
    rows = CHUNK_ROWS  # read when planned, so that a test may make chunks small

    def kernel(batches: Iterator[Any]) -> Iterator[Any]:
        for chunk in whole_entities(batches, rows):
            yield from rolling_kernel(chunk.drop_columns([_HASH]), plan).to_batches()

    return hashed.repartition(_HASH).sortWithinPartitions(_HASH).mapInArrow(kernel, T.StructType(fields))


def whole_entities(batches: Iterator[Any], rows: int) -> Iterator[Any]:
    """A partition's Arrow batches, sorted by the entity hash, as pyarrow Tables of at least
    `rows` rows (the last may hold fewer), each cut between two hash values, so that every
    entity's events are in one table (a hash shared by two entities keeps both in it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    pending: list[Any] = []
    held = 0
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        if held < rows or batch.num_rows == 0:
            continue
        hashes = batch.column(_HASH)
        cut = pc.index(
            hashes, hashes[-1]
        ).as_py()  # where the batch's last hash value starts: it may go on in the next
        if cut == 0 or held - (batch.num_rows - cut) < rows:  # (at 0 it may have begun in an earlier batch)
            continue
        yield pa.Table.from_batches([*pending[:-1], batch.slice(0, cut)])
        pending, held = [batch.slice(cut)], batch.num_rows - cut
    if held:
        yield pa.Table.from_batches(pending)


def rolling_kernel(table: Any, plan: Mapping[str, Any]) -> Any:
    """A chunk of whole entities (a pyarrow Table) to its rows of rolling aggregates, with
    polars, step for step as `add_rolling_aggregates` does with Spark's operators. Events
    without a time are left out (a build has quarantined them; Spark's operators would give
    them a row with no feature time)."""
    import polars as pl
    import pyarrow as pa

    keys, step, time = plan["keys"], plan["step"], plan["time"]
    utc = pa.timestamp("us", tz="UTC")  # Spark sends times in the session's zone and expects them back in UTC
    table = table.set_column(table.schema.get_field_index(time), time, table.column(time).cast(utc))
    events = pl.from_arrow(table)
    if not isinstance(events, pl.DataFrame):
        raise TypeError("rolling_kernel expects a table")
    events = events.filter(pl.col(time).is_not_null())
    partials: list[pl.Expr] = [pl.col(time).max().alias("_last_event")]
    for i, column, fn in plan["aggregates"]:
        value, floating = pl.col(column), column in plan["floating"]
        if fn in ("count", "mean"):
            partials.append(value.count().cast(pl.Int64).alias(f"_n{i}"))
        if fn in ("sum", "mean") and floating:
            exact = value.cast(pl.Float64)
            whole = exact.floor()  # value - floor(value) is exact in floating point
            partials.append(
                whole.cast(pl.Int64).cast(pl.Int128).sum().alias(f"_s{i}")
            )  # sums in 128 bits: overflow is caught, not wrapped
            partials.append(
                ((exact - whole) * _NANOS)
                .round(0, mode="half_away_from_zero")
                .cast(pl.Int64)
                .cast(pl.Int128)
                .sum()
                .alias(f"_r{i}")
            )
        elif fn in ("sum", "mean"):
            partials.append(value.cast(pl.Int128).sum().alias(f"_s{i}"))
        if fn in ("min", "max"):
            partials.append(_extreme(value, fn, floating).alias(f"_m{i}"))
        if fn == "count_distinct":
            partials.append(value.drop_nulls().unique().alias(f"_d{i}"))
    tiles = events.group_by(*keys, (pl.col(time).dt.epoch("us") // step).alias("_slot")).agg(partials)
    # Candidate periods: each tile's own, and the period its events leave each window.
    candidates = pl.concat(
        [tiles.select(*keys, (pl.col("_slot") + shift).alias("_slot")) for shift in [0, *plan["lengths"]]]
    ).unique()
    grid = candidates.join(tiles, on=[*keys, "_slot"], how="left", nulls_equal=True).sort(*keys, "_slot")
    stamped = pl.from_epoch((pl.col("_slot") + 1) * step, time_unit="us").dt.replace_time_zone("UTC")
    parts = [grid.select(*keys, stamped.alias(plan["output"]))]
    for length in plan["lengths"]:
        wanted = [w for w in plan["windows"] if w[0] == length]
        rolled = grid.rolling(index_column="_slot", period=f"{length}i", group_by=keys).agg(
            _window_columns(wanted, plan["floating"])
        )
        parts.append(pl.DataFrame(_finish(_aligned(rolled, grid, keys), wanted, plan["floating"])))
    if plan["last_event"] is not None:
        latest = grid.rolling(index_column="_slot", period=f"{plan['longest'] + 1}i", group_by=keys).agg(
            pl.col("_last_event").max().alias(plan["last_event"])
        )
        parts.append(_aligned(latest, grid, keys).select(plan["last_event"]))
    result = pl.concat(parts, how="horizontal")
    ordered = [
        *keys,
        plan["output"],
        *[name for *_, name in plan["windows"]],
        *([plan["last_event"]] if plan["last_event"] else []),
    ]
    out = result.select(ordered).to_arrow()
    for key in keys:  # polars holds strings as large strings: back to the types the keys came in
        out = out.set_column(
            out.schema.get_field_index(key), key, out.column(key).cast(table.schema.field(key).type)
        )
    return out


def _extreme(value: Any, fn: str, floating: bool) -> Any:
    """min or max as Spark takes them: NaN is greater than any number, so a max over a NaN is
    NaN (polars' max skips NaN; its min does as Spark's)."""
    if fn == "min":
        return value.min()
    return value.nan_max() if floating else value.max()


def _aligned(rolled: Any, grid: Any, keys: list[str]) -> Any:
    """`rolled`, a rolling aggregation of `grid`, in `grid`'s order (polars returns the groups
    in an order of its own): sorted alike, then checked key for key."""
    rolled = rolled.sort(*keys, "_slot")
    for column in [*keys, "_slot"]:
        if not rolled.get_column(column).equals(grid.get_column(column)):
            raise RuntimeError("rolling_kernel: the windows do not line up with the periods")
    return rolled


def _window_columns(windows: list[tuple[int, int, str, str, str]], floating: list[str]) -> list[Any]:
    """The polars expressions of each window's sums and extremes, from the tiles' partials;
    `_finish` turns the sums into the values."""
    import polars as pl

    out = []
    for _, i, column, fn, name in windows:
        if fn in ("count", "mean"):
            out.append(pl.col(f"_n{i}").sum().alias(f"{name}:n"))
        if fn in ("sum", "mean"):
            out.append(pl.col(f"_s{i}").sum().alias(f"{name}:s"))
            if column in floating:
                out.append(pl.col(f"_r{i}").sum().alias(f"{name}:r"))
        if fn in ("min", "max"):
            out.append(_extreme(pl.col(f"_m{i}"), fn, column in floating).alias(name))
        if fn == "count_distinct":
            out.append(
                pl.col(f"_d{i}")
                .list.explode(keep_nulls=False, empty_as_null=False)
                .drop_nulls()
                .n_unique()
                .cast(pl.Int64)
                .alias(name)
            )
    return out


def _finish(rolled: Any, windows: list[tuple[int, int, str, str, str]], floating: list[str]) -> list[Any]:
    """Each window's values from its sums, in numpy: polars divides by a constant through its
    reciprocal, which differs from Spark's division in the last bit."""
    import numpy as np
    import polars as pl

    out = []
    for _, _, column, fn, name in windows:
        if fn in ("min", "max", "count_distinct"):
            out.append(rolled.get_column(name))
            continue
        if fn == "count":
            out.append(rolled.get_column(f"{name}:n").alias(name))
            continue
        sums = _long(rolled.get_column(f"{name}:s"), column)
        if fn == "sum" and column not in floating:
            out.append(sums.alias(name))
            continue
        total = sums.to_numpy().astype(np.float64)
        if column in floating:
            total = (
                total + _long(rolled.get_column(f"{name}:r"), column).to_numpy().astype(np.float64) / _NANOS
            )
        if fn == "sum":
            out.append(pl.Series(name, total))
            continue
        count = rolled.get_column(f"{name}:n").to_numpy()
        mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        out.append(pl.Series(name, mean).set(pl.Series(count <= 0), None))
    return out


def _long(sums: Any, column: str) -> Any:
    """128-bit window sums as longs; one beyond a long fails, as Spark's (ANSI) arithmetic does."""
    import polars as pl

    if len(sums) and (sums.max() > _LONG_MAX or sums.min() < -_LONG_MAX - 1):
        raise OverflowError(
            f"add_rolling_aggregates: a window sum of {column} overflows a long (beyond 9.2e18 in magnitude)"
        )
    return sums.cast(pl.Int64)
