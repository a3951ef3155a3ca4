"""Search spaces as declared in conf: their shape, checked without hyperopt.

A space is a mapping from a parameter name to either a constant or one distribution:

    learning_rate: {loguniform: [0.02, 0.3]}     # low, high (natural units; sampled on a log scale)
    max_leaf_nodes: {quniform: [8, 64, 1]}        # low, high, step
    subsample: {uniform: [0.5, 1.0]}              # low, high
    loss: {choice: [log_loss, exponential]}       # one of the listed values
    penalty:                                      # nesting: a choice between sub-spaces
      choice:
        - {penalty: l2, C: {loguniform: [0.001, 10]}}
        - {penalty: l1, C: {loguniform: [0.01, 10]}}

A choice between mappings nests: the chosen mapping's parameters join the trial's own, so a
learner receives flat keyword parameters. Every distribution is labelled by its path
(`penalty/1/C`). `parity.training.search_space` turns a checked space into hyperopt's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DISTRIBUTIONS = ("uniform", "loguniform", "quniform", "choice")


def check_space(declared: Any, path: str = "") -> set[str]:
    """Check a declared space's shape and return every parameter it can yield.

    Raises:
        ValueError: naming the parameter whose declaration is malformed.
    """
    if not isinstance(declared, Mapping) or not declared:
        raise ValueError(f"{path or 'space'}: a search space is a non-empty mapping of parameter names")
    names: set[str] = set()
    for name, value in declared.items():
        names |= check_distribution(value, f"{path}{name}", str(name))
    return names


def check_distribution(value: Any, label: str, name: str) -> set[str]:
    """Check one parameter's declaration (a constant or one distribution) and return the
    parameters it yields: itself, or those of the sub-spaces a choice nests.

    Raises:
        ValueError: naming `label`, the parameter's path.
    """
    if not isinstance(value, Mapping):
        return {name}  # a constant
    kinds = [k for k in value if k in DISTRIBUTIONS]
    if len(value) != 1 or len(kinds) != 1:
        raise ValueError(
            f"{label}: give exactly one of {', '.join(DISTRIBUTIONS)} (got {', '.join(map(str, value)) or 'nothing'})"
        )
    kind, args = kinds[0], value[kinds[0]]
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ValueError(f"{label}: choice takes a non-empty list of options")
        names: set[str] = set()
        for i, option in enumerate(args):
            names |= check_space(option, f"{label}/{i}/") if isinstance(option, Mapping) else {name}
        return names
    numbers = args if isinstance(args, list) else []
    expected = 3 if kind == "quniform" else 2
    if len(numbers) != expected or not all(
        isinstance(n, int | float) and not isinstance(n, bool) for n in numbers
    ):
        shape = "[low, high, step]" if kind == "quniform" else "[low, high]"
        raise ValueError(f"{label}: {kind} takes {shape} as numbers, got {args!r}")
    low, high = float(numbers[0]), float(numbers[1])
    if not low < high:
        raise ValueError(f"{label}: {kind} needs low < high, got [{low}, {high}]")
    if kind == "loguniform" and low <= 0:
        raise ValueError(f"{label}: loguniform needs low > 0, got {low}")
    if kind == "quniform" and float(numbers[2]) <= 0:
        raise ValueError(f"{label}: quniform needs a step > 0, got {float(numbers[2])}")
    return {name}


def parameter_names(declared: Mapping[str, Any]) -> set[str]:
    """Every parameter a declared space can yield, nested choices included.

    Raises:
        ValueError: the space is malformed.
    """
    return check_space(declared)
