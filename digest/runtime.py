"""How a process runs light: a module imported when it is first used, so that a command
pays only for the modules its own work needs (`digest ingest` never sends, fetches nor
renders), and the cyclic garbage collector paused while a batch builds objects that hold
no cycles."""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class OnFirstUse:
    """A module imported on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


def collect_young() -> None:
    """Free the cycles made since the last collection, the objects made since then alone
    scanned (so a call costs what that work made, not what the batch holds). With the
    collector paused for a whole batch, the cycles of each chunk's SQL statements
    (SQLAlchemy's elements, with the lists of keys bound to them) would otherwise all stay
    until the batch ends: memory that grows with its size."""
    gc.collect(0)


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """A batch builds many small objects without cycles that live until it is stored; the
    cyclic collector would rescan all of them again and again (time grows faster than N)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
