"""What the benchmarks share: a snapshot of the code under test, and its child processes.

Others edit digest/ while a benchmark runs, so each copies the package (and the templates)
into a temp dir first and its timed children import that copy; the fingerprint printed
with the figures says which code they belong to.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_PYTHONPATH = os.environ.get("PYTHONPATH", "")


def snapshot(src: Path) -> str:
    """Copy digest/*.py and templates/ into ``src``; the copy's fingerprint."""
    (src / "digest").mkdir(parents=True)
    for path in (ROOT / "digest").glob("*.py"):
        shutil.copy2(path, src / "digest" / path.name)
    shutil.copytree(ROOT / "templates", src / "templates")
    return fingerprint(src)


def fingerprint(root: Path = ROOT) -> str:
    """A short hash of digest/*.py and the templates under ``root``."""
    h = hashlib.sha256()
    for path in sorted([*(root / "digest").glob("*.py"), *(root / "templates").rglob("*.j2")]):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:12]


def run_child(args: list[str], src: Path, cwd: Path) -> dict[str, Any]:
    """Run this script again as ``args`` importing digest from ``src``; its last JSON line."""
    cmd = [sys.executable, *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), _PYTHONPATH]))}
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env, cwd=cwd)
    if done.returncode != 0:
        sys.exit(f"child failed ({done.returncode}):\n{done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if not str(result["digest"]).startswith(str(src.resolve())):
        sys.exit(f"child imported {result['digest']}, not the snapshot in {src}")
    return result
