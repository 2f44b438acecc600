"""Times typed by a person: ``754``, ``754.5``, ``12:34`` or ``1:02:03`` seconds.

One parser for every time a person gives the API or a page's form (restriction spans,
quote spans), so the pages and the API accept the same spellings and refuse the same
ones with the same message.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

#: What the 422 says is accepted; the pages' placeholders say the same.
ACCEPTED = "seconds (754 or 754.5), m:ss (12:34) or h:mm:ss (1:02:03)"

#: Longer than any time a person types; the API's schema says so too.
MAX_LENGTH = 32
_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d+)?)")


class BadClock(ValueError):
    """Not a time this parser understands; the message names the accepted formats."""


def parse_clock(value: str | float | int) -> float:
    """Seconds from a number or a clock string; raises :class:`BadClock` with the fix."""
    if isinstance(value, bool):
        raise BadClock(f"a time must be {ACCEPTED}, not {value!r}")
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond any float
            raise BadClock(f"a time must be finite: {ACCEPTED}") from None
    else:
        text = value.strip()
        if len(text) > MAX_LENGTH:
            raise BadClock(f"a time is at most {MAX_LENGTH} characters: {ACCEPTED}")
        match = _CLOCK.fullmatch(text)
        if match:
            hours, minutes, secs = match.groups()
            if float(secs) >= 60 or (hours is not None and int(minutes) >= 60):
                raise BadClock(f"{text!r} has more than 59 in its minutes or seconds; "
                               f"write a time as {ACCEPTED}")
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
        else:
            try:
                seconds = float(text)
            except (OverflowError, ValueError):
                raise BadClock(f"{text!r} is not a time; write it as {ACCEPTED}") from None
    if not math.isfinite(seconds):
        raise BadClock(f"a time must be finite: {ACCEPTED}")
    return seconds


def _validate(value: Any) -> Any:
    # Anything else (None, a list) goes on to pydantic, whose own message names the type.
    if isinstance(value, (str, int, float)):
        return parse_clock(value)
    return value


_SCHEMA: list[dict[str, Any]] = [
    {"type": "number", "minimum": 0},
    {"type": "string", "maxLength": MAX_LENGTH, "examples": ["12:34", "1:02:03", "754.5"]},
]
_DESCRIPTION = f"A time in the recording: {ACCEPTED}."

#: A time field of a request body: a number of seconds or a clock string, always stored
#: and answered as seconds. ``Field(ge=...)`` constraints still apply to the seconds.
ClockSeconds = Annotated[float, BeforeValidator(_validate), WithJsonSchema(
    {"anyOf": _SCHEMA, "description": _DESCRIPTION})]
#: The same, optional: the validator runs once, before the union, so a bad string gets
#: one message rather than one per branch of ``float | None``.
OptionalClockSeconds = Annotated[float | None, BeforeValidator(_validate), WithJsonSchema(
    {"anyOf": [*_SCHEMA, {"type": "null"}], "description": _DESCRIPTION})]
