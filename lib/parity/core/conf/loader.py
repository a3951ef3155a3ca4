"""Loading conf: `base.yaml`, overlaid by `<env>.yaml`, the declarations, then `--set k=v`.

The conf folder is always passed in by the caller (a job, a notebook, a test); the library
never guesses where it lives. Every model forbids unknown keys, so a typo fails on load with
the dotted name of the offending key. Relative paths in the conf are resolved against the
project root, the folder that holds the conf folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ValidationError

from parity.core.conf.base import ConfError
from parity.core.conf.models import MODELS_DIR
from parity.core.conf.settings import Settings

DEFAULT_ENV = "dev"
FEATURES_DIR = "features"
SWEEPS_DIR = "sweeps"


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfError(f"{path.name} is not valid YAML: {exc}".replace("\n", " ")) from exc
    if not isinstance(loaded, dict):
        raise ConfError(f"{path.name} must hold a mapping at its top level")
    return loaded


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse one `dotted.key=value`; the value is read as YAML (so 3 is an int, [7, 30] a list)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfError(f"--set expects dotted.key=value, got '{item}'")
    # spark.conf keys contain dots themselves: everything after `spark.conf.` is one key.
    parts = key.strip().split(".")
    if parts[:2] == ["spark", "conf"] and len(parts) > 2:
        parts = ["spark", "conf", ".".join(parts[2:])]
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return parts, value


def _apply_override(tree: dict[str, Any], parts: list[str], value: Any) -> None:
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfError(f"--set {'.'.join(parts)}: '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        field = (
            current.model_fields.get(part)
            if isinstance(current, type) and issubclass(current, BaseModel)
            else None
        )
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return []
        current = field.annotation
    return (
        sorted(current.model_fields) if isinstance(current, type) and issubclass(current, BaseModel) else []
    )


def _describe(exc: ValidationError, sources: str) -> str:
    messages = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        key = ".".join(str(p) for p in loc)
        origin = f"{MODELS_DIR}/{loc[1]}.yaml" if len(loc) > 1 and loc[0] == "models" else sources
        if error["type"] == "extra_forbidden":
            known = _known_keys(Settings, loc)
            hint = f"; known keys here: {', '.join(known)}" if known else ""
            messages.append(f"unknown conf key '{key}' (from {origin}){hint}")
        elif error["type"] == "missing":
            messages.append(
                f"conf key '{key}' is required (from {origin}); set it in a conf file or with --set {key}=..."
            )
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
            shown = error.get("input")
            got = f" (got {shown!r})" if not isinstance(shown, dict) else ""
            place = f" (in {origin})" if origin != sources else ""
            messages.append(f"conf key '{key}'{place}: {text}{got}" if key else f"conf: {text}")
    return "; ".join(messages)


def _resolve_paths(tree: dict[str, Any], root: Path) -> None:
    def local(path: str) -> str:
        if len(urlparse(path).scheme) > 1:  # file:/x, s3://b/x, abfss://...; not a Windows drive
            return path
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else (root / p).resolve())

    if isinstance(tree.get("storage"), dict) and isinstance(tree["storage"].get("root"), str):
        tree["storage"]["root"] = local(tree["storage"]["root"])
    mlflow = tree.get("mlflow")
    if isinstance(mlflow, dict):
        if isinstance(mlflow.get("artifact_root"), str):
            mlflow["artifact_root"] = local(mlflow["artifact_root"])
        uri = mlflow.get("tracking_uri")
        if isinstance(uri, str) and uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            mlflow["tracking_uri"] = "sqlite:///" + local(uri[len("sqlite:///") :])
    spark = tree.get("spark")
    if isinstance(spark, dict) and isinstance(spark.get("jars_dir"), str):
        spark["jars_dir"] = local(spark["jars_dir"])


def _read_declarations(folder: Path, kind: str, *, file_is_name: bool = False) -> dict[str, Any]:
    """Every declaration in a conf subfolder (features/, sweeps/, models/), by name: one per
    file (named `<name>.yaml` where `file_is_name`)."""
    found: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        declaration = _read_yaml(path)
        name = declaration.get("name")
        if not isinstance(name, str):
            raise ConfError(f"{folder.name}/{path.name} must give the {kind}'s name")
        if file_is_name and path.stem != name:
            raise ConfError(f"{folder.name}/{path.name} declares {kind} '{name}'; name the file {name}.yaml")
        if name in found:
            raise ConfError(
                f"{kind} '{name}' is declared twice: {folder.name}/{origin[name]} and {folder.name}/{path.name}"
            )
        found[name], origin[name] = declaration, path.name
    return found


def load_settings(
    conf_dir: str | Path, env: str | None = None, overrides: list[str] | None = None
) -> Settings:
    """Load `base.yaml`, overlay `<env>.yaml` and the `--set` overrides, then validate.

    Args:
        conf_dir: the folder holding base.yaml and one overlay per environment.
        env: the overlay to apply; `dev` when not given.
        overrides: `dotted.key=value` strings, applied last.

    Raises:
        ConfError: a file is missing or malformed, or a key is unknown or invalid.
    """
    conf_path = Path(conf_dir).resolve()
    env = env or DEFAULT_ENV
    base_file, env_file = conf_path / "base.yaml", conf_path / f"{env}.yaml"
    if not base_file.is_file():
        raise ConfError(f"no base.yaml in conf folder {conf_path}")
    if not env_file.is_file():
        known = sorted(p.stem for p in conf_path.glob("*.yaml") if p.stem != "base")
        raise ConfError(f"unknown env '{env}': no {env}.yaml in {conf_path} (known: {', '.join(known)})")
    tree = _deep_merge(_read_yaml(base_file), _read_yaml(env_file))
    tree["feature_sets"] = _deep_merge(
        _read_declarations(conf_path / FEATURES_DIR, "feature set"), tree.get("feature_sets") or {}
    )
    tree["sweeps"] = _deep_merge(
        _read_declarations(conf_path / SWEEPS_DIR, "sweep"), tree.get("sweeps") or {}
    )
    tree["models"] = _deep_merge(
        _read_declarations(conf_path / MODELS_DIR, "model", file_is_name=True), tree.get("models") or {}
    )
    for item in overrides or []:
        parts, value = parse_override(item)
        _apply_override(tree, parts, value)
    for reserved in ("env", "project_root"):
        if reserved in tree:
            raise ConfError(f"conf key '{reserved}' is set by the loader and cannot be given in conf")
    root = conf_path.parent
    _resolve_paths(tree, root)
    tree["env"], tree["project_root"] = env, str(root)
    sources = f"base.yaml + {env}.yaml + features/ + sweeps/ + models/" + (" + --set" if overrides else "")
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        raise ConfError(_describe(exc, sources)) from None
