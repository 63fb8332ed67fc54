"""Every benchmark's last line: its wall time beside its CPU time (user+sys, of the script
and of every child process it waited for), so a run on a busy machine can be read."""

from __future__ import annotations

import atexit
import os
import resource
import sys
import time


def report() -> None:
    """Print the line when the script exits (not in a ``--child`` run, whose last line of
    output is its JSON)."""
    if "--child" in sys.argv:
        return
    started = time.perf_counter()
    name = os.path.basename(sys.argv[0])

    def line() -> None:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        wall = time.perf_counter() - started
        print(f"[{name}: {wall:.1f} s wall, {cpu:.1f} s CPU (user+sys, with its children)]")

    atexit.register(line)
