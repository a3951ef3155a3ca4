"""Hyperopt search spaces built from the spaces declared in conf, and the parameters they yield.

The declared shape (constants, uniform, loguniform, quniform, choice, nested choices) and its
checks live in `parity.core.conf.spaces`; this room turns a checked space into hyperopt's
expression, labelling every distribution by its path (`penalty/1/C`), which hyperopt needs
to be unique.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hyperopt import hp

from parity.core.conf.spaces import DISTRIBUTIONS, check_space, parameter_names

__all__ = ["DISTRIBUTIONS", "build_space", "flatten", "parameter_names"]


def build_space(declared: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """The hyperopt expression for a declared space.

    Raises:
        ValueError: naming the parameter whose declaration is malformed.
    """
    check_space(declared, path)
    return {str(name): _expression(value, f"{path}{name}") for name, value in declared.items()}


def flatten(params: Mapping[str, Any]) -> dict[str, Any]:
    """Trial parameters as flat keywords: a nested choice's parameters join their parent's."""
    flat: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value))
        else:
            flat[name] = value
    return flat


def _expression(value: Any, label: str) -> Any:
    """Hyperopt's expression for one checked parameter declaration."""
    if not isinstance(value, Mapping):
        return value  # a constant
    kind, args = next(iter(value.items()))
    if kind == "choice":
        return hp.choice(
            label,
            [build_space(o, f"{label}/{i}/") if isinstance(o, Mapping) else o for i, o in enumerate(args)],
        )
    low, high = float(args[0]), float(args[1])
    if kind == "uniform":
        return hp.uniform(label, low, high)
    if kind == "loguniform":
        return hp.loguniform(label, math.log(low), math.log(high))
    return hp.quniform(label, low, high, float(args[2]))
