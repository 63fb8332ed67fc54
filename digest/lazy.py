"""A module imported when it is first used, so that a command pays only for the modules
its own work needs (`digest ingest` never sends, fetches nor renders)."""

from __future__ import annotations

import importlib
from typing import Any


class OnFirstUse:
    """A module imported on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)
