"""Hyperopt search spaces declared in conf, and the parameters they yield.

A space is a mapping from a parameter name to either a constant or one distribution:

    learning_rate: {loguniform: [0.02, 0.3]}     # low, high (natural units; sampled on a log scale)
    max_leaf_nodes: {quniform: [8, 64, 1]}        # low, high, step
    subsample: {uniform: [0.5, 1.0]}              # low, high
    loss: {choice: [log_loss, exponential]}       # one of the listed values
    penalty:                                      # nesting: a choice between sub-spaces
      choice:
        - {penalty: l2, C: {loguniform: [0.001, 10]}}
        - {penalty: l1, C: {loguniform: [0.01, 10]}}

A choice between mappings nests: the chosen mapping's parameters join the trial's own
(`flatten`), so a learner receives flat keyword parameters. Every distribution is labelled
by its path (`penalty/1/C`), which hyperopt needs to be unique.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hyperopt import hp

DISTRIBUTIONS = ("uniform", "loguniform", "quniform", "choice")


def build_space(declared: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """The hyperopt expression for a declared space.

    Raises:
        ValueError: naming the parameter whose declaration is malformed.
    """
    if not isinstance(declared, Mapping) or not declared:
        raise ValueError(f"{path or 'space'}: a search space is a non-empty mapping of parameter names")
    return {str(name): _expression(value, f"{path}{name}") for name, value in declared.items()}


def parameter_names(declared: Mapping[str, Any]) -> set[str]:
    """Every parameter a declared space can yield, nested choices included."""
    names: set[str] = set()
    for name, value in declared.items():
        if isinstance(value, Mapping) and "choice" in value and any(isinstance(o, Mapping) for o in value["choice"]):
            for option in value["choice"]:
                names |= parameter_names(option) if isinstance(option, Mapping) else {str(name)}
        else:
            names.add(str(name))
    return names


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
    if not isinstance(value, Mapping):
        return value  # a constant
    kinds = [k for k in value if k in DISTRIBUTIONS]
    if len(value) != 1 or len(kinds) != 1:
        raise ValueError(f"{label}: give exactly one of {', '.join(DISTRIBUTIONS)} (got {', '.join(map(str, value)) or 'nothing'})")
    kind, args = kinds[0], value[kinds[0]]
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ValueError(f"{label}: choice takes a non-empty list of options")
        options = [build_space(o, f"{label}/{i}/") if isinstance(o, Mapping) else o for i, o in enumerate(args)]
        return hp.choice(label, options)
    numbers = args if isinstance(args, list) else []
    expected = 3 if kind == "quniform" else 2
    if len(numbers) != expected or not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers):
        shape = "[low, high, step]" if kind == "quniform" else "[low, high]"
        raise ValueError(f"{label}: {kind} takes {shape} as numbers, got {args!r}")
    low, high = float(numbers[0]), float(numbers[1])
    if not low < high:
        raise ValueError(f"{label}: {kind} needs low < high, got [{low}, {high}]")
    if kind == "uniform":
        return hp.uniform(label, low, high)
    if kind == "loguniform":
        if low <= 0:
            raise ValueError(f"{label}: loguniform needs low > 0, got {low}")
        return hp.loguniform(label, math.log(low), math.log(high))
    step = float(numbers[2])
    if step <= 0:
        raise ValueError(f"{label}: quniform needs a step > 0, got {step}")
    return hp.quniform(label, low, high, step)
