"""Sweep declarations (conf/sweeps/*.yaml): the learner by name, its search space, objective and budget."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from parity.core.conf.base import StrictModel
from parity.core.conf.learner_names import TASK_METRICS, learner_info
from parity.core.conf.spaces import check_space


class SweepObjective(StrictModel):
    metric: Literal["val_auc", "val_log_loss", "train_auc", "val_rmse", "val_mae", "train_rmse"] = Field(
        description="A metric every learner of the sweep's task reports (TASK_METRICS)."
    )
    direction: Literal["maximize", "minimize"]


class EarlyStop(StrictModel):
    no_improvement_evals: int = Field(
        gt=0, description="Stop when the best objective has not improved for this many finished trials."
    )


class TimeSplit(StrictModel):
    """Validate on the latest labels: every validation label is later than every training label."""

    scheme: Literal["time_split"] = "time_split"
    fraction: float = Field(0.25, gt=0, lt=1, description="The share of distinct label times that validate.")


class SweepDecl(StrictModel):
    """A declared hyperparameter sweep: the learner, its search space, the objective and the budget.

    The learner decides how trials run: single-node learners one trial per Spark task,
    `parallelism` at a time; distributed (Spark ML) learners one trial after another, each a
    distributed Spark job, so they take parallelism 1.
    """

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    description: str = Field(min_length=1)
    learner: str
    space: dict[str, Any] = Field(
        description="Parameter -> constant or {uniform|loguniform|quniform|choice: ...}; see parity.core.conf.spaces."
    )
    objective: SweepObjective
    algorithm: Literal["tpe", "random"] = "tpe"
    max_evals: int = Field(gt=0)
    timeout_seconds: float | None = Field(
        None, gt=0, description="Cancel running trials and stop at this wall time."
    )
    early_stop: EarlyStop | None = None
    parallelism: int = Field(1, gt=0)
    validation: TimeSplit = TimeSplit()
    seed: int = 11

    @field_validator("learner")
    @classmethod
    def _known_learner(cls, value: str) -> str:
        learner_info(value)
        return value

    @model_validator(mode="after")
    def _space_fits_learner(self) -> SweepDecl:
        learner = learner_info(self.learner)
        try:
            parameters = check_space(self.space)
        except ValueError as exc:
            raise ValueError(f"space.{exc}") from None
        unknown = sorted(parameters - learner.hyperparameters)
        if unknown:
            raise ValueError(
                f"space sets {', '.join(unknown)}, which learner {self.learner} does not take; "
                f"it takes {', '.join(sorted(learner.hyperparameters))}"
            )
        if self.objective.metric not in TASK_METRICS[learner.task]:
            raise ValueError(
                f"objective.metric is {self.objective.metric}, which {learner.task} learner {self.learner} "
                f"does not report; it reports {', '.join(TASK_METRICS[learner.task])}"
            )
        if learner.mode == "distributed" and self.parallelism != 1:
            raise ValueError(
                f"parallelism is {self.parallelism}, but learner {self.learner} is distributed: its trials "
                "run one after another, each a Spark job over the whole training set; set parallelism: 1"
            )
        return self

    def mode(self) -> str:
        """How the sweep's trials run: `single_node` or `distributed` (the learner's mode)."""
        return learner_info(self.learner).mode

    def task(self) -> str:
        """What the sweep's learner learns: `binary` or `regression`."""
        return learner_info(self.learner).task
