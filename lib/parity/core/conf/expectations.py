"""Quality expectations: the typed column contract and row rules declared per raw source."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from parity.core.conf.base import SparkType, StrictModel


class NotNullExpectation(StrictModel):
    rule: Literal["not_null"]
    column: str


class RangeExpectation(StrictModel):
    rule: Literal["range"]
    column: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self) -> RangeExpectation:
        if self.min is None and self.max is None:
            raise ValueError(f"range expectation on '{self.column}' needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"range expectation on '{self.column}' has min {self.min} above max {self.max}")
        return self


class AllowedValuesExpectation(StrictModel):
    rule: Literal["allowed_values"]
    column: str
    values: list[str | int | float] = Field(min_length=1)


class UniqueExpectation(StrictModel):
    rule: Literal["unique"]
    columns: list[str] = Field(min_length=1)


Expectation = Annotated[
    NotNullExpectation | RangeExpectation | AllowedValuesExpectation | UniqueExpectation,
    Field(discriminator="rule"),
]


class SourceQualityConf(StrictModel):
    """The contract and expectations of one raw source.

    `columns` are the columns the source must have, with their Spark types: a source missing
    one, or holding it with another type, fails the job before any write. Rows that break an
    expectation are quarantined with the rule and a reason; a source older than
    `max_staleness_hours` (by `time_column`) fails the job before any write. `pii` names the
    columns that hold personal data: quarantined rows keep them empty (free text in every other
    string column is redacted), and a feature set should not declare them.
    """

    columns: dict[str, SparkType] = Field(default_factory=dict)
    pii: list[str] = Field(
        default_factory=list, description="Columns holding personal data: emptied in quarantine rows."
    )
    expectations: list[Expectation] = Field(default_factory=list)
    time_column: str | None = None
    max_staleness_hours: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _freshness_needs_a_time_column(self) -> SourceQualityConf:
        if self.max_staleness_hours is not None and self.time_column is None:
            raise ValueError("max_staleness_hours needs time_column")
        return self
