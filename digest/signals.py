"""Stopping on SIGTERM and SIGINT: the one place a process of digest catches them.

``digest schedule`` and ``digest serve`` both stop cleanly on either signal: a send in
progress stops between two messages, a server finishes its responses. ``on_stop_signals``
installs the handlers for the length of a ``with`` block (in the main thread only: Python
delivers signals there) and puts the previous ones back on the way out.

``SHUTDOWN`` is the process's "shutdown began" flag. It is process-wide on purpose: signals
are, and APScheduler calls the daily job by its stored name, so the job cannot be handed a
flag of its own; a send checks it between two messages (``stop_between_messages``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from digest.errors import StoppedError

SHUTDOWN = threading.Event()
_log = logging.getLogger("digest.signals")


@contextmanager
def on_stop_signals(stop: Callable[[], None], *, once: bool = True) -> Iterator[None]:
    """Call ``stop`` on SIGTERM or SIGINT while the block runs.

    With ``once``, the first signal also puts the previous handlers back, so a second one
    acts as if none was caught (Ctrl-C twice stops a stuck shutdown). Outside the main thread
    nothing is installed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def handle(signum: int, _frame: FrameType | None) -> None:
        _log.info("%s: stopping", signal.Signals(signum).name)
        stop()
        if once:
            restore()

    for sig in previous:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        restore()


@contextmanager
def shutting_down_on_signals(stop: threading.Event | None = None) -> Iterator[None]:
    """While the block runs, SIGTERM or SIGINT set ``SHUTDOWN`` (and ``stop``, if given);
    on the way out ``SHUTDOWN`` is cleared for whatever runs next in this process."""

    def begin() -> None:
        SHUTDOWN.set()
        if stop is not None:
            stop.set()

    try:
        with on_stop_signals(begin):
            yield
    finally:
        SHUTDOWN.clear()


def stop_between_messages(_sent: int) -> None:
    """A send's progress hook: once shutdown began, stop before the next message."""
    if SHUTDOWN.is_set():
        raise StoppedError(
            "send stopped by shutdown between two messages; the next start "
            "(or `digest schedule --once`) sends the rest"
        )
