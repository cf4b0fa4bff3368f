"""Keeping the garbage collector's full passes short while the dashboard runs.

Most of the dashboard's heap lives as long as the app: the widget tree, the catalog's
workflows, the definition and the laid-out graph of a 10k-step run. CPython's full
(generation 2) collection traces all of it every time, with the GIL held: 100-150 ms
on the benchmark machine, about once a second while a large run is watched, so a key
pressed meanwhile waited that long (``benchmarks/tui_bench.py``).

:class:`HeapFreezer` moves what is alive into the permanent generation (``gc.freeze``)
so later full passes trace only what was allocated since. The app freezes once at
startup, after one full collection; later it freezes only right after a full collection
has finished anyway: everything alive at that instant is reachable, so no
cyclic garbage is frozen (frozen objects are still freed by reference counting; only
cycles among them would never be). The app requests a freeze when it has built
something that will last (a new graph), and says when a freeze would be unsafe (a
modal screen or a graph build under way holds cyclic objects that will be dropped
soon). On unmount everything frozen is handed back to the collector.

While installed it also gives the youngest generation room (``YOUNG_THRESHOLD``
allocations instead of 700). Each frame allocates thousands of objects that live about
a frame (strips, segments, styles, the model's maps); with the default they survive a
young collection or two and are promoted, and the promoted pile is what sets off full
collections. ``benchmarks/tui_bench.py`` prints the collector's pauses while three
10k-step runs are watched; three runs of it each way on the same day: with 700, 4-5 full
collections, 270-430 ms of pauses in all, the longest 52-71 ms; with 5,000, none full,
160-230 ms in all, the longest 30-39 ms. (20,000 was worse again: a middle-generation
pass of 73-83 ms.) Key latency itself moved within its noise.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

__all__ = ["HeapFreezer", "YOUNG_THRESHOLD"]

YOUNG_THRESHOLD = 5_000  # allocations (net of frees) between young collections while installed

# The thresholds are the process's, and freezers may overlap (several apps in one test
# run): the first install widens, the last uninstall puts back what the first found.
_widened_by = 0
_thresholds_found = gc.get_threshold()


def _widen_young_generation() -> None:
    global _widened_by, _thresholds_found
    if _widened_by == 0:
        _thresholds_found = gc.get_threshold()
        young, *older = _thresholds_found
        if young:  # 0 means the host turned automatic collection off: leave it so
            gc.set_threshold(max(young, YOUNG_THRESHOLD), *older)
    _widened_by += 1


def _restore_young_generation() -> None:
    global _widened_by
    _widened_by -= 1
    if _widened_by == 0:
        gc.set_threshold(*_thresholds_found)


class HeapFreezer:
    """Freezes the heap after the next full collection, when asked and when allowed.

    Args:
        may_freeze: called (from whichever thread collected) right after a full
            collection; False postpones the freeze to a later one. It must only read.
    """

    def __init__(self, may_freeze: Callable[[], bool]) -> None:
        self._may_freeze = may_freeze
        self._requested = False
        self._installed = False
        self.freezes = 0  # how many times it froze (the tests read it)

    def install(self) -> None:
        """Start watching collections and widen the young generation (idempotent)."""
        if not self._installed:
            gc.callbacks.append(self._after_collection)
            _widen_young_generation()
            self._installed = True

    def uninstall(self) -> None:
        """Stop watching, put the collector's thresholds back, and give every frozen
        object back to the collector."""
        if self._installed:
            gc.callbacks.remove(self._after_collection)
            _restore_young_generation()
            self._installed = False
        if self.freezes:
            gc.unfreeze()

    def freeze_now(self) -> None:
        """Collect now, then freeze what is alive (a full pass: for startup, when the user
        waits for the first screen anyway, not for later)."""
        gc.collect()
        gc.freeze()
        self.freezes += 1

    def request(self) -> None:
        """Freeze what is alive after the next full collection (that ``may_freeze`` allows)."""
        self._requested = True

    def _after_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2 and self._requested and self._may_freeze():
            self._requested = False
            gc.freeze()
            self.freezes += 1
