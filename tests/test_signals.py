"""The one stop-signal helper: the first SIGTERM/SIGINT stops, a second acts as uncaught."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from digest import signals
from digest.errors import StoppedError


@pytest.fixture
def earlier() -> Iterator[list[int]]:
    """A handler in place before the helper's, which records what reaches it."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: seen.append(signum))
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_first_signal_stops_and_gives_back_the_earlier_handler(earlier: list[int]) -> None:
    stops: list[str] = []
    with signals.on_stop_signals(lambda: stops.append("stop")):
        signal.raise_signal(signal.SIGTERM)
        assert stops == ["stop"] and earlier == []
        signal.raise_signal(signal.SIGTERM)  # the second acts as if none was caught
        assert stops == ["stop"] and earlier == [signal.SIGTERM]


def test_with_once_off_every_signal_stops_until_the_block_ends(earlier: list[int]) -> None:
    stops: list[str] = []
    with signals.on_stop_signals(lambda: stops.append("stop"), once=False):
        signal.raise_signal(signal.SIGTERM)
        signal.raise_signal(signal.SIGTERM)
    assert stops == ["stop", "stop"] and earlier == []
    signal.raise_signal(signal.SIGTERM)
    assert earlier == [signal.SIGTERM]  # the block's end put the earlier handler back


def test_shutdown_stops_a_send_between_messages_and_is_cleared_after(earlier: list[int]) -> None:
    stop = threading.Event()
    with signals.shutting_down_on_signals(stop):
        signals.stop_between_messages(1)  # no signal yet: the send goes on
        signal.raise_signal(signal.SIGTERM)
        assert stop.is_set() and signals.SHUTDOWN.is_set()
        with pytest.raises(StoppedError, match=r"^send stopped by shutdown between two messages"):
            signals.stop_between_messages(2)
    assert not signals.SHUTDOWN.is_set()
    signals.stop_between_messages(3)


def test_outside_the_main_thread_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGTERM)
    installed: list[object] = []

    def work() -> None:
        with signals.on_stop_signals(lambda: None):
            installed.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert installed == [before]
