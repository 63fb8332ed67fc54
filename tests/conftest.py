"""Shared scaffolding: the CLI runner, configs, a store URL on SQLite and on PostgreSQL, a
real SMTP relay and a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from click.testing import CliRunner, Result
from sqlalchemy import Engine
from starlette.types import ASGIApp

from digest import db, smtp
from digest.cli import cli

# A suite started in the background of a shell without job control (`cmd &`, nohup) inherits
# SIGINT ignored, and so would every command it starts: the Ctrl-C tests would wait forever
# for a child that cannot hear them. A handler of our own is reset to the default at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SEEDS = ROOT / "seeds"
# DESIGN.md: every object of `digest articles --json` has at least these.
JSON_FIELDS = ("id", "title", "url", "published", "tags", "author", "source", "summary", "body")
PG_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def run(*args: str, config: Path | None = None) -> Result:
    """Invoke the CLI in-process, as a user would type it."""
    argv = (["--config", str(config)] if config else []) + list(args)
    return CliRunner().invoke(cli, argv, catch_exceptions=False)


# What a real install sets before its first send (the pre-flight refuses the shipped values).
REAL_SENDER = {
    "base_url": '"https://news.digest-test.net/daily"',
    "from_address": '"news@digest-test.net"',
    "postal_address": '"Digest Test Ltd · 12 Harbour Road · Leith EH6 6LB · Scotland"',
    "unsubscribe_secret": '"test-secret-0123456789abcdef"',
}


def write_config(tmp_path: Path, database_url: str | None = None, **extra: str) -> Path:
    """A config file for one test, with its own SQLite store unless told otherwise, and
    sender settings that pass the pre-flight of a real send (each can be overridden)."""
    url = database_url or f"sqlite:///{tmp_path / 'digest.db'}"
    lines = [f'database_url = "{url}"', 'timezone = "UTC"']
    lines += [f"{key} = {value}" for key, value in (REAL_SENDER | extra).items()]
    path = tmp_path / "digest.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store on SQLite, and on PostgreSQL where one is reachable.

    On PostgreSQL the store is a schema of its own, and its sessions carry that schema's
    name as their application_name: a test that looks at server-wide views (pg_locks,
    pg_stat_activity) looks at its own sessions only, whatever else runs on the server.
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    admin = create_engine(PG_URL)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except SQLAlchemyError as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL reachable at {PG_URL}: {str(exc).splitlines()[0]}")
    try:
        yield f"{PG_URL}?application_name={schema}&options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A connected store (schema created), disposed after the test."""
    with db.opened(database_url) as connected:
        yield connected


def seeds_config(
    tmp_path: Path, port: int | None = None, database_url: str | None = None, **extra: str
) -> Path:
    """A config that sends the seeds' 2019-01-01 issue to the shipped subscribers through an
    SMTP relay on ``port`` (none: a port nobody listens on), each setting overridable."""
    settings = {
        "seeds_dir": f'"{SEEDS}"',
        "outbox_dir": f'"{tmp_path / "outbox"}"',
        "subscribers_file": f'"{ROOT / "config" / "subscribers.csv"}"',
        "issue_date": "2019-01-01",
        "window": '"800d"',
        "smtp_host": '"127.0.0.1"',
        "smtp_port": str(port or free_port()),
        "smtp_timeout": "5",
        "smtp_retries": "0",
        # The shipped subscribers follow these tags: each gets a variant of the seeds.
        "tag_rules": '{ arms-control = ["arms race"], sanctions = ["sanctions"] }',
    }
    return write_config(tmp_path, database_url, **{**settings, **extra})


# ---------------------------------------------------------------- a real SMTP relay


@dataclass
class Handler:
    """aiosmtpd handler: records accepted messages; defers, drops or refuses on demand."""

    accepted: list[tuple[str, bytes]] = field(default_factory=list)
    rcpt_tried: list[str] = field(default_factory=list)
    defer: int = 0  # answer 451 to the next N messages
    drop: int = 0  # hang up on the next N messages
    refuse: set[str] = field(default_factory=set)  # 550 at RCPT for these
    refuse_all: str | None = None  # the answer to every RCPT (a relay refusing this sender)
    refuse_all_after: int = 0  # ... once it has taken this many messages
    rcpt_replies: dict[str, str] = field(default_factory=dict)  # an answer for one RCPT
    refuse_all_mail: str | None = None  # the answer to every MAIL FROM
    delay: float = 0.0  # seconds before the 250 (the message is recorded first)
    stall_after: int | None = None  # after N messages, record each and hold its 250 until None
    rcpt_delay: float = 0.0  # seconds before answering RCPT
    logins: list[str] = field(default_factory=list)
    sessions: int = 0  # EHLOs: one a connection without TLS
    mail_replies: list[str] = field(default_factory=list)  # answers to the next MAILs
    data_replies: list[str] = field(default_factory=list)  # answers to the next DATAs
    hang_up_after_data: int = 0  # take the next N messages, then hang up without a reply
    rsets: int = 0
    encrypted: list[bool] = field(default_factory=list)  # one a message: over TLS?
    pipelining: bool = False  # offer PIPELINING (RFC 2920) in the EHLO reply
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0  # where it listens, once served

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        with self.lock:
            if self.refuse_all_mail is not None:
                return self.refuse_all_mail
            if self.mail_replies:
                reply = self.mail_replies.pop(0)
                if reply.startswith("421"):  # say it, then hang up
                    asyncio.get_running_loop().call_soon(server.transport.close)
                return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.rsets += 1
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self.lock:
            self.rcpt_tried.append(address)
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        if self.refuse_all is not None and len(self.accepted) >= self.refuse_all_after:
            return self.refuse_all
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        if address in self.refuse:
            return "550 5.1.1 <" + address + ">: no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        with self.lock:
            self.sessions += 1
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        if self.pipelining:  # aiosmtpd reads pipelined commands in order; it only never says so
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            if self.data_replies:
                return self.data_replies.pop(0)
            if self.hang_up_after_data:
                self.hang_up_after_data -= 1
                self.accepted.append((envelope.rcpt_tos[0], envelope.content))
                server.transport.close()
                return "250 OK"  # never reaches the client: the connection is gone
            if self.drop:
                self.drop -= 1
                server.transport.close()
                return "421 4.3.2 going away"
            if self.defer:
                self.defer -= 1
                return "451 4.3.0 try again later"
            for rcpt in envelope.rcpt_tos:
                self.accepted.append((rcpt, envelope.content))
                self.encrypted.append(session.ssl is not None)
        if self.delay:
            await asyncio.sleep(self.delay)
        deadline = time.monotonic() + 60
        while self._stalled() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return "250 OK"

    def _stalled(self) -> bool:
        with self.lock:
            return self.stall_after is not None and len(self.accepted) > self.stall_after

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(rcpt for rcpt, _ in self.accepted)


@dataclass
class Mailbox:
    handler: Handler
    port: int

    def sender(self, **options: Any) -> smtp.SmtpSender:
        return smtp.SmtpSender("127.0.0.1", self.port, **({"timeout": 5.0} | options))


def free_port() -> int:
    """A loopback port nobody listened on a moment ago (for "nothing listens there")."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _LoopbackController(Controller):
    """An aiosmtpd server on a loopback port the kernel picks as it binds: no port probed
    first that another suite on this machine could take in between."""

    def __init__(self, handler: Handler, **options: Any) -> None:
        # A loaded machine may take a while to start the server's thread and loop.
        super().__init__(handler, hostname="127.0.0.1", port=0, ready_timeout=30, **options)

    def _trigger_server(self) -> None:
        assert self.server is not None  # bound before start() gets here
        self.port = int(self.server.sockets[0].getsockname()[1])
        super()._trigger_server()


@contextmanager
def serving(handler: Handler, **options: Any) -> Iterator[Controller]:
    """An aiosmtpd server on a free loopback port (also ``handler.port``), stopped on the way
    out."""
    controller = _LoopbackController(handler, **options)
    controller.start()
    handler.port = controller.port
    try:
        yield controller
    finally:
        controller.stop()


@pytest.fixture
def relay() -> Iterator[Handler]:
    """A real SMTP server on loopback that records what it takes (``relay.port``)."""
    handler = Handler()
    with serving(handler):
        yield handler


@pytest.fixture
def mailbox(relay: Handler) -> Mailbox:
    """The relay, with senders to it."""
    return Mailbox(relay, relay.port)


# ---------------------------------------------------------------- a real HTTP server


@contextmanager
def running(app: ASGIApp, server: uvicorn.Server | None = None) -> Iterator[int]:
    """Serve ``app`` (in ``server``, if given) in a thread on a free loopback port; yield it."""
    # proto=IPPROTO_TCP as digest.serve makes it, so asyncio turns Nagle off.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        server = server or uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started, "the server did not start within 30 s"
        try:
            yield sock.getsockname()[1]
        finally:
            server.should_exit = True
            thread.join(10)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Property tests (hypothesis) try hundreds of examples each: slow, wherever they are."""
    for item in items:
        if getattr(getattr(item, "obj", None), "is_hypothesis_test", False):
            item.add_marker(pytest.mark.slow)
