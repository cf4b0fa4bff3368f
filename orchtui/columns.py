"""Aligned columns of text for the CLI's tables, fast enough for runs of thousands of steps.

Rich's ``Table`` lays out every cell through its measuring and wrapping machinery, about
350 µs a row: ``orchtui show`` of a 5,000-step run spent 1.8 s drawing its table. The
tables of ``show``, ``runs`` and a run's summary need none of that (one line per row,
only the last column may be long), so :func:`column_text` pads the cells itself and
returns one :class:`~rich.text.Text` that the console prints in one go (~30 ms for 5,000
rows). Cells are plain strings or ``Text`` with styles; nothing is parsed as markup, so
a step's output needs no escaping.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from rich.cells import cell_len
from rich.text import Span, Text

__all__ = ["Column", "column_text"]


@dataclasses.dataclass(slots=True, frozen=True)
class Column:
    """One column: its header and which side its cells line up on."""

    header: str
    justify: Literal["left", "right"] = "left"


def column_text(columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], *,
                max_width: int | None = None, gap: int = 2, show_header: bool = True) -> Text:
    """Return the bold headers (unless not ``show_header``) and ``rows`` as one Text, a
    line per row, columns aligned.

    Each column is as wide as its widest cell, counted in terminal cells (a wide character
    counts two); columns are ``gap`` spaces apart and lines have no trailing spaces. With
    ``max_width`` (a terminal's width) the last column is cut to what remains of it,
    ending in "…"; without it lines are as long as their cells (for pipes and ``grep``).

    Raises:
        ValueError: a row has another number of cells than there are columns.
    """
    header = [Text(column.header, style="bold") for column in columns] if show_header else None
    table: list[Sequence[str | Text]] = [header] if header is not None else []
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a row of {len(row)} cells under {len(columns)} columns")
        table.append(row)
    last = len(columns) - 1
    widths = [max((cell_len(_plain(line[index])) for line in table), default=0) for index in range(last)] + [0]
    room = None if max_width is None else max_width - sum(widths) - gap * last
    right = [column.justify == "right" for column in columns]
    # One string and its style spans, made into one Text at the end: a Text per cell
    # (and Text.append) cost more than the layout itself.
    parts: list[str] = []
    spans: list[Span] = []
    at = 0
    for number, line in enumerate(table):
        if number:
            parts.append("\n")
            at += 1
        used = max((index for index, cell in enumerate(line) if _plain(cell)), default=-1)
        for index in range(used + 1):
            cell = line[index]
            plain = _plain(cell)
            if index == last:
                if room is not None and cell_len(plain) > room:
                    cell = cell.copy() if isinstance(cell, Text) else Text(plain)
                    cell.truncate(max(room, 1), overflow="ellipsis")
                    plain = cell.plain
                pad = ""
            else:
                pad = " " * (widths[index] - cell_len(plain))
            if right[index]:
                parts.append(pad)
                at += len(pad)
                pad = ""
            if isinstance(cell, Text):
                if cell.style:
                    spans.append(Span(at, at + len(plain), cell.style))
                spans.extend(span.move(at) for span in cell.spans)
            parts.append(plain)
            at += len(plain)
            if index < used:
                parts.append(pad + " " * gap)
                at += len(pad) + gap
    return Text("".join(parts), end="", spans=spans)


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else cell
