"""Start-up benchmark: CPU time of `digest --help` and of a small command, beside
`python -c pass`, each a fresh process, medians of 7.

Target (issue 15): `digest --help` ≤ 0.2 s CPU (user+sys).

    .venv/bin/python bench/bench_startup.py
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import usage
from common import ROOT, fingerprint

TARGET = 0.2
RUNS = 7


def cpu_of(args: list[str], cwd: Path) -> float:
    """User+sys CPU seconds of one run of ``args``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, capture_output=True, check=True, cwd=cwd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    print(f"digest {fingerprint()}; {os.cpu_count()} cores; medians of {RUNS} runs")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "digest.toml"
        config.write_text(f'database_url = "sqlite:///{Path(tmp) / "store.db"}"\n')
        digest = [sys.executable, "-m", "digest"]
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "digest --help": [*digest, "--help"],
            "digest send --help": [*digest, "send", "--help"],
            "digest subscribers list": [*digest, "--config", str(config), "subscribers", "list"],
        }
        medians = {}
        for name, args in cases.items():
            medians[name] = statistics.median(cpu_of(args, ROOT) for _ in range(RUNS))
            print(f"{name:>26}: {medians[name]:.3f} s CPU")
    ok = medians["digest --help"] <= TARGET
    print(f"digest --help {medians['digest --help']:.3f} s CPU: {'PASS' if ok else 'FAIL'} "
          f"(target ≤ {TARGET} s)")  # fmt: skip
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    usage.report()
    main()
