"""How a process runs light: the cyclic collector paused for a batch, and the cycles of
each of its chunks freed as it goes."""

from __future__ import annotations

import gc
import weakref

from digest.runtime import collect_young, no_cyclic_gc


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_a_paused_collector_leaves_cycles_until_the_young_are_collected() -> None:
    with no_cyclic_gc():
        assert not gc.isenabled()
        kept = _cycle()
        assert kept() is not None  # the collector is paused: the cycle stays
        collect_young()
        assert kept() is None
    assert gc.isenabled()
