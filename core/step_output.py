"""What a Python step prints goes to its own log, not to orchtui's output.

A ``python.call`` step runs in orchtui's process (on a worker thread) or in a worker
child; either way its ``print`` used to reach orchtui's own stdout, where it was lost
to the step's log and broke ``orchtui run --json`` for the script reading it. While such
a step runs, ``sys.stdout`` and ``sys.stderr`` are proxies that send each thread's
writes to the log of the step that thread runs, and every other thread's writes where
they went before (the progress view, Textual's own capture).

Only what the step's thread writes through ``sys.stdout``/``sys.stderr`` is routed:
threads the step starts itself, and C code writing to file descriptors 1 and 2, still
write to orchtui's output.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["printed_to"]

_lock = threading.Lock()
_sinks: dict[int, Callable[[str], None]] = {}  # thread id -> where that thread's prints go
_installed: tuple[_RoutedStream, _RoutedStream] | None = None


class _RoutedStream:
    """A text stream that sends a thread's writes to its step's log, others' to ``fallback``."""

    def __init__(self, fallback: TextIO) -> None:
        self.fallback = fallback

    def write(self, text: str) -> int:
        sink = _sinks.get(threading.get_ident())
        if sink is None:
            return self.fallback.write(text)
        sink(text)
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if threading.get_ident() not in _sinks:
            self.fallback.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding...: the real stream's
        return getattr(self.fallback, name)


@contextlib.contextmanager
def printed_to(sink: Callable[[str], None]) -> Iterator[None]:
    """Within the block, send what this thread writes to ``sys.stdout``/``sys.stderr`` to ``sink``.

    The proxies are installed while any thread is in such a block and removed after the
    last one leaves (unless something replaced them meanwhile, which then stays).
    """
    global _installed
    ident = threading.get_ident()
    with _lock:
        if _installed is None:
            _installed = (_RoutedStream(sys.stdout), _RoutedStream(sys.stderr))
            sys.stdout, sys.stderr = _installed  # type: ignore[assignment]
        _sinks[ident] = sink
    try:
        yield
    finally:
        with _lock:
            _sinks.pop(ident, None)
            if not _sinks and _installed is not None:
                out, err = _installed
                if sys.stdout is out:
                    sys.stdout = out.fallback
                if sys.stderr is err:
                    sys.stderr = err.fallback
                _installed = None
