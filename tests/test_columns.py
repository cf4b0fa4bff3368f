"""Aligned columns for the CLI's tables (orchtui.columns)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.text import Text

from orchtui.columns import Column, column_text


def rendered(text: Text, width: int = 40) -> str:
    console = Console(file=io.StringIO(), force_terminal=True, width=width, color_system="standard")
    console.print(text, soft_wrap=True)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_columns_are_as_wide_as_their_widest_cell_and_two_spaces_apart() -> None:
    text = column_text([Column("step"), Column("status")], [["a", "completed"], ["longer", "failed"]])
    assert text.plain.splitlines() == ["step    status", "a       completed", "longer  failed"]


def test_right_justified_cells_line_up_on_the_right() -> None:
    text = column_text([Column("n", "right"), Column("x")], [["7", "a"], ["123", "b"]])
    assert text.plain.splitlines() == ["  n  x", "  7  a", "123  b"]


def test_lines_have_no_trailing_spaces_when_their_last_cells_are_empty() -> None:
    text = column_text([Column("a"), Column("b"), Column("c")], [["wide cell", "", ""], ["x", "y", ""]])
    assert text.plain.splitlines() == ["a          b  c", "wide cell", "x          y"]


def test_wide_characters_count_as_two_cells() -> None:
    text = column_text([Column("name"), Column("x")], [["世界", "1"], ["ab", "2"]])
    assert text.plain.splitlines() == ["name  x", "世界  1", "ab    2"]


def test_the_last_column_is_cut_to_the_width_with_an_ellipsis() -> None:
    text = column_text([Column("a"), Column("note")], [["x", "a long note that does not fit"]], max_width=12)
    assert text.plain.splitlines()[1] == "x  a long n…"


def test_without_a_width_the_last_column_is_whole() -> None:
    note = "a long note " * 20
    assert column_text([Column("a"), Column("note")], [["x", note.strip()]]).plain.splitlines()[1] == f"x  {note.strip()}"


def test_cell_styles_and_header_bold_reach_the_terminal() -> None:
    out = rendered(column_text([Column("s")], [[Text("failed", style="red")], [Text.assemble(("dim", "dim"), " x")]]))
    assert "\x1b[1ms\x1b[0m" in out and "\x1b[31mfailed\x1b[0m" in out and "\x1b[2mdim\x1b[0m x" in out


def test_markup_in_a_cell_is_shown_as_written() -> None:
    assert "[red]not markup[/]" in rendered(column_text([Column("s")], [["[red]not markup[/]"]]))


def test_no_header_leaves_only_the_rows() -> None:
    assert column_text([Column("a"), Column("b")], [["1", "2"]], show_header=False).plain == "1  2"


def test_a_row_with_the_wrong_number_of_cells_is_refused() -> None:
    with pytest.raises(ValueError, match="a row of 1 cells under 2 columns"):
        column_text([Column("a"), Column("b")], [["1"]])
