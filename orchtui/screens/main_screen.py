"""The dashboard's own screen: a focus change repaints only the panes it touches."""

from __future__ import annotations

from textual.reactive import Reactive
from textual.screen import Screen
from textual.widget import Widget

__all__ = ["DashboardScreen"]


class DashboardScreen(Screen[None]):
    """The dashboard's main screen.

    Textual's ``Screen.focused`` repaints the whole screen on every focus change, which
    at 120x40 costs more than a frame's budget for each pane key (1-5, Tab). Only the
    widgets that lose and gain focus are repainted here instead.
    """

    focused: Reactive[Widget | None] = Reactive(None, repaint=False)

    def set_focus(self, widget: Widget | None, scroll_visible: bool = True, from_app_focus: bool = False) -> None:
        """Focus ``widget`` (None: no focus) and repaint it and the widget that had focus; returns None."""
        blurred = self.focused
        super().set_focus(widget, scroll_visible, from_app_focus)
        if blurred is not self.focused:
            for changed in (blurred, self.focused):
                if changed is not None:
                    changed.refresh()
