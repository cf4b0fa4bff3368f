"""Freezing the dashboard's long-lived heap: only right after a full collection, only when allowed."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from orchtui.heap import YOUNG_THRESHOLD, HeapFreezer


class Node:
    """An object that can sit in a reference cycle and be watched through a weakref."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return a, weakref.ref(a)


@pytest.fixture
def freezer() -> Iterator[list[HeapFreezer]]:
    made: list[HeapFreezer] = []
    yield made
    for one in made:
        one.uninstall()
    gc.unfreeze()


def test_a_requested_freeze_happens_after_the_next_full_collection(freezer: list[HeapFreezer]) -> None:
    heap = HeapFreezer(lambda: True)
    freezer.append(heap)
    heap.install()
    heap.request()
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert heap.freezes == 1 and gc.get_freeze_count() > 0


def test_nothing_is_frozen_without_a_request(freezer: list[HeapFreezer]) -> None:
    heap = HeapFreezer(lambda: True)
    freezer.append(heap)
    heap.install()
    gc.collect()
    assert heap.freezes == 0 and gc.get_freeze_count() == 0


def test_a_freeze_not_allowed_waits_for_a_later_collection(freezer: list[HeapFreezer]) -> None:
    allowed = False
    heap = HeapFreezer(lambda: allowed)
    freezer.append(heap)
    heap.install()
    heap.request()
    gc.collect()
    assert heap.freezes == 0
    allowed = True
    gc.collect()
    assert heap.freezes == 1


def test_cyclic_garbage_is_collected_not_frozen(freezer: list[HeapFreezer]) -> None:
    heap = HeapFreezer(lambda: True)
    freezer.append(heap)
    heap.install()
    node, alive = cycle()
    del node
    heap.request()
    gc.collect()
    assert heap.freezes == 1 and alive() is None


def test_uninstalling_gives_frozen_objects_back_to_the_collector(freezer: list[HeapFreezer]) -> None:
    heap = HeapFreezer(lambda: True)
    freezer.append(heap)
    heap.install()
    node, alive = cycle()
    heap.request()
    gc.collect()
    del node  # a cycle frozen while alive, dropped afterwards: the collector cannot see it...
    gc.collect()
    assert alive() is not None
    heap.uninstall()  # ...until it is handed back
    gc.collect()
    assert gc.get_freeze_count() == 0 and alive() is None


def test_freezing_now_collects_first(freezer: list[HeapFreezer]) -> None:
    heap = HeapFreezer(lambda: True)
    freezer.append(heap)
    node, alive = cycle()
    del node
    heap.freeze_now()
    assert heap.freezes == 1 and gc.get_freeze_count() > 0 and alive() is None


def test_installing_widens_the_young_generation_and_uninstalling_restores_it(freezer: list[HeapFreezer]) -> None:
    before = gc.get_threshold()
    heap = HeapFreezer(lambda: True)
    freezer.append(heap)
    heap.install()
    assert gc.get_threshold() == (max(before[0], YOUNG_THRESHOLD), *before[1:])
    heap.uninstall()
    assert gc.get_threshold() == before


def test_overlapping_freezers_restore_the_thresholds_only_when_the_last_one_leaves(freezer: list[HeapFreezer]) -> None:
    before = gc.get_threshold()
    first, second = HeapFreezer(lambda: True), HeapFreezer(lambda: True)
    freezer.extend([first, second])
    first.install()
    second.install()
    first.uninstall()
    assert gc.get_threshold()[0] == max(before[0], YOUNG_THRESHOLD)
    second.uninstall()
    assert gc.get_threshold() == before


def test_a_collector_turned_off_stays_off(freezer: list[HeapFreezer]) -> None:
    before = gc.get_threshold()
    gc.set_threshold(0, *before[1:])
    try:
        heap = HeapFreezer(lambda: True)
        freezer.append(heap)
        heap.install()
        assert gc.get_threshold()[0] == 0
        heap.uninstall()
    finally:
        gc.set_threshold(*before)
