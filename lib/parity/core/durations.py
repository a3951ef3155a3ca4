"""Durations with units (`6h`, `1d`, `7d`, `2w`) and the grains feature tables are built at.

Every time field of a declaration (windows, lookback, max age, history) is written with its
unit, so that a reader never guesses whether `7` means hours or days. Grains are UTC periods
counted from the Unix epoch: an hour row covers [HH:00, HH+1:00), a day row [00:00, 24:00).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

Grain = Literal["hour", "day"]
GRAINS: dict[str, dt.timedelta] = {"hour": dt.timedelta(hours=1), "day": dt.timedelta(days=1)}
UNITS: dict[str, dt.timedelta] = {
    "h": dt.timedelta(hours=1),
    "d": dt.timedelta(days=1),
    "w": dt.timedelta(weeks=1),
}
_DURATION = re.compile(r"^(\d+)([hdw])$")
_EPOCH = dt.datetime(1970, 1, 1)


def parse_duration(text: object, *, field: str | None = None) -> dt.timedelta:
    """The length a duration such as `6h`, `1d` or `2w` names (h hours, d days, w weeks).

    Raises:
        ValueError: `text` is not a whole number followed by one of the units, naming `field`.
    """
    match = _DURATION.match(str(text).strip().lower()) if isinstance(text, str) else None
    if match is None:
        hint = (
            f"; a bare number has no unit: write {text}d for days or {text}h for hours"
            if isinstance(text, int)
            else ""
        )
        raise ValueError(
            f"{field + ': ' if field else ''}{text!r} is not a duration such as 6h, 1d or 2w "
            f"(h hours, d days, w weeks){hint}"
        )
    return int(match.group(1)) * UNITS[match.group(2)]


def duration_label(text: object) -> str:
    """A duration as declared, normalised (`" 6H "` -> `6h`): what a windowed feature's name ends with.

    Raises:
        ValueError: as `parse_duration`.
    """
    parse_duration(text)
    return str(text).strip().lower()


def slots(length: dt.timedelta, grain: Grain, *, field: str = "duration") -> int:
    """How many periods of `grain` a length spans.

    Raises:
        ValueError: the length is not a whole number of periods (a 6h window at day grain).
    """
    step = GRAINS[grain]
    if length % step:
        raise ValueError(
            f"{field}: {length} is not a whole number of {grain}s; at {grain} grain use multiples of {_label(step)}"
        )
    return length // step


def floor_to_grain(moment: dt.datetime, grain: Grain) -> dt.datetime:
    """The start of the period of `grain` that holds `moment` (naive UTC)."""
    step = GRAINS[grain]
    return _EPOCH + (moment - _EPOCH) // step * step


def grain_end(moment: dt.datetime, grain: Grain) -> dt.datetime:
    """The end of the period of `grain` that holds `moment`: where a row of that period is stamped."""
    return floor_to_grain(moment, grain) + GRAINS[grain]


def utc_naive(moment: dt.datetime) -> dt.datetime:
    """`moment` as parity holds times: naive, in UTC (an aware time is converted first)."""
    return moment if moment.tzinfo is None else moment.astimezone(dt.UTC).replace(tzinfo=None)


def _label(step: dt.timedelta) -> str:
    return "1d" if step == GRAINS["day"] else "1h"
