"""The pipeline jobs' summaries, typed, each with its own `reconcile()` (what `parity report` checks).

A job's JSON summary (its last line of stdout, kept in `audit.runs`) is read into the dataclass
of its job with `summary_of(job, summary, settings)`; the table names conf decides (a model's
training set or predictions) are resolved then, so the summary holds plain values only.
Reconciling is then pure: `row_counts()` says which row counts to read (every table the run
wrote, at the version it wrote, and for a score its prediction slice), the caller reads them
(`parity report` with delta-rs), and `reconcile(rows)` returns the problems, one line each: a
job's counts that do not add up, or a table that does not hold what the summary says it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from parity.core.conf import Settings


@dataclass(frozen=True)
class RowCount:
    """Rows of `table` at `version`; with `score_ts` and `model_version`, only that prediction slice's
    rows (`score_ts` compared to the second, as ISO text)."""

    table: str
    version: int
    score_ts: str | None = None
    model_version: str | None = None


@dataclass(frozen=True)
class JobSummary:
    """What every job's summary holds: its run, the tables it wrote with their versions, its counts.
    A job with nothing of its own to reconcile (train, promote) reconciles to no problems."""

    job: ClassVar[str] = ""
    run_id: str
    outputs: tuple[tuple[str, int], ...]
    counts: Mapping[str, int]

    @classmethod
    def parse(cls, summary: Mapping[str, Any], settings: Settings) -> Self:
        """Read a job's JSON summary; a job's own kind reads its own fields too.

        Raises:
            KeyError: the summary lacks a field its job writes.
        """
        return cls(**cls.common(summary))

    @staticmethod
    def common(summary: Mapping[str, Any]) -> dict[str, Any]:
        """The fields every summary has, as keyword arguments."""
        outputs = tuple((o["table"], o["version"]) for o in summary["outputs"])
        return {"run_id": summary["run_id"], "outputs": outputs, "counts": dict(summary["counts"])}

    def version_of(self, table: str) -> int:
        """The version this run wrote of `table` (the last, if it wrote it twice)."""
        return dict(self.outputs)[table]

    def row_counts(self) -> list[RowCount]:
        """The row counts `reconcile` needs (and the report prints): every table written, at its version."""
        return [RowCount(table, version) for table, version in self.outputs]

    def details(self) -> list[str]:
        """Lines the report prints after the counts."""
        return []

    def reconcile(self, rows: Mapping[RowCount, int]) -> list[str]:
        """The problems, one line each; none when the summary and the tables agree."""
        return []

    def tables_hold(self, rows: Mapping[RowCount, int], expected: Mapping[str, int]) -> list[str]:
        """Each table in `expected` holds that many rows at the version this run wrote."""
        problems = []
        for table, want in expected.items():
            version = self.version_of(table)
            got = rows[RowCount(table, version)]
            if got != want:
                problems.append(
                    f"{self.job}: {table} has {got} rows at version {version}, summary says {want}"
                )
        return problems


@dataclass(frozen=True)
class GenerateDataSummary(JobSummary):
    """generate_data: each table written whole, with its rows counted as `<table>.rows`."""

    job: ClassVar[str] = "generate_data"

    def reconcile(self, rows: Mapping[RowCount, int]) -> list[str]:
        return self.tables_hold(rows, {table: self.counts[f"{table}.rows"] for table, _ in self.outputs})


@dataclass(frozen=True)
class FeatureSetBuilt:
    """One feature set of a build: rows in = out + quarantined; a whole-table write (no range)
    leaves the table holding exactly the rows it wrote (`rows_written`, None for a range)."""

    name: str
    table: str
    rows_in: int
    rows_out: int
    quarantined: int
    rows_written: int | None


@dataclass(frozen=True)
class FeatureBuildSummary(JobSummary):
    """build_features: one `FeatureSetBuilt` per feature set it built."""

    job: ClassVar[str] = "build_features"
    feature_sets: tuple[FeatureSetBuilt, ...]

    @classmethod
    def parse(cls, summary: Mapping[str, Any], settings: Settings) -> Self:
        counts = summary["counts"]
        built = tuple(
            FeatureSetBuilt(
                name=name,
                table=decl["table"],
                rows_in=counts[f"{name}.in"],
                rows_out=counts[f"{name}.out"],
                quarantined=counts[f"{name}.quarantined"],
                rows_written=counts[f"{name}.rows_written"] if decl["range"]["start"] is None else None,
            )
            for name, decl in summary["feature_sets"].items()
        )
        return cls(**cls.common(summary), feature_sets=built)

    def reconcile(self, rows: Mapping[RowCount, int]) -> list[str]:
        for built in self.feature_sets:
            if built.rows_in != built.rows_out + built.quarantined:
                return [f"build_features: {built.name}: {built.rows_in} rows in != out + quarantined"]
        whole = {b.table: b.rows_written for b in self.feature_sets if b.rows_written is not None}
        return self.tables_hold(rows, whole)


@dataclass(frozen=True)
class TrainingSetSummary(JobSummary):
    """build_training_set: labels in = rows out + labels quarantined, and the training set holds the rows out."""

    job: ClassVar[str] = "build_training_set"
    training_set: str

    @classmethod
    def parse(cls, summary: Mapping[str, Any], settings: Settings) -> Self:
        training_set = settings.model(summary["model"]).training_set()
        return cls(**cls.common(summary), training_set=training_set)

    def reconcile(self, rows: Mapping[RowCount, int]) -> list[str]:
        labels_in, rows_out = self.counts["labels.in"], self.counts["rows.out"]
        quarantined = self.counts["labels.quarantined"]
        if rows_out + quarantined != labels_in:
            return [
                f"build_training_set: {labels_in} labels in != {rows_out} rows out + {quarantined} quarantined"
            ]
        return self.tables_hold(rows, {self.training_set: rows_out})


@dataclass(frozen=True)
class ScoreSummary(JobSummary):
    """score: its slice of the predictions table holds the predictions out, and keys in =
    predictions out + keys quarantined."""

    job: ClassVar[str] = "score"
    predictions: str
    score_ts: str
    model_version: str

    @classmethod
    def parse(cls, summary: Mapping[str, Any], settings: Settings) -> Self:
        predictions = settings.model(summary["model"]).predictions()
        return cls(
            **cls.common(summary),
            predictions=predictions,
            score_ts=str(summary["score_ts"]),
            model_version=summary["model_version"],
        )

    def slice(self) -> RowCount:
        version = self.version_of(self.predictions)
        return RowCount(
            self.predictions, version, score_ts=self.score_ts[:19], model_version=self.model_version
        )

    def row_counts(self) -> list[RowCount]:
        return [*super().row_counts(), self.slice()]

    def reconcile(self, rows: Mapping[RowCount, int]) -> list[str]:
        scored, in_slice = self.counts["predictions.out"], rows[self.slice()]
        if in_slice != scored:
            return [f"score: {self.predictions} has {in_slice} rows in its slice, summary says {scored}"]
        keys_in, quarantined = self.counts["keys.in"], self.counts.get("keys.quarantined", 0)
        if keys_in != scored + quarantined:
            return [f"score: {keys_in} keys in != {scored} scored + {quarantined} quarantined"]
        return []


@dataclass(frozen=True)
class StreamSummary(JobSummary):
    """score_stream: requests in = scored + quarantined + already committed (replayed batches)."""

    job: ClassVar[str] = "score_stream"

    def reconcile(self, rows: Mapping[RowCount, int]) -> list[str]:
        counts = self.counts
        accounted = (
            counts["predictions.out"] + counts["requests.quarantined"] + counts["requests.already_committed"]
        )
        if counts["requests.in"] != accounted:
            return [
                f"score_stream: {counts['requests.in']} requests in != {accounted} scored, quarantined "
                "or already committed"
            ]
        return []


@dataclass(frozen=True)
class TrainSummary(JobSummary):
    """train: the best trial's metric, its MLflow run and the version it registered."""

    job: ClassVar[str] = "train"
    best_metric: Mapping[str, float] | None
    mlflow_run_id: str
    model_name: str | None
    model_version: str

    @classmethod
    def parse(cls, summary: Mapping[str, Any], settings: Settings) -> Self:
        return cls(
            **cls.common(summary),
            best_metric=summary.get("best_metric"),
            mlflow_run_id=summary["mlflow_run_id"],
            model_name=summary.get("model_name"),
            model_version=summary["model_version"],
        )

    def details(self) -> list[str]:
        return [
            f"best {json.dumps(self.best_metric)}  mlflow run {self.mlflow_run_id}",
            f"registered {self.model_name} version {self.model_version}",
        ]


@dataclass(frozen=True)
class PromoteSummary(JobSummary):
    """promote: the gate's outcome for one version, with each check it ran."""

    job: ClassVar[str] = "promote"
    model_name: str | None
    version: str
    outcome: str
    previous_champion: str | None
    checks: tuple[Mapping[str, Any], ...]

    @classmethod
    def parse(cls, summary: Mapping[str, Any], settings: Settings) -> Self:
        return cls(
            **cls.common(summary),
            model_name=summary.get("model_name"),
            version=summary["version"],
            outcome=summary["outcome"],
            previous_champion=summary.get("previous_champion"),
            checks=tuple(summary.get("checks", [])),
        )

    def details(self) -> list[str]:
        lines = [
            f"{self.model_name} version {self.version} {self.outcome} (champion before: {self.previous_champion})"
        ]
        for check in self.checks:
            lines.append(
                f"{check['check']:<14} {'passed' if check['passed'] else 'FAILED'}: {check['detail']}"
            )
        return lines


SUMMARIES: dict[str, type[JobSummary]] = {
    kind.job: kind
    for kind in (
        GenerateDataSummary,
        FeatureBuildSummary,
        TrainingSetSummary,
        TrainSummary,
        PromoteSummary,
        ScoreSummary,
        StreamSummary,
    )
}


def summary_of(job: str, summary: Mapping[str, Any], settings: Settings) -> JobSummary:
    """Read one job's JSON summary into the typed summary of its job (a plain `JobSummary` for
    any other job); conf names a model's tables.

    Raises:
        KeyError: the summary lacks a field its job writes.
    """
    return SUMMARIES.get(job, JobSummary).parse(summary, settings)
