"""Code and conf hashing, in one place: what a model, a feature table and a run record.

- `declaration_digest`: a declaration (as JSON) plus the source code of the functions it
  names, e.g. a feature set and its transforms. A model's feature spec records it per set,
  and a feature table's build state records one over what decides its rows.
- `module_digest`, `package_digest`: the source code of whole modules, or of every module of a
  package (the library code behind every feature, recorded with every run in `audit.runs`).
- `json_digest`: a stable digest of plain data (the effective conf).
- `bytes_digest`: a digest of bytes (a serialized model, which names it in a worker's cache).

Every digest is the first 16 hex digits of a SHA-256.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import pkgutil
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

DIGITS = 16


def json_digest(data: Any) -> str:
    """A digest of plain data, independent of key order."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:DIGITS]


def bytes_digest(data: bytes) -> str:
    """A digest of raw bytes."""
    return hashlib.sha256(data).hexdigest()[:DIGITS]


def declaration_digest(data: dict[str, Any], functions: Iterable[Callable[..., Any]]) -> str:
    """A digest of a declaration and the source code of every function it names, in order."""
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
    for function in functions:
        digest.update(inspect.getsource(function).encode())
    return digest.hexdigest()[:DIGITS]


def module_digest(modules: Iterable[ModuleType]) -> str:
    """A digest of the source code of `modules`, in order."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(inspect.getsource(module).encode())
    return digest.hexdigest()[:DIGITS]


def package_digest(package: str) -> str:
    """A digest of the source code of a package and every module in it, in name order."""
    root = importlib.import_module(package)
    names = sorted(m.name for m in pkgutil.walk_packages(root.__path__, f"{package}."))
    return module_digest([root, *(importlib.import_module(name) for name in names)])
