"""The key bar at the bottom of the dashboard: the main keys, drawn once.

Textual's ``Footer`` recomposes itself whenever the focused widget changes (the active
bindings change with it), which costs a relayout and a full repaint on every pane
switch. The dashboard's shown keys are app-wide and do not depend on focus, so this
bar renders them once (again only when the keymap changes); ``?`` lists every key.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.widgets import Static

__all__ = ["KeyHints"]


class KeyHints(Static):
    """One line of ``key description`` pairs, with the palette key at the right end."""

    DEFAULT_CSS = """
    KeyHints {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-description-foreground;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._pairs = Text()
        self._palette = Text()

    def show_keys(self, keys: Iterable[tuple[str, str]], palette_key: str) -> None:
        """Display ``(key, description)`` pairs, then ``palette_key`` right-aligned."""
        text = Text(no_wrap=True, overflow="ellipsis")
        for key, description in keys:
            text.append(f" {key} ", "bold dark_orange")
            text.append(f"{description} ")
        self._pairs = text
        self._palette = Text.assemble((f" {palette_key} ", "bold dark_orange"), "Palette ")
        self._render_line()

    def on_resize(self) -> None:
        self._render_line()

    def _render_line(self) -> None:
        pairs = self._pairs
        width = self.size.width or 80
        gap = width - pairs.cell_len - self._palette.cell_len
        line = pairs.copy()
        if gap > 0:
            line.append(" " * gap)
            line.append_text(self._palette)
        self.update(line, layout=False)
