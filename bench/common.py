"""What the benchmarks share: a snapshot of the code under test, and its child processes.

Others edit digest/ while a benchmark runs, so each copies the package (and the templates)
into a temp dir first and its timed children import that copy; the fingerprint printed
with the figures says which code they belong to.
"""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_PYTHONPATH = os.environ.get("PYTHONPATH", "")


def snapshot(src: Path) -> str:
    """Copy digest/*.py and templates/ into ``src``, its bytecode compiled as an installed
    package's is (pip compiles it; PYTHONDONTWRITEBYTECODE would otherwise have every timed
    process compile digest again); the copy's fingerprint."""
    (src / "digest").mkdir(parents=True)
    for path in (ROOT / "digest").glob("*.py"):
        shutil.copy2(path, src / "digest" / path.name)
    shutil.copytree(ROOT / "templates", src / "templates")
    if not compileall.compile_dir(src / "digest", quiet=1):
        sys.exit(f"cannot compile the snapshot in {src}")
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


# `digest` itself, printing on the way out its own peak RSS and that of the largest process
# it waited for (a worker), in KiB: `run_digest` reads them back.
_DIGEST = (
    "import atexit, resource, sys\n"
    "def report():\n"
    "    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "    print('MAXRSS', own, workers, file=sys.stderr)\n"
    "atexit.register(report)\n"
    "sys.argv = ['digest', *sys.argv[1:]]\n"
    "from digest.cli import main\n"
    "main()\n"
)


def run_digest(config: Path, *args: str) -> tuple[float, float, float, float, str]:
    """One `digest --config CONFIG ARGS…` process: (wall s, CPU s of it and its workers,
    its peak RSS MB, its largest worker's peak RSS MB, its last line of output); exits
    with its error when it fails."""
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _DIGEST, "--config", str(config), *args],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"digest {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    own, workers = (int(n) / 1024 for n in done.stderr.rsplit("MAXRSS", 1)[1].split()[:2])
    return wall, cpu, own, workers, done.stdout.strip().splitlines()[-1]


PG = os.environ.get("DIGEST_BENCH_PG", "postgresql+psycopg://root@127.0.0.1:5432/test")


def pg_schema(prefix: str) -> tuple[str, str]:
    """A new schema ``PREFIX_<hex>`` in the benchmarks' PostgreSQL database (DIGEST_BENCH_PG):
    a store URL whose sessions work in it, and its name (for ``drop_schema``). Raises
    SQLAlchemyError when no PostgreSQL is reachable."""
    import uuid

    schema = f"{prefix}_{uuid.uuid4().hex[:8]}"
    _as_admin(f"CREATE SCHEMA {schema}")
    return f"{PG}?options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str) -> None:
    _as_admin(f"DROP SCHEMA {schema} CASCADE")


def _as_admin(statement: str) -> None:
    """One statement on the benchmarks' PostgreSQL database, committed."""
    from sqlalchemy import create_engine, text

    admin = create_engine(PG)
    try:
        with admin.begin() as conn:
            conn.execute(text(statement))
    finally:
        admin.dispose()


# Postfix's smtp-sink, a fast C sink: `apt-get download postfix && dpkg -x postfix_*.deb
# /tmp/postfix`, then DIGEST_SMTP_SINK=/tmp/postfix/usr/sbin/smtp-sink (its libraries are
# found beside it, in ../lib/postfix). A test tool only: nothing of digest needs it.
SINK = Path(os.environ.get("DIGEST_SMTP_SINK", "/usr/sbin/smtp-sink"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_sink(port: int) -> subprocess.Popen[bytes]:
    """smtp-sink on 127.0.0.1:``port`` (PIPELINING, up to 512 sessions), ready to take mail;
    exits with a hint when there is none at DIGEST_SMTP_SINK. Terminate it when done."""
    if not SINK.exists():
        sys.exit(f"no smtp-sink at {SINK}; see bench/common.py (DIGEST_SMTP_SINK)")
    libraries = SINK.resolve().parent.parent / "lib" / "postfix"
    env = os.environ | {"LD_LIBRARY_PATH": str(libraries)}
    user = ["-u", "nobody"] if os.getuid() == 0 else []
    sink = subprocess.Popen(
        [str(SINK), *user, "-c", "-m", "256", f"127.0.0.1:{port}", "512"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return sink
        except OSError:
            time.sleep(0.05)
    sink.terminate()
    sys.exit(f"smtp-sink at {SINK} does not listen on port {port}")


# What every bench's digest.toml says of the site and its sender (a real send's pre-flight
# refuses the examples' values).
SITE = [
    'timezone = "UTC"',
    'base_url = "https://news.digest-bench.net/daily"',
    'from_address = "news@digest-bench.net"',
    'postal_address = "Digest Bench Ltd, 12 Harbour Road, Leith"',
    'unsubscribe_secret = "bench-secret-0123456789abcdef"',
]


def send_config(path: Path, url: str, work: Path, port: int, *, workers: int = 1) -> Path:
    """A digest.toml at ``path`` sending the seeds' issue of 2019-01-01 from store ``url``
    to the relay on 127.0.0.1:``port`` in plain text, through ``workers`` senders."""
    path.write_text(
        "\n".join(
            [
                f'database_url = "{url}"',
                *SITE,
                f'seeds_dir = "{ROOT / "seeds"}"',
                f'outbox_dir = "{work / "outbox"}"',
                f'subscribers_file = "{work / "none.csv"}"',
                'issue_date = "2019-01-01"',
                'window = "800d"',
                'smtp_host = "127.0.0.1"',
                f"smtp_port = {port}",
                'smtp_tls = "none"',
                f"send_workers = {workers}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return path


def subscribers_csv(path: Path, count: int) -> Path:
    """A subscribers CSV of ``count`` addresses readerNNNNNNN@example.org (kept if there)."""
    if not path.exists():
        with path.open("w", encoding="utf-8") as out:
            out.write("email\n")
            for n in range(count):
                out.write(f"reader{n:07d}@example.org\n")
    return path
