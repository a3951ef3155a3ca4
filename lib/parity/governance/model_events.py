"""`audit.model_events`: what happened to each registered model version, and who did it.

One row per event, appended and never changed (the table is created with
`delta.appendOnly=true`, so Delta refuses DELETE, UPDATE and overwrite):
- `registered`: the train job registered the version; `actor` is who trained it;
- `approved`: `parity approve` recorded an approval, with its reason;
- `promoted` / `refused`: `parity promote` moved `@champion` to the version, or refused to,
  with every check it ran (`checks`: the check, whether it passed, and what it measured);
- `rolled_back`: `parity rollback` moved `@champion` back to the version.

`previous_version` is the champion before a promotion or rollback. The registry's aliases and
tags say where things stand; this table says how they got there, and is what the gate trusts
(a tag can be edited by anyone who can write to the registry).
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import uuid
from dataclasses import dataclass, field

import requests
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from parity.core.catalog import Catalog
from parity.governance.lineage import append_audit

REGISTERED, APPROVED, PROMOTED, REFUSED, ROLLED_BACK = (
    "registered",
    "approved",
    "promoted",
    "refused",
    "rolled_back",
)
_CHECK = T.StructType(
    [
        T.StructField("check", T.StringType()),
        T.StructField("passed", T.BooleanType()),
        T.StructField("detail", T.StringType()),
    ]
)
MODEL_EVENTS = T.StructType(
    [
        T.StructField("event_id", T.StringType(), False),
        T.StructField("at", T.TimestampType(), False),
        T.StructField("event", T.StringType(), False),
        T.StructField("model", T.StringType(), False),
        T.StructField("registered_model", T.StringType(), False),
        T.StructField("version", T.StringType(), False),
        T.StructField("actor", T.StringType(), False),
        T.StructField("reason", T.StringType(), True),
        T.StructField("previous_version", T.StringType(), True),
        T.StructField("checks", T.ArrayType(_CHECK), True),
        T.StructField("env", T.StringType(), False),
        T.StructField("run_id", T.StringType(), False),
    ]
)


class IdentityError(RuntimeError):
    """The tracking server refused the credentials it was given."""


@dataclass(frozen=True)
class CheckResult:
    """One check of the promotion gate: its name, whether it passed, and what it measured."""

    check: str
    passed: bool
    detail: str


@dataclass
class ModelEvent:
    """One row of `audit.model_events`."""

    event: str
    model: str
    registered_model: str
    version: str
    actor: str
    env: str
    run_id: str
    reason: str | None = None
    previous_version: str | None = None
    checks: list[CheckResult] = field(default_factory=list)
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def as_row(self) -> tuple[object, ...]:
        checks = [(c.check, c.passed, c.detail) for c in self.checks]
        return (
            self.event_id,
            self.at,
            self.event,
            self.model,
            self.registered_model,
            self.version,
            self.actor,
            self.reason,
            self.previous_version,
            checks,
            self.env,
            self.run_id,
        )


def current_identity(tracking_uri: str, *, authenticated: bool = False) -> str:
    """Who is acting: the user the tracking server authenticated, where it authenticates users,
    otherwise (unless `authenticated` is required) the OS user, as the OS reports it.

    With an HTTP tracking URI and `MLFLOW_TRACKING_USERNAME` set, the server is asked who that
    is (MLflow's basic-auth API): it answers only for a user whose password it accepted. A
    server without authentication has no such API, and the OS user acts.

    Raises:
        IdentityError: the server refused the credentials, or `authenticated` is required and
            no tracking server authenticated anyone.
    """
    username = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if username and tracking_uri.startswith(("http://", "https://")):
        answer = requests.get(
            f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/users/get",
            params={"username": username},
            auth=(username, os.environ.get("MLFLOW_TRACKING_PASSWORD", "")),
            timeout=30,
        )
        if answer.status_code in (401, 403):
            raise IdentityError(
                f"the tracking server at {tracking_uri} refused the credentials of {username} "
                f"(HTTP {answer.status_code})"
            )
        if answer.ok:
            return str(answer.json()["user"]["username"])
    if authenticated:
        raise IdentityError(
            "this environment requires an identity the tracking server authenticates "
            f"(governance.require_authenticated_identity), and {tracking_uri} authenticated none: "
            "use a server with authentication and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        )
    return getpass.getuser()


def same_identity(one: str | None, other: str | None) -> bool:
    """Whether two identities name the same user (user names compare without case)."""
    return one is not None and other is not None and one.casefold() == other.casefold()


def append_events(catalog: Catalog, events: list[ModelEvent], table: str) -> int:
    """Append events to the model-events table (created append-only)."""
    return append_audit(catalog, events_frame(catalog.spark, events), table)


def read_events(catalog: Catalog, table: str, registered_model: str) -> list[ModelEvent]:
    """Every event of one registered model, oldest first (none when the table does not exist yet)."""
    if not catalog.exists(table):
        return []
    rows = (
        catalog.read(table)
        .filter(F.col("registered_model") == registered_model)
        .orderBy("at", "event_id")
        .collect()
    )
    return [
        ModelEvent(
            event=r["event"],
            model=r["model"],
            registered_model=r["registered_model"],
            version=r["version"],
            actor=r["actor"],
            env=r["env"],
            run_id=r["run_id"],
            reason=r["reason"],
            previous_version=r["previous_version"],
            checks=[CheckResult(c["check"], c["passed"], c["detail"]) for c in r["checks"] or []],
            at=r["at"],
            event_id=r["event_id"],
        )
        for r in rows
    ]


def champions(events: list[ModelEvent]) -> list[str]:
    """The champions in the order they were made, as the events tell it, the current one last:
    each promotion adds its version, each rollback removes the champion it replaced."""
    stack: list[str] = []
    for event in events:
        if event.event == PROMOTED:
            if not stack and event.previous_version:  # a champion made before promotions were recorded
                stack.append(event.previous_version)
            stack.append(event.version)
        elif event.event == ROLLED_BACK and stack:
            stack.pop()
            if not stack or stack[-1] != event.version:  # a rollback to a version the stack lost track of
                stack.append(event.version)
    return stack


def trainer_of(events: list[ModelEvent], version: str) -> str | None:
    """Who trained a version (its `registered` event's actor), if recorded."""
    return next((e.actor for e in events if e.event == REGISTERED and e.version == version), None)


def events_frame(spark: SparkSession, events: list[ModelEvent]) -> DataFrame:
    """Events as rows of `MODEL_EVENTS`."""
    return spark.createDataFrame([event.as_row() for event in events], MODEL_EVENTS)
