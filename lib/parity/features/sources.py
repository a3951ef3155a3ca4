"""Raw sources at the edge of a feature build: their declared contract, validation and quarantine.

Rows that break an expectation go to `quarantine.<source>` with the rule and a reason, so
that rows in = rows out + rows quarantined; quarantined rows never hold PII.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from parity.core.columns import QUARANTINE_REASON, QUARANTINE_RULE, struct_of
from parity.core.conf import Expectation, FeatureSetDecl, NotNullExpectation, SourceQualityConf
from parity.features import pii
from parity.features.quality import apply_expectations, require_columns

SOURCE_ROW_HASH = "source_row_hash"  # with the rule and the occurrence, the key of a quarantine table
SOURCE_ROW_OCCURRENCE = "source_row_occurrence"


def source_contract(conf: SourceQualityConf) -> T.StructType:
    """The declared columns of a source as a schema (empty when the source declares none)."""
    return struct_of(conf.columns)


def validate_source(
    df: DataFrame, conf: SourceQualityConf, *, source: str, required: list[str] | None = None
) -> tuple[DataFrame, DataFrame]:
    """Split a raw source into (valid, quarantined with rule and reason) by its declared expectations.

    `required` columns (a feature set's entity keys and event time) must not be null, whether
    or not the source declares it: those checks come first.

    Columns beyond the declared contract are dropped (jobs report them). Quarantined rows keep
    the source's columns with free text redacted and PII columns emptied, so quarantine never
    holds PII, and gain a hash of the original row and its occurrence (1 for the first of
    identical rows), which with the rule key the quarantine table.

    Raises:
        MissingColumnsError: a declared column is missing or retyped (names the column).
    """
    contract = source_contract(conf)
    if contract.fields:
        require_columns(df, contract, source=source)
        df = df.select(*contract.fieldNames())
    row_hash = F.xxhash64(F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns])))
    structural: list[Expectation] = [NotNullExpectation(rule="not_null", column=c) for c in required or []]
    expectations = structural + [e for e in conf.expectations if e not in structural]
    valid, quarantined = apply_expectations(df, expectations, source=source)
    safe = [
        (F.lit(None).cast(kind).alias(name) if name in conf.pii else pii.redact(F.col(name)).alias(name))
        if kind == "string"
        else F.col(name)
        for name, kind in quarantined.dtypes
        if name not in (QUARANTINE_RULE, QUARANTINE_REASON)
    ]
    keyed = quarantined.select(row_hash.alias(SOURCE_ROW_HASH), *safe, QUARANTINE_RULE, QUARANTINE_REASON)
    identical = Window.partitionBy(SOURCE_ROW_HASH, QUARANTINE_RULE).orderBy(SOURCE_ROW_HASH)
    return valid, keyed.withColumn(SOURCE_ROW_OCCURRENCE, F.row_number().over(identical))


def required_columns(decl: FeatureSetDecl) -> list[str]:
    """The source columns a feature set cannot do without: its entity keys and event time (if it has one)."""
    return [*decl.entity, *([decl.event_time] if decl.event_time else [])]


def quarantine_table(source_table: str) -> str:
    """Where the rows of a raw source that fail validation go: quarantine.<source>."""
    return f"quarantine.{source_table.partition('.')[2]}"
