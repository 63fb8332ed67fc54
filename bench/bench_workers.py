"""Worker benchmark and kill test: `digest send --workers N` on PostgreSQL (issue 14).

Acceptance lines: (1) worker scaling at 100,000 recipients, 1, 2 and 4 workers, into a null
sender (the bench enrols the issue, then N processes each run ``workers.work_on`` with a
sender that only counts) and into a real aiosmtpd relay (``digest send --workers N`` as a
subprocess; the relay is ``--sinks`` aiosmtpd processes sharing one port with SO_REUSEPORT,
each counting per recipient): recipients/s, CPU seconds of digest's processes (user + sys,
the relay and PostgreSQL apart) and the ratio to one worker. (2) Kill test, 4 workers,
20,000 recipients, send_lease = 10: (a) SIGKILL one worker mid-send: `digest send` exits
0, everyone gets the issue, duplicates ≤ 1; (b) pg_terminate_backend of one worker's
sessions mid-send: everyone gets it, duplicates ≤ 1; (c) the send lock's session
terminated mid-send and a second `digest send` started at once: duplicates ≤ 1, and after
one more `digest send` everyone has exactly one copy (≤ 1 duplicate). Every run checks that
each recipient got exactly one copy and that the ledger holds one 'sent' row each.

Each run gets its own schema ``bw_<hex>`` in database ``test`` (dropped at the end, also on
failure); subscribers go in by COPY; the seeds are the issue's source folder. The code
under test is a snapshot of digest/ (common.snapshot).

    .venv/bin/python bench/bench_workers.py            # 30k scaling ×1, 10k kill ×1: ~8 min
    .venv/bin/python bench/bench_workers.py --quick    # 5k scaling, 3k kill ×1 (smoke, ~2 min)
    .venv/bin/python bench/bench_workers.py --count 100000 --kill-count 20000 --trials 3  # ~25 min
    .venv/bin/python bench/bench_workers.py --repeats 3 --sinks 2 --only scaling
    .venv/bin/python bench/bench_workers.py --only kill --kinds c --trials 5 --seed 7

What every `digest send` printed is kept in /tmp/benchw/last-scaling.log and last-kill.log.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import usage
from common import fingerprint, snapshot

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
PG_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PLAIN_URL = PG_URL.replace("postgresql+psycopg://", "postgresql://")
DIGEST = "daily"
KILL_LEASE = 10
IN_FLIGHT = 1  # messages a killed sender may have had in flight: the duplicates allowed
REAL_SENDER = {
    "base_url": '"https://news.digest-test.net/daily"',
    "from_address": '"news@digest-test.net"',
    "postal_address": '"Digest Test Ltd · 12 Harbour Road · Leith EH6 6LB · Scotland"',
    "unsubscribe_secret": '"test-secret-0123456789abcdef"',
}
Result = dict[str, Any]


# ---------------------------------------------------------------- the relay: aiosmtpd sinks


def sink_main(port: int, out: Path) -> None:
    """One aiosmtpd process on ``port`` (SO_REUSEPORT: several share it); on SIGTERM it
    writes how many copies each recipient got, and its CPU seconds, to ``out``."""
    import asyncio

    from aiosmtpd.smtp import SMTP

    counts: Counter[str] = Counter()
    span: list[float] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            for rcpt in envelope.rcpt_tos:
                counts[rcpt] += 1
            now = time.time()
            if not span:
                span.append(now)
            span[1:] = [now]
            return "250 OK"

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(256)
    sock.setblocking(False)
    loop = asyncio.new_event_loop()
    handler = Handler()
    server = loop.run_until_complete(
        loop.create_server(lambda: SMTP(handler, hostname="sink.local"), sock=sock)
    )
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    print("ready", flush=True)
    loop.run_forever()
    server.close()
    times = os.times()
    out.write_text(
        json.dumps(
            {
                "counts": dict(counts),
                "first": span[0] if span else None,
                "last": span[-1] if span else None,
                "cpu_s": times.user + times.system,
            }
        ),
        encoding="utf-8",
    )


@dataclass
class Sinks:
    """``n`` sink processes on one port, started and stopped per trial."""

    n: int
    port: int
    work: Path
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self) -> None:
        self.procs = []
        for k in range(self.n):
            out = self.work / f"sink-{k}.json"
            out.unlink(missing_ok=True)
            cmd = [sys.executable, str(SCRIPT), "--sink", str(self.port), str(out)]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            self.procs.append(proc)
        for proc in self.procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("an aiosmtpd sink did not start")

    def stop(self) -> tuple[Counter[str], float, float | None]:
        """Stop them; copies per recipient, the sinks' CPU seconds, and the seconds from
        the first message taken to the last."""
        for proc in self.procs:
            proc.send_signal(signal.SIGTERM)
        counts: Counter[str] = Counter()
        cpu, first, last = 0.0, [], []
        for k, proc in enumerate(self.procs):
            proc.wait(30)
            found = json.loads((self.work / f"sink-{k}.json").read_text(encoding="utf-8"))
            counts.update(found["counts"])
            cpu += found["cpu_s"]
            if found["first"] is not None:
                first.append(found["first"])
                last.append(found["last"])
        self.procs = []
        return counts, cpu, (max(last) - min(first)) if first else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- the null sender's worker


class NullSender:
    """Counts what it is given and keeps only the recipients."""

    def __init__(self) -> None:
        self.recipients: list[str] = []
        self.bytes = 0

    def send(self, sender: str, recipient: str, message: bytes) -> None:
        self.recipients.append(recipient)
        self.bytes += len(message)

    def close(self) -> None:
        pass


def null_worker_main(config: Path, k: int, out: Path) -> None:
    """One sender process (worker K) on the enrolled issue, as `digest send --workers N`
    runs it (workers.work_on, application_name "<base>/worker-K"), into a NullSender."""
    from digest import db, pipeline, workers
    from digest.settings import load_settings

    sender = NullSender()
    pipeline.sender_for = lambda *_a, **_k: sender  # type: ignore[assignment]
    settings = load_settings(config)
    named = db.named(settings.database_url, f"worker-{k}")
    settings = settings.model_copy(update={"database_url": named})
    workers.work_on(settings, now=datetime.now(UTC))
    out.write_text(
        json.dumps({"recipients": sender.recipients, "bytes": sender.bytes}), encoding="utf-8"
    )


# ---------------------------------------------------------------- a store of its own


@dataclass
class Store:
    """A schema of its own, the config of a real send into it, and its subscribers."""

    schema: str
    url: str
    config: Path
    emails: list[str]
    issue_id: int = 0

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(
            PLAIN_URL, autocommit=True, options=f"-csearch_path={self.schema}"
        ) as c:
            cur = c.execute(query, params)
            return cur.fetchall() if cur.description else []

    def ledger(self) -> dict[str, int]:
        rows = self.sql("SELECT status, count(*) FROM sends GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    def sent(self) -> int:
        return int(self.sql("SELECT count(*) FROM sends WHERE status = 'sent'")[0][0])

    def reset(self) -> None:
        """No ledger rows: the next send sends the claimed issue to everyone again."""
        self.sql("DELETE FROM sends")


def make_store(work: Path, label: str, count: int, port: int, lease: int | None) -> Store:
    """Schema bw_<hex>, its tables (db.connect), ``count`` active subscribers by COPY, the
    list marked as given, the seeds ingested and the 2019-01-01 issue claimed."""
    import psycopg

    from digest import dates, db, pipeline, selection, subscribers
    from digest.settings import load_settings

    schema = f"bw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PLAIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{PG_URL}?application_name={schema}&options=-csearch_path%3D{schema}"
    folder = work / label
    folder.mkdir()
    settings = {
        "database_url": f'"{url}"',
        "timezone": '"UTC"',
        **REAL_SENDER,
        "seeds_dir": f'"{ROOT / "seeds"}"',
        "outbox_dir": f'"{folder / "outbox"}"',
        "subscribers_file": f'"{folder / "no-such-subscribers.csv"}"',
        "issue_date": "2019-01-01",
        "window": '"800d"',
        "smtp_host": '"127.0.0.1"',
        "smtp_port": str(port),
        "smtp_tls": '"none"',
        "smtp_timeout": "10",
        "smtp_retries": "2",
    }
    if lease is not None:
        settings["send_lease"] = str(lease)
    config = folder / "digest.toml"
    config.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()), encoding="utf-8")
    emails = [f"reader{n:07d}@example{n % 97}.org" for n in range(count)]
    now = datetime.now(UTC)
    loaded = load_settings(config)
    with db.opened(url) as engine:
        copy_in = "COPY subscribers (email, name, tags, created_at, status) FROM STDIN"
        with (
            psycopg.connect(PLAIN_URL, options=f"-csearch_path={schema}") as conn,
            conn.cursor().copy(copy_in) as copy,
        ):
            for email in emails:
                copy.write_row((email, None, "", "2019-01-01 00:00:00", "active"))
        db.keep_meta_value(engine, subscribers.LIST_GIVEN, f"bench_workers COPY, {now}")
        pipeline.ingest_sources(engine, loaded, now=now, only_new=True)
        issue = selection.select_issue(
            engine,
            digest=loaded.digest_name,
            issue_date=pipeline.issue_date_of(loaded, now),
            days=selection.window_days(loaded.window),
            tz=dates.zone(loaded.timezone),
            max_articles=loaded.max_articles,
            caps=pipeline.issue_caps(loaded),
        )
        if not issue.articles:
            raise RuntimeError("the seeds gave the 2019-01-01 issue no articles")
        issue_id, _ = selection.claim(engine, issue, now=now)
    return Store(schema, url, config, emails, issue_id)


def drop_store(store: Store) -> None:
    import psycopg

    with psycopg.connect(PLAIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {store.schema} CASCADE")


# ---------------------------------------------------------------- processes and CPU


def child_env(src: Path) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH", "")]))
    return {**os.environ, "PYTHONPATH": path}


def reap(pid: int) -> tuple[int, float]:
    """Wait for ``pid``: its exit code and the CPU seconds (user + sys) it and the
    descendants it reaped used."""
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime


def machine_cpu() -> float:
    """CPU seconds all cores of the machine have been busy (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    busy = sum(ticks[:8]) - ticks[3] - ticks[4] - ticks[7]  # less idle, iowait and steal
    return busy / os.sysconf("SC_CLK_TCK")


def spawn_workers(pid: int) -> list[int]:
    """The worker processes of `digest send` ``pid``: its children running spawn_main (the
    resource tracker is another child)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid and b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(int(entry.name))
    return sorted(found)


def digest_send(store: Store, src: Path, workers: int, log: Path) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "digest", "--config", str(store.config), "send"]
    cmd += ["--workers", str(workers)]
    handle = log.open("a", encoding="utf-8")
    handle.write(f"$ {' '.join(cmd)}\n")
    handle.flush()
    proc = subprocess.Popen(
        cmd, stdout=handle, stderr=subprocess.STDOUT, env=child_env(src), cwd=src, text=True
    )
    handle.close()
    return proc


def tail(log: Path, lines: int = 4) -> str:
    return " | ".join(log.read_text(encoding="utf-8").strip().splitlines()[-lines:])


def copies(store: Store, counts: Counter[str]) -> tuple[int, int, int]:
    """(recipients with ≥ 1 copy, extra copies, recipients with none); strangers count as
    extra copies."""
    known = set(store.emails)
    got = sum(1 for e in store.emails if counts.get(e, 0) >= 1)
    extra = sum(n - 1 for n in counts.values() if n > 1)
    extra += sum(n for e, n in counts.items() if e not in known)
    return got, extra, len(store.emails) - got


# ---------------------------------------------------------------- 1: scaling


def null_run(store: Store, src: Path, workers: int, work: Path) -> Result:
    """Enrol (in this process), then ``workers`` sender processes into null senders."""
    from digest import deliver, selection
    from digest.db import opened
    from digest.settings import load_settings

    store.reset()
    settings = load_settings(store.config)
    machine0 = machine_cpu()
    t0, c0 = time.perf_counter(), time.process_time()
    with opened(store.url) as engine:
        found = selection.claimed(engine, settings.digest_name, settings.issue_date)
        assert found is not None
        issue_id, issue = found
        deliver.enroll(
            engine, issue, issue_id, variant=selection.variant,
            max_articles=settings.max_articles, now=datetime.now(UTC),
        )  # fmt: skip
    enrol_s, enrol_cpu = time.perf_counter() - t0, time.process_time() - c0
    outs = [work / f"null-{k}.json" for k in range(1, workers + 1)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(SCRIPT), "--null-worker", str(store.config), str(k), str(out)],
            env=child_env(src),
            cwd=src,
        )
        for k, out in enumerate(outs, 1)
    ]
    reaped = [reap(p.pid) for p in procs]
    for p, (code, _) in zip(procs, reaped, strict=True):
        p.returncode = code
    seconds = time.perf_counter() - t0
    counts: Counter[str] = Counter()
    for (code, _), out in zip(reaped, outs, strict=True):
        if code == 0:
            counts.update(json.loads(out.read_text(encoding="utf-8"))["recipients"])
    return {
        "seconds": seconds,
        "enrol_s": enrol_s,
        "send_s": seconds - enrol_s,
        "cpu_s": enrol_cpu + sum(c for _, c in reaped),
        "machine_s": machine_cpu() - machine0,
        "sink_cpu_s": 0.0,
        "codes": [c for c, _ in reaped],
        "counts": counts,
    }


def smtp_run(store: Store, src: Path, workers: int, sinks: Sinks, log: Path) -> Result:
    """`digest send --workers N` into the aiosmtpd sinks."""
    store.reset()
    sinks.start()
    machine0 = machine_cpu()
    t0 = time.perf_counter()
    proc = digest_send(store, src, workers, log)
    code, cpu = reap(proc.pid)
    proc.returncode = code
    seconds = time.perf_counter() - t0
    machine = machine_cpu() - machine0
    counts, sink_cpu, span = sinks.stop()
    return {
        "seconds": seconds,
        "send_s": span or 0.0,
        "enrol_s": float("nan"),  # inside `digest send`
        "cpu_s": cpu,
        "machine_s": machine,
        "sink_cpu_s": sink_cpu,
        "codes": [code],
        "counts": counts,
    }


def scaling(args: argparse.Namespace, src: Path, work: Path, port: int) -> list[tuple[str, bool]]:
    count = args.count or (5_000 if args.quick else 30_000)
    repeats = args.repeats or 1
    store = make_store(work, "scaling", count, port, None)
    checks: list[tuple[str, bool]] = []
    sinks = Sinks(args.sinks, port, work)
    log = work / "scaling.log"
    runs: dict[tuple[str, int], list[Result]] = {}
    try:
        print(f"\n1. scaling: {count:,} recipients (schema {store.schema}), {repeats} run(s)")
        for r in range(repeats):
            for sink in ("null", "smtp"):
                for n in (1, 2, 4):
                    if sink == "null":
                        res = null_run(store, src, n, work)
                    else:
                        res = smtp_run(store, src, n, sinks, log)
                    got, extra, missing = copies(store, res["counts"])
                    ledger = store.ledger()
                    ok = (
                        all(c == 0 for c in res["codes"])
                        and missing == 0
                        and extra == 0
                        and ledger == {"sent": count}
                    )
                    res["ok"] = ok
                    runs.setdefault((sink, n), []).append(res)
                    print(
                        f"  run {r + 1}/{repeats} {sink:>4} N={n}: {res['seconds']:6.1f} s, "
                        f"{count / res['seconds']:7,.0f}/s, CPU {res['cpu_s']:5.1f} s "
                        f"(sink {res['sink_cpu_s']:4.1f} s, machine {res['machine_s']:5.1f} s), "
                        f"exit {res['codes']}, {got:,} got it, {extra} extra, {missing} none, "
                        f"ledger {ledger}" + ("" if ok else "  <-- FAIL")
                    )
                    if not ok and sink == "smtp":
                        print(f"    digest send said: {tail(log)}")
        print(
            f"\nmedians of {repeats} run(s); {os.cpu_count()} cores (shared machine); CPU = "
            "user+sys of digest's processes (bench enrol + workers, or `digest send` and its "
            "children); sink = the aiosmtpd processes; machine = every busy core-second on the "
            "host (PostgreSQL, sink, other tenants included)\n"
        )
        print(
            "| Sink | Workers | Wall | Recipients/s | Scaling | CPU digest | CPU/1k | "
            "CPU sink | CPU machine | Enrol | Send phase | Exactly once |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for sink in ("null", "smtp"):
            base = 0.0
            for n in (1, 2, 4):
                rs = runs[(sink, n)]
                wall = statistics.median(x["seconds"] for x in rs)
                rate = count / wall
                base = base or rate
                cpu = statistics.median(x["cpu_s"] for x in rs)
                label = "null sender" if sink == "null" else f"aiosmtpd ×{args.sinks}"
                enrol = statistics.median(x["enrol_s"] for x in rs)
                phase = statistics.median(x["send_s"] for x in rs)
                print(
                    f"| {label} | {n} | {wall:.1f} s | {rate:,.0f} | {rate / base:.2f} | "
                    f"{cpu:.1f} s | {cpu / count * 1000:.2f} s | "
                    f"{statistics.median(x['sink_cpu_s'] for x in rs):.1f} s | "
                    f"{statistics.median(x['machine_s'] for x in rs):.1f} s | "
                    f"{'in wall' if enrol != enrol else f'{enrol:.1f} s'} | {phase:.1f} s | "
                    f"{'yes' if all(x['ok'] for x in rs) else 'NO'} |"
                )
            for n in (2, 4):
                ratio = statistics.median(
                    x["seconds"] for x in runs[(sink, 1)]
                ) / statistics.median(x["seconds"] for x in runs[(sink, n)])
                print(f"  {sink}: {n} workers ÷ 1 = {ratio:.2f}")
        for (sink, n), rs in sorted(runs.items()):
            checks.append(
                (
                    f"scaling {sink} N={n}: every one of {count:,} recipients got exactly one "
                    f"copy and the ledger holds {count:,} 'sent' rows, in all {len(rs)} run(s)",
                    all(x["ok"] for x in rs),
                )
            )
    finally:
        if sinks.procs:
            sinks.stop()
        drop_store(store)
    return checks


# ---------------------------------------------------------------- 2: the kill test


def wait_sent(store: Store, target: int, procs: list[subprocess.Popen[str]]) -> bool:
    """Until the ledger has ``target`` 'sent' rows; False when the sends ended first."""
    while store.sent() < target:
        if all(p.poll() is not None for p in procs):
            return False
        time.sleep(0.05)
    return True


def kill_trial(
    kind: str, store: Store, src: Path, sinks: Sinks, log: Path, rng: random.Random
) -> Result:
    count = len(store.emails)
    store.reset()
    sinks.start()
    base = store.schema
    t0 = time.perf_counter()
    first = digest_send(store, src, 4, log)
    procs = [first]
    codes: list[int] = []
    note = ""
    at = rng.uniform(0.1, 0.7)
    if kind == "a":
        if wait_sent(store, int(count * at), procs):
            pids = spawn_workers(first.pid)
            if pids:
                victim = rng.choice(pids)
                os.kill(victim, signal.SIGKILL)
                note = f"SIGKILL worker pid {victim} of {pids} at {store.sent():,} sent"
            else:
                note = "no worker found to kill"
        else:
            note = "the send ended before the kill point"
    elif kind == "b":
        points = sorted(rng.uniform(0.1, 0.8) for _ in range(2))
        k = rng.randint(1, 4)
        done = []
        for point in points:
            if not wait_sent(store, int(count * point), procs):
                break
            killed = store.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (f"{base}/worker-{k}",),
            )
            done.append(f"{len(killed)} at {store.sent():,}")
        note = f"terminated worker-{k}'s sessions: " + ", ".join(done)
    else:
        if wait_sent(store, int(count * at), procs):
            killed = store.sql(
                "SELECT pg_terminate_backend(a.pid) FROM pg_locks l JOIN pg_stat_activity a "
                "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND a.application_name = %s",
                (base,),
            )
            note = f"terminated {len(killed)} send-lock session(s) at {store.sent():,} sent"
            procs.append(digest_send(store, src, 4, log))
        else:
            note = "the send ended before the kill point"
    for proc in procs:
        code, _ = reap(proc.pid)
        proc.returncode = code
        codes.append(code)
    before, extra_before = None, 0
    if kind == "c":
        counts_so_far, _, _ = sinks.stop()
        _, extra_before, _ = copies(store, counts_so_far)
        before = counts_so_far
        sinks.start()
        again = digest_send(store, src, 4, log)
        code, _ = reap(again.pid)
        again.returncode = code
        codes.append(code)
    seconds = time.perf_counter() - t0
    counts, _, _ = sinks.stop()
    if before is not None:
        counts.update(before)
    got, extra, missing = copies(store, counts)
    twice = sorted(e for e, n in counts.items() if n > 1)
    if twice:
        note += f"; got it twice: {', '.join(twice[:5])}"
    ledger = store.ledger()
    if kind == "a":
        ok = codes == [0]
    elif kind == "b":
        ok = codes[0] == 0
    else:
        ok = codes[-1] == 0 and extra_before <= IN_FLIGHT
    ok = ok and missing == 0 and extra <= IN_FLIGHT and ledger == {"sent": count}
    return {
        "kind": kind,
        "recipients": got,
        "extra": extra,
        "extra_before": extra_before,
        "missing": missing,
        "codes": codes,
        "seconds": seconds,
        "ledger": ledger,
        "note": note,
        "ok": ok,
        "said": tail(log, 3) if not ok else "",
    }


def kill_test(args: argparse.Namespace, src: Path, work: Path, port: int) -> list[tuple[str, bool]]:
    count = args.kill_count or (3_000 if args.quick else 10_000)
    trials = args.trials or 1
    store = make_store(work, "kill", count, port, KILL_LEASE)
    sinks = Sinks(args.sinks, port, work)
    rng = random.Random(args.seed)
    log = work / "kill.log"
    checks: list[tuple[str, bool]] = []
    expect = {
        "a": "SIGKILL one of 4 workers: exit 0, everyone got it, ≤ 1 duplicate",
        "b": "pg_terminate_backend of one worker's sessions (twice): everyone got it, ≤ 1 dup",
        "c": "send-lock session terminated, a 2nd `digest send` at once, then a 3rd: "
        "≤ 1 duplicate before the 3rd, everyone got exactly one (≤ 1 dup), last exit 0",
    }
    try:
        print(
            f"\n2. kill test: {count:,} recipients, 4 workers, send_lease = {KILL_LEASE}, "
            f"aiosmtpd ×{args.sinks} (schema {store.schema}), {trials} trial(s) each"
        )
        print(
            "\n| Test | Trial | Recipients | Duplicates | Missing | Exit codes | Seconds | What |"
        )
        print("|---|---:|---:|---:|---:|---|---:|---|")
        for kind in args.kinds:
            results = []
            for t in range(trials):
                res = kill_trial(kind, store, src, sinks, log, rng)
                results.append(res)
                dups = str(res["extra"])
                if kind == "c":
                    dups = f"{res['extra_before']} before the 3rd send, {res['extra']} in all"
                fail = "" if res["ok"] else f" — FAIL: {res['said']}; ledger {res['ledger']}"
                print(
                    f"| {kind} | {t + 1} | {res['recipients']:,} | {dups} | {res['missing']} | "
                    f"{res['codes']} | {res['seconds']:.1f} | {res['note']}{fail} |"
                )
            checks.append(
                (f"kill {kind}: {expect[kind]} ({trials} trials)", all(r["ok"] for r in results))
            )
    finally:
        if sinks.procs:
            sinks.stop()
        drop_store(store)
    return checks


# ---------------------------------------------------------------- parent


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5k scaling, 3k kill, 1 run each")
    parser.add_argument("--repeats", type=int, default=None, help="runs of each scaling config")
    parser.add_argument("--trials", type=int, default=None, help="trials of each kill test")
    parser.add_argument("--count", type=int, default=None, help="scaling recipients")
    parser.add_argument("--kill-count", type=int, default=None, help="kill-test recipients")
    parser.add_argument("--sinks", type=int, default=2, help="aiosmtpd processes (one port)")
    parser.add_argument("--only", choices=["scaling", "kill"], default=None)
    parser.add_argument("--kinds", default="abc", help="which kill tests (a, b, c)")
    parser.add_argument("--seed", type=int, default=None, help="random kill points' seed")
    parser.add_argument("--sink", nargs=2, metavar=("PORT", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--null-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        sink_main(int(args.sink[0]), Path(args.sink[1]))
        return
    if args.null_worker:
        config, k, out = args.null_worker
        null_worker_main(Path(config), int(k), Path(out))
        return
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    base = Path("/tmp/benchw")
    base.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=base))
    try:
        src = work / "src"
        print(
            f"digest sources {snapshot(src)} (snapshot), python {sys.version.split()[0]}, "
            f"{os.cpu_count()} cores, seed {args.seed}, PostgreSQL {PG_URL.rpartition('@')[2]}"
        )
        sys.path.insert(0, str(src))
        idle0 = machine_cpu()
        time.sleep(3.0)
        print(f"before the runs: {(machine_cpu() - idle0) / 3.0:.2f} cores busy (other tenants)")
        port = free_port()
        checks: list[tuple[str, bool]] = []
        t0 = time.perf_counter()
        if args.only in (None, "scaling"):
            checks += scaling(args, src, work, port)
        if args.only in (None, "kill"):
            checks += kill_test(args, src, work, port)
        print(f"\ntotal {time.perf_counter() - t0:.0f} s\n")
        for text, ok in checks:
            print(f"{'PASS' if ok else 'FAIL'} {text}")
        if fingerprint() != fingerprint(src):
            print("note: digest/ or templates/ changed during the run; figures are the snapshot's")
        if not all(ok for _, ok in checks):
            sys.exit(1)
    finally:
        for log in work.glob("*.log"):  # what each `digest send` said, kept for a look
            shutil.copy2(log, base / f"last-{log.name}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    usage.report()
    main()
