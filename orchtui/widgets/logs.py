"""The Logs pane: one step attempt's log, followed while the step runs.

``core.logs.follow`` blocks while it waits for output, which suits the CLI; the
dashboard instead keeps a :class:`LogTail` (a file offset) and reads whatever is new on
its own refresh timer, so following a log never parks a thread or posts a message per
line.
"""

from __future__ import annotations

import os
from pathlib import Path

from textual.content import Content
from textual.widgets import Log

from core.errors import StoreError
from core.logs import read_log
from core.text import terminal_safe

__all__ = ["LogTail", "LogsPane", "INITIAL_TAIL_LINES"]

INITIAL_TAIL_LINES = 500


class LogTail:
    """Reads a growing file in pieces: the last lines first, then what was appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset: int | None = None  # None until the file was first read
        self._identity: tuple[int, int] | None = None
        self._pending = b""

    def read_new(self) -> tuple[str, bool]:
        """Return ``(text, restarted)``: new complete lines since the last call.

        ``restarted`` is True when the file was read from a fresh start (first read, or
        the file shrank or was replaced), so the reader should clear what it shows.
        Returns ``("", False)`` while the file does not exist.

        Raises:
            StoreError: the file exists but cannot be read.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return "", False
        identity = (st.st_dev, st.st_ino)
        if self._offset is None or identity != self._identity or st.st_size < self._offset:
            text = read_log(self.path, tail_lines=INITIAL_TAIL_LINES)
            self._identity = identity
            self._offset = st.st_size
            self._pending = b""
            return text, True
        if st.st_size == self._offset:
            return "", False
        try:
            with self.path.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read(st.st_size - self._offset)
        except OSError as exc:
            raise StoreError(f"cannot read log {self.path}: {exc.strerror}") from None
        self._offset += len(data)
        data = self._pending + data
        complete, newline, self._pending = data.rpartition(b"\n")
        if not newline:
            return "", False
        return (complete + newline).decode("utf-8", errors="replace"), False


class LogsPane(Log):
    """A :class:`~textual.widgets.Log` bound to one log file, refreshed by :meth:`poll`."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, highlight=False, max_lines=20_000, auto_scroll=True)
        self._tail: LogTail | None = None
        self.source: tuple[str, str, int] | None = None  # (run, step, attempt) shown
        self._placeholder = ""

    @property
    def waiting(self) -> bool:
        """True while the pane shows a placeholder instead of a log file."""
        return self._tail is None

    def follow_file(self, path: Path | None, source: tuple[str, str, int] | None, placeholder: str = "") -> None:
        """Show the log at ``path`` (or ``placeholder`` when there is none) from now on.

        ``source`` is ``(run, step, attempt)``, attempt 0 when the step has no log yet.
        Does nothing when it would show the same file, or the same placeholder, again.
        """
        current = self._tail.path if self._tail is not None else None
        if source == self.source and path == current and (path is not None or placeholder == self._placeholder):
            return
        self.source = source
        self._placeholder = placeholder
        self._tail = LogTail(path) if path is not None else None
        self.clear()
        if placeholder:
            self._write_note(placeholder)
        if source is None:
            self.border_subtitle = ""
        else:
            self.border_subtitle = Content(f"{source[1]} #{source[2]}" if source[2] else source[1])
        self.poll()

    def _write_note(self, text: str) -> None:
        """Show one line of orchtui's own. Not ``write_line``: that measures the line on a
        thread worker, which fails (and takes the app down) when the app has just exited,
        and a note is written on every selection of a step without a log."""
        self.write(text + "\n")

    def poll(self) -> bool:
        """Append what the file gained since the last poll; returns True when text was added."""
        if self._tail is None:
            return False
        try:
            text, restarted = self._tail.read_new()
        except StoreError as exc:
            self.clear()
            self._write_note(exc.message)
            self._tail = None
            return True
        if restarted:
            self.clear()
        if text:
            self.write(terminal_safe(text))  # a step's bytes: no escape sequence may reach the terminal
            return True
        return restarted
