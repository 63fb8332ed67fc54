"""The README's example sessions are what the commands print: each is run here, in a fresh
copy of config/ and seeds/, and compared with the README's block of the same name.

Regenerate them on purpose, then review the diff:

    DIGEST_README_REGENERATE=1 .venv/bin/python -m pytest tests/test_readme.py

A block is written in README.md as ``<!-- session: NAME -->`` followed by a fenced block;
each line of a command starts with ``$ ``. Only what changes from run to run by itself (the
clock, file times) is masked in the comparison; the README shows the real values of the
run that wrote it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ROOT, Handler

pytestmark = pytest.mark.slow  # each session runs the commands in a shell

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
_BLOCK = re.compile(r"(<!-- session: ([\w-]+) -->\n```\n)(.*?)(```\n)", re.S)
_MARK = "\x1e@@ command done @@\x1e"
# A real install's sender settings, as an operator exports them before the first real send.
_REAL = (
    "export DIGEST_BASE_URL=https://news.acme-digest.net DIGEST_FROM_ADDRESS=news@acme-digest.net"
    ' DIGEST_POSTAL_ADDRESS="Acme Digest Ltd · 12 Harbour Road · Leith EH6 6LB"'
    " DIGEST_UNSUBSCRIBE_SECRET=Zr8wq3Kx0uV6yT1bN4mP7sD2fG5hJ9cL"
)
_DAY = r"20\d\d-\d\d-\d\d"
_WAIT_FOR_SERVER = (
    "digest serve --port 0 > .serve.log 2>&1 &\n"
    "for _ in $(seq 600); do grep -q Serving .serve.log && break; sleep 0.05; done\n"
    "PORT=$(grep -o '127.0.0.1:[0-9]*' .serve.log | head -1 | cut -d: -f2)"
)


@dataclass(frozen=True)
class Command:
    shown: str  # as the README prints it
    run: str = ""  # what runs, when not the same (the port a test server got)


@dataclass(frozen=True)
class Session:
    commands: tuple[Command | str, ...]
    masks: tuple[str, ...] = ()  # regexes of what differs from run to run by itself
    files: tuple[tuple[str, bytes], ...] = ()  # written into the folder first
    needs: tuple[str, ...] = ()  # programs it calls besides digest


# A site on a local port for the sources session (the wait is not shown).
_WAIT_FOR_SITE = (
    "python3 -m http.server 0 --bind 127.0.0.1 --directory site > .site.log 2>&1 &\n"
    "for _ in $(seq 600); do grep -q 'port [0-9]' .site.log && break; sleep 0.05; done"
)
_SITE_FEED = (
    b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
    b"<title>Harbour News</title><link>http://127.0.0.1:8000/</link>"
    b"<item><title>Night ferry returns to the island</title><link>/ferry</link>"
    b"<pubDate>Thu, 26 Nov 2026 06:00:00 GMT</pubDate><description>The night ferry to the"
    b" island sails again from Monday, after a winter in which the last boat left at six."
    b" The operator said the late crossing would run until the end of the summer."
    b"</description></item>"
    b"<item><title>Harbour wall repairs begin</title><link>/wall</link>"
    b"<pubDate>Wed, 25 Nov 2026 09:30:00 GMT</pubDate><description>Work on the harbour"
    b" wall began on Wednesday, two years after the storm that broke it. The council said"
    b" the repairs would take until the spring.</description></item>"
    b"</channel></rss>"
)


def _curl(shown: str) -> Command:
    return Command(shown, shown.replace("127.0.0.1:8080", "127.0.0.1:$PORT"))


SESSIONS: dict[str, Session] = {
    "demo": Session(("digest send --dry-run",)),
    "send": Session(
        (
            'digest send; echo "exit $?"',
            _REAL,
            "digest send",
            "digest send | tail -1",
            "digest status",
            'DIGEST_SMTP_PORT=9 digest send --date 2019-01-02 --force; echo "exit $?"',
            "digest send --date 2026-11-27 --dry-run",
        )
    ),
    "subscribers": Session(
        (
            "digest subscribers add Bob@Example.ORG --name Bob --tag Summit --tag usa",
            "digest subscribers add bob@example.org --tag sanctions",
            "digest subscribers add zoe@example.org --tag spcae",
            "digest subscribers add not-an-address",
            "digest subscribers remove bob@example.org",
            "digest subscribers add bob@example.org",
            "cat more.csv",
            'digest subscribers import more.csv; echo "exit $?"',
            "digest subscribers list",
        ),
        masks=(_DAY,),
        files=(
            (
                "more.csv",
                b"email,name,tags\nbob@example.org,Bob,usa\ncy@example.org,Cy,\n"
                b"bad@@example.org,,\ndi@example.org,Di,summit\n",
            ),
        ),
    ),
    "serve": Session(
        (
            _REAL,
            "digest send > /dev/null",
            Command("digest serve &", _WAIT_FOR_SERVER),
            _curl("curl -sI http://127.0.0.1:8080/feed.xml"),
            _curl(
                "ETAG=$(curl -sI http://127.0.0.1:8080/feed.xml | grep etag | cut -d' ' -f2 "
                "| tr -d '\\r')"
            ),
            _curl('curl -sI -H "If-None-Match: $ETAG" http://127.0.0.1:8080/feed.xml | head -1'),
            _curl(
                'curl -sI -H "Accept-Encoding: gzip" http://127.0.0.1:8080/feed.xml '
                '| grep -E "etag|length"'
            ),
            _curl('curl -sI http://127.0.0.1:8080//issues | grep -E "^HTTP|location"'),
            "digest send --dry-run > /dev/null",
            "TOKEN=$(grep -m1 -o 'token=[^>]*' outbox/preview/2019-01-01/mail/ada@example.org.eml)",
            _curl(
                'curl -s -o /dev/null -w "%{http_code}\\n" -X POST -d List-Unsubscribe=One-Click '
                '"http://127.0.0.1:8080/unsubscribe?$TOKEN"'
            ),
            _curl(
                'curl -s -o /dev/null -w "%{http_code}\\n" -X POST -d List-Unsubscribe=One-Click '
                '"http://127.0.0.1:8080/unsubscribe?${TOKEN%.*}.AAAAAAAAAAAAAAAAAAAAAA"'
            ),
            _curl("curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:8080/preview/"),
            "digest subscribers list --status unsubscribed",
            "digest schedule --next",
        ),
        masks=(
            r"(?m)^date: .*",
            r"last-modified: .*",
            _DAY + r" \d\d:\d\d E[SD]T \(\d\d:\d\d UTC\)",
            _DAY,
        ),
        needs=("curl",),
    ),
    "articles": Session(
        ("digest ingest > /dev/null", "COLUMNS=140 digest articles --tag arms-control")
    ),
    "json": Session(
        (
            "digest ingest > /dev/null",
            "digest articles --json --since 2018-06-10 --until 2018-06-10 | cut -c1-130",
        )
    ),
    "sources": Session(
        (
            Command(
                "python3 -m http.server 0 --bind 127.0.0.1 --directory site > .site.log 2>&1 &",
                _WAIT_FOR_SITE,
            ),
            "SITE=$(grep -o 'port [0-9]*' .site.log | head -1 | cut -d' ' -f2)",
            "digest sources add http://127.0.0.1:$SITE/ --tag harbour",
            "tail -4 config/digest.toml",
            "digest fetch",
            "digest fetch",
            "COLUMNS=120 digest sources",
        ),
        masks=(_DAY + r" \d\d:\d\d", r"127\.0\.0\.1:\d+"),
        files=(
            (
                "site/index.html",
                b"<html><head><title>Harbour News</title>"
                b'<link rel="alternate" type="application/rss+xml" title="Harbour News"'
                b' href="/feed.xml"></head><body><h1>Harbour News</h1></body></html>',
            ),
            ("site/feed.xml", _SITE_FEED),
        ),
    ),
    "ingest": Session(
        (
            "cp seeds/004_1da4d44115ccccca.txt bad/",
            "ls bad",
            'digest ingest bad; echo "exit $?"',
        ),
        files=(
            ("bad/empty.txt", b""),
            ("bad/logo.txt", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
            ("bad/broken.xml", b"<?xml version='1.0'?><rss><channel><item><title>A"),
        ),
    ),
}


def test_every_session_in_the_readme_is_defined_here() -> None:
    found = [name for _, name, _, _ in _BLOCK.findall(README.read_text(encoding="utf-8"))]
    assert sorted(found) == sorted(SESSIONS)


@pytest.mark.parametrize("name", list(SESSIONS))
def test_the_readme_shows_what_the_commands_print(
    name: str, tmp_path: Path, relay: Handler
) -> None:
    session = SESSIONS[name]
    for program in session.needs:
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (apt-get install -y {program})")
    printed = _run(session, tmp_path, relay.port)
    text = README.read_text(encoding="utf-8")
    blocks = {m[2]: m for m in _BLOCK.finditer(text)}
    if os.environ.get("DIGEST_README_REGENERATE"):
        block = blocks[name]
        README.write_text(text[: block.start(3)] + printed + text[block.end(3) :], encoding="utf-8")
        return
    shown = blocks[name][3]
    assert _masked(shown, session) == _masked(printed, session), (
        f"README.md's session {name!r} is not what the commands print now; regenerate it "
        "with DIGEST_README_REGENERATE=1 (see this module's docstring) and review the diff"
    )


def _run(session: Session, folder: Path, smtp_port: int) -> str:
    """The session as a transcript: each command after ``$ ``, then what it printed."""
    shutil.copytree(ROOT / "config", folder / "config")
    shutil.copytree(ROOT / "seeds", folder / "seeds")
    for name, content in session.files:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content)
    commands = [c if isinstance(c, Command) else Command(c) for c in session.commands]
    script = ["exec 2>&1"]
    for command in commands:
        script += [command.run or command.shown, f"printf '{_MARK}\\n'"]
    script.append("kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; true")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("DIGEST_") and key not in ("COLUMNS", "LINES")
    }
    env |= {
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "COLUMNS": "100",
        "DIGEST_SMTP_PORT": str(smtp_port),
        "TZ": "UTC",
    }
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    outputs = done.stdout.split(_MARK + "\n")
    assert len(outputs) == len(commands) + 1, done.stdout + done.stderr
    lines = []
    for command, output in zip(commands, outputs, strict=False):
        lines.append("$ " + command.shown.replace("\n", "\n  "))
        if output:
            lines.append(output.rstrip("\n"))
    return "\n".join(lines) + "\n"


def _masked(text: str, session: Session) -> str:
    for mask in session.masks:
        text = re.sub(mask, "…", text)
    return text
