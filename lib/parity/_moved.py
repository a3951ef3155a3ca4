"""Where the flat modules of parity 0.1 went: each old import path stays valid as an alias.

Users' declarations name transforms by dotted path (`parity.transforms.add_window_aggregates`)
and registered models carry feature specs with those paths, so an old path must keep
resolving to the very same module (not a copy): `parity.transforms is
parity.features.transforms`. `parity/__init__.py` installs the finder below; the old modules
`features`, `training`, `model`, `scoring` and `governance` are rooms now, and their packages
re-export what the old modules held.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

MOVED = {
    "parity.conf": "parity.core.conf",
    "parity.session": "parity.core.session",
    "parity.tables": "parity.core.catalog",
    "parity.schema": "parity.demo.columns",
    "parity.transforms": "parity.features.transforms",
    "parity.pii": "parity.features.pii",
    "parity.quality": "parity.features.quality",
    "parity.asof": "parity.features.asof",
    "parity.learners": "parity.training.learners",
    "parity.search_space": "parity.training.search_space",
    "parity.sweep": "parity.training.sweep",
    "parity.lineage": "parity.governance.lineage",
    "parity.jobkit": "parity.app.jobkit",
    "parity.cli": "parity.app.cli",
    "parity.datagen": "parity.demo.sample_data",
}


_REAL_SPECS: dict[str, importlib.machinery.ModuleSpec | None] = {}


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module that now lives at its new path."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        _REAL_SPECS[module.__name__] = module.__spec__  # the import system stamps the alias's spec on it
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = _REAL_SPECS[module.__name__]  # put the module's own spec back


def install() -> None:
    """Make the old paths importable (once per process)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
