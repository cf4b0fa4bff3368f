"""The ``?`` screen: every key, what it does, and the binding id to remap it."""

from __future__ import annotations

from collections.abc import Iterable

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.keys import format_key
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HelpScreen", "keys_table"]


def keys_table(bindings: Iterable[Binding]) -> Table:
    """Return a table of ``key | action | binding id`` for the bindings that have an id."""
    table = Table(box=None, header_style="bold", expand=True, pad_edge=False)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("does")
    table.add_column("binding id", style="dim", no_wrap=True)
    for binding in bindings:
        if binding.id is None:
            continue
        # "/" and "?", as the key bar shows them, not Textual's names ("slash", "question_mark").
        keys = binding.key_display or ", ".join(format_key(key.strip()) for key in binding.key.split(","))
        table.add_row(keys, binding.description, binding.id)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists the dashboard's keys; any of Escape, ``q`` or ``?`` closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "close", "Close", id="help.close")]

    def __init__(self, bindings: Iterable[Binding], remap_hint: str) -> None:
        super().__init__()
        self._key_bindings = list(bindings)
        self._remap_hint = remap_hint

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box", classes="dialog"):
            yield Static("[b]orchtui keys[/b]", classes="dialog-title")
            yield Static(keys_table(self._key_bindings))
            yield Static(self._remap_hint, classes="dim")

    def action_close(self) -> None:
        self.dismiss(None)
