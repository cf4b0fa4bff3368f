"""Formatting shared by orchtui's messages and reports: did-you-mean, plurals, times.

Every "unknown X" error in orchtui suggests the closest known name the same way, so a
typo gets the same help whichever module catches it; every status dict writes its
timestamps the same way, so a script parses one format.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from datetime import datetime, timezone

__all__ = ["closest", "did_you_mean", "plural", "iso_utc", "format_duration", "terminal_safe", "printable", "first_control"]

# C0 controls but newline and tab, DEL, and the C1 controls (0x9b starts a sequence too).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_OR_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def closest(word: object, choices: Iterable[object]) -> str | None:
    """Return the choice most like ``word`` (difflib ratio of at least 0.6), or None.

    Choices are compared as strings; None and empty choices are never suggested.
    """
    names = [text for choice in choices if choice is not None and (text := str(choice))]
    found = difflib.get_close_matches(str(word), names, n=1)
    return found[0] if found else None


def did_you_mean(word: object, choices: Iterable[object], *, otherwise: str = "", sep: str = "") -> str:
    """Return ``sep + "did you mean 'x'?"`` for the closest choice.

    Without a close choice, returns ``sep + otherwise``, or "" when ``otherwise`` is
    empty, so ``f"unknown step 'x'{did_you_mean(x, names, sep='; ')}"`` reads well
    either way.
    """
    match = closest(word, choices)
    if match is not None:
        return f"{sep}did you mean '{match}'?"
    return f"{sep}{otherwise}" if otherwise else ""


def plural(count: int, noun: str, many: str | None = None) -> str:
    """Return ``"1 step"``, ``"3 steps"``; ``many`` overrides the plural form."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def iso_utc(timestamp: float | None) -> str | None:
    """Return epoch seconds as an ISO 8601 UTC string (``2024-05-01T12:00:00+00:00``); None stays None."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).isoformat()


def format_duration(seconds: float | None, *, tenths_below: float = 60.0, unknown: str = "—") -> str:
    """Return a short human duration: ``0.4s``, ``12.3s``, ``4m05s``, ``2h03m``.

    Seconds keep one decimal below ``tenths_below`` (the dashboard's narrow columns
    pass 10 to print ``12s``); ``unknown`` stands for None.
    """
    if seconds is None:
        return unknown
    seconds = max(0.0, seconds)
    if seconds < tenths_below:
        return f"{seconds:.1f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def terminal_safe(text: str) -> str:
    """Return ``text`` with its control characters shown as ``\\xNN``, newlines and tabs kept.

    For what a step wrote (its output, its error) shown in orchtui's own tables and
    messages: an escape sequence there would clear the reader's screen, move the cursor
    or retitle the terminal. ``orchtui logs`` prints a log as it is, as ``cat`` would.
    """
    return _CONTROL.sub(lambda found: f"\\x{ord(found.group()):02x}", text)


def first_control(text: str, *, lines_allowed: bool = True) -> str | None:
    """Return the first control character in ``text`` (line breaks and tabs count only
    when not ``lines_allowed``), or None when it has none: what :func:`terminal_safe`
    would escape, for text that must be refused instead."""
    found = (_CONTROL if lines_allowed else _CONTROL_OR_LINE).search(text)
    return found.group() if found is not None else None


def printable(value: object) -> str:
    """Return ``str(value)``, or ``<unprintable TYPE>`` when that raises: the ``default``
    of every ``json.dumps`` of values that steps made, whose ``__str__`` may be broken."""
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"
