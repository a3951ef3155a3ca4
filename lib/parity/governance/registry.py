"""The MLflow model registry: which version to score, and the tags and aliases a version carries.

With `parity.governance.tracking`, parity's one door to MLflow (see `.importlinter`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import mlflow
from mlflow.tracking import MlflowClient

from parity.core.conf import ModelDecl
from parity.model.packaged import load_feature_spec
from parity.model.spec import FeatureSpec, check_transform_code

CHAMPION, CHALLENGER = (
    "champion",
    "challenger",
)  # the aliases: what scoring uses, what training registered last

_REQUEST = re.compile(r"^(latest|[0-9]+|@[A-Za-z_][A-Za-z0-9_-]*)$")


class ModelNotFoundError(LookupError):
    """The registry has no model version matching the request."""


class NoChampionError(ModelNotFoundError):
    """No version of `registered_model` (the declared `model`) is at `@alias` (for `@champion`: none
    was promoted yet)."""

    def __init__(self, registered_model: str, model: str, alias: str) -> None:
        super().__init__(
            f"registered model '{registered_model}' has no @{alias}: promote a version through the gate, "
            "or name another version"
        )
        self.registered_model, self.model, self.alias = registered_model, model, alias


def check_version_request(wanted: str) -> None:
    """Refuse a model version request that is not a number, `@alias` or `latest`.

    Raises:
        ValueError: naming the request and the forms it may take.
    """
    if not _REQUEST.match(wanted):
        raise ValueError(
            f"model version '{wanted}' is not a version number, @alias (e.g. @champion) or latest"
        )


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
                raise ModelNotFoundError(
                    f"registered model '{name}' has no versions; run the train job first"
                )
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


def alias_version(name: str, alias: str) -> str | None:
    """The version an alias of a registered model points at (None when it points nowhere)."""
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def version_run_id(name: str, version: str) -> str | None:
    """The run that produced one version of a registered model (None when it names none)."""
    return MlflowClient().get_model_version(name, version).run_id


def version_tags(name: str, version: str) -> dict[str, str]:
    """The tags of one version of a registered model."""
    return dict(MlflowClient().get_model_version(name, version).tags)


@dataclass(frozen=True)
class ResolvedModel:
    """A registered model version, resolved once at the start of a run: every row it writes carries it."""

    name: str
    uri: str
    version: str
    run_id: str
    spec: FeatureSpec

    def lineage(self, scoring_run_id: str) -> dict[str, str]:
        return {
            "model_name": self.name,
            "model_version": self.version,
            "model_run_id": self.run_id,
            "scoring_run_id": scoring_run_id,
        }


def resolve_model(model: ModelDecl, wanted: str, *, allow_code_mismatch: bool) -> ResolvedModel:
    """Resolve `wanted` (a number, `@alias` or `latest`) to one version, and check its spec
    against the installed transform code.

    Raises:
        ModelNotFoundError: no such version (for `@champion`: none has been promoted yet).
        TransformCodeChangedError: the code behind its features changed, unless allowed.
    """
    try:
        uri, version, run_id = resolve_model_version(model.registered_model, wanted)
    except ModelNotFoundError as exc:
        if wanted == f"@{CHAMPION}":
            raise NoChampionError(model.registered_model, model.name, CHAMPION) from exc
        raise
    spec = load_feature_spec(uri)
    if not spec.feature_sets:
        raise ValueError(f"model {uri} names no feature sets in its spec; retrain it with parity")
    check_transform_code(spec, allow_mismatch=allow_code_mismatch)
    return ResolvedModel(model.registered_model, uri, version, run_id, spec)
