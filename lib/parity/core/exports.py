"""Lazy re-exports for a room's `__init__`: names resolve to their module on first use.

A room's package exports what its users call (and what the old flat modules exported)
without importing every module of the room up front: `import parity.governance.lineage`
must not pay for MLflow's import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A module `__getattr__` and `__dir__` that import `exports[name]` (a submodule of
    `package`) when `name` is first asked for.

    Args:
        package: the package's `__name__`.
        exports: exported name -> the submodule (relative to `package`) that defines it, or
            a module's absolute dotted path (for a name a lower room defines).
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook PEP 562 names
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        where = exports[name]
        return getattr(
            importlib.import_module(where if where.startswith("parity.") else f"{package}.{where}"), name
        )

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(exports)

    return __getattr__, __dir__
