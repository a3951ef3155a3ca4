"""Environment settings: where tables and runs live, how Spark starts, table names, sample data."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, field_validator, model_validator

from parity.core.conf.base import StrictModel, check_table_name


class StorageConf(StrictModel):
    root: str = Field(description="Folder or URI under which every Delta table lives.")


class MlflowConf(StrictModel):
    tracking_uri: str = Field(
        description="sqlite:///file (the embedded default) or http(s):// an `mlflow server`."
    )
    artifact_root: str | None = Field(
        None,
        description=(
            "Where a new experiment stores run artifacts; "
            "unset: the tracking server's own (mlflow server --serve-artifacts)."
        ),
    )

    @model_validator(mode="after")
    def _artifacts_somewhere(self) -> MlflowConf:
        if self.artifact_root is None and not self.tracking_uri.startswith(("http://", "https://")):
            raise ValueError(
                "mlflow.artifact_root is required unless mlflow.tracking_uri is an mlflow server (http:// or https://)"
            )
        return self

    experiment: str = "parity"


class SparkConf(StrictModel):
    master: str = "local[*]"
    app_name: str = "parity"
    jars_dir: str = Field(".jars", description="Cached Delta jars (see scripts/fetch_jars.py).")
    conf: dict[str, str] = Field(default_factory=dict)
    job_java_options: list[str] = Field(
        default_factory=list,
        description="JVM options for the driver of a job that spark-submit.sh starts (not for in-process sessions: "
        "notebooks, tests); e.g. -XX:TieredStopAtLevel=1, which starts small jobs faster and runs large ones slower.",
    )

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
        return value


class TablesConf(StrictModel):
    """Logical names of the tables each part reads and writes."""

    raw_customers: str = "raw.customers"
    raw_events: str = "raw.events"
    raw_labels: str = "raw.labels"
    raw_customer_channels: str = "raw.customer_channels"
    raw_channel_spend: str = "raw.channel_spend"
    audit_runs: str = "audit.runs"
    audit_model_events: str = "audit.model_events"

    @field_validator("*")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_table_name(value)


class DataConf(StrictModel):
    """Scale and shape of the generated sample data (jobs/generate_data.py)."""

    seed: int = 7
    customers: int = Field(2000, gt=0)
    days: int = Field(180, ge=60)
    start: dt.date = dt.date(2026, 1, 1)
    label_horizon_days: int = Field(30, gt=0)
    label_every_days: int = Field(14, gt=0)
    first_label_day: int = Field(45, ge=1)
    bad_row_rate: float = Field(0.002, ge=0, lt=1)
