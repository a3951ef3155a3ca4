"""What a transform carries beside its code: how much source history it reads
(`needs_history`, read back by `history`) and a check of its parameters (`checks_params`) that
a declaration runs when it loads. Your own transforms use the same marks."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pyspark.sql import DataFrame

_F = TypeVar("_F", bound=Callable[..., DataFrame])


def needs_history(length: Callable[[Mapping[str, Any]], int | dt.timedelta]) -> Callable[[_F], _F]:
    """Mark a transform as reading `length(params)` of source history before each row's
    period: a timedelta, or a whole number of days."""

    def mark(fn: _F) -> _F:
        fn.reads_history = length  # type: ignore[attr-defined]
        return fn

    return mark


def checks_params(check: Callable[[Mapping[str, Any]], None]) -> Callable[[_F], _F]:
    """Give a transform a check of its parameters (raising ValueError) that a declaration runs on load."""

    def mark(fn: _F) -> _F:
        fn.check_params = check  # type: ignore[attr-defined]
        return fn

    return mark


def history(fn: Callable[..., DataFrame], params: Mapping[str, Any]) -> dt.timedelta:
    """The source history `fn` needs with `params`: zero for row-local transforms."""
    length = getattr(fn, "reads_history", None)
    if length is None:
        return dt.timedelta(0)
    needed = length(params)
    return needed if isinstance(needed, dt.timedelta) else dt.timedelta(days=int(needed))


def history_days(fn: Callable[..., DataFrame], params: Mapping[str, Any]) -> int:
    """`history` in whole days, rounded up."""
    return math.ceil(history(fn, params) / dt.timedelta(days=1))
