"""The MLflow model registry: which version to score, and the tags and aliases a version carries."""

from __future__ import annotations

import re

import mlflow
from mlflow.tracking import MlflowClient

_REQUEST = re.compile(r"^(latest|[0-9]+|@[A-Za-z_][A-Za-z0-9_-]*)$")


class ModelNotFoundError(LookupError):
    """The registry has no model version matching the request."""


def check_version_request(wanted: str) -> None:
    """Refuse a model version request that is not a number, `@alias` or `latest`.

    Raises:
        ValueError: naming the request and the forms it may take.
    """
    if not _REQUEST.match(wanted):
        raise ValueError(f"model version '{wanted}' is not a version number, @alias (e.g. @champion) or latest")


def resolve_model_version(name: str, wanted: str) -> tuple[str, str, str]:
    """Resolve `wanted` ('latest', a number or '@alias'; conf's `scoring.model_version`) of the registered model `name`.

    Returns:
        (model URI pinned to a version, version, the run that produced it).

    Raises:
        ModelNotFoundError: no such model or version.
    """
    client = MlflowClient()
    try:
        if wanted == "latest":
            versions = client.search_model_versions(f"name = '{name}'")
            if not versions:
                raise ModelNotFoundError(f"registered model '{name}' has no versions; run the train job first")
            found = max(versions, key=lambda v: int(v.version))
        elif wanted.startswith("@"):
            found = client.get_model_version_by_alias(name, wanted[1:])
        else:
            found = client.get_model_version(name, wanted)
    except mlflow.exceptions.MlflowException as exc:
        raise ModelNotFoundError(f"registered model '{name}' version {wanted}: {exc.message}") from exc
    return f"models:/{name}/{found.version}", str(found.version), str(found.run_id)


def tag_model_version(name: str, version: str, tags: dict[str, str]) -> None:
    """Set each tag on one version of a registered model."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def set_alias(name: str, alias: str, version: str) -> None:
    """Point a registered model's alias (e.g. `challenger`) at a version."""
    MlflowClient().set_registered_model_alias(name, alias, version)
