"""core.text: the did-you-mean hint, plurals and ISO times every message shares."""

from __future__ import annotations

import pytest

from core.text import closest, did_you_mean, format_duration, iso_utc, plural, printable


def test_closest_suggests_only_real_and_close_choices():
    assert closest("biuld", ["build", "test"]) == "build"
    assert closest("zzz", ["build", "test"]) is None
    assert closest("", [None, ""]) is None
    assert closest(3, [1, 3, 30]) == "3"


def test_did_you_mean_reads_well_with_or_without_a_match():
    assert did_you_mean("biuld", ["build"]) == "did you mean 'build'?"
    assert did_you_mean("biuld", ["build"], sep="; ") == "; did you mean 'build'?"
    assert did_you_mean("zzz", ["build"], sep="; ") == ""
    assert did_you_mean("zzz", ["build"], otherwise="known: build", sep="; ") == "; known: build"


def test_plural():
    assert [plural(n, "step") for n in (0, 1, 2)] == ["0 steps", "1 step", "2 steps"]
    assert plural(2, "entry", "entries") == "2 entries"


def test_iso_utc():
    assert iso_utc(None) is None
    assert iso_utc(0) == "1970-01-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("seconds", "kwargs", "expected"),
    [
        (None, {}, "—"),
        (None, {"unknown": "-"}, "-"),
        (0.42, {}, "0.4s"),
        (12.34, {}, "12.3s"),
        (12.34, {"tenths_below": 10.0}, "12s"),
        (245, {}, "4m05s"),
        (7380, {}, "2h03m"),
        (-3, {}, "0.0s"),
    ],
)
def test_format_duration(seconds, kwargs, expected):
    assert format_duration(seconds, **kwargs) == expected


def test_terminal_safe_shows_control_characters_and_keeps_newlines_and_tabs() -> None:
    from core.text import terminal_safe

    assert terminal_safe("a\x1b[2Jb\x07\tc\nd\x9b1m\x7f") == "a\\x1b[2Jb\\x07\tc\nd\\x9b1m\\x7f"
    assert terminal_safe("plain ünïcode ✓") == "plain ünïcode ✓"


def test_printable_names_the_type_of_a_value_whose_str_raises():
    class Broken:
        def __repr__(self) -> str:
            raise ValueError("no repr")

    assert printable(Broken()) == "<unprintable Broken>"
    assert printable(3) == "3"
