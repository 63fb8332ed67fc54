"""Real scraped pages: CPU per page of the whole `digest ingest` process, beside jusText +
pySBD lead-2 as a whole process, on the same dumps, in one run.

The corpus, 2,878 text files in three dump sets, each a folder:

- the 1,381 Dragnet pages (../shared/data/pages-dragnet/, AGPLv3 data: measured here, never
  trained on) dumped by html-text (``bench_text.dump``, cached under var/bench-text-dumps/);
- the 116 Readability pages (../shared/data/pages-readability/, Apache-2.0), the same way;
- the Dragnet pages again, dumped by a second, different scraper: lxml's ``text_content()``
  with a line break around each block element (scripts, styles and comments dropped;
  cached there too).

Each set is ingested by its own `digest --config CONFIG ingest FOLDER` process into a fresh
SQLite store (the shipped config's tag rules), so a page and its twin are never in one
batch; ours is the user+sys CPU of those processes (imports, start-up and the store
included), summed over the sets and divided by the pages. The peer, per set, is one child
process too (its imports included): jusText (each line a paragraph, the English stop list:
``peers.justext_paragraphs``, as bench_text.py runs it) and pySBD (``Segmenter(language="en",
clean=False)``) taking the first 2 sentences of the first kept paragraph(s) as the lead.
What each keeps is scored by bench_text.py; this one times them.

Target (issue 15): ours ≥ 5× faster than the peer, CPU per page, medians of 3 rounds (each
round: every set, ours then the peer's, side by side); exit 1 under it.

    .venv/bin/python bench/bench_ingest_real.py               # 3 rounds, every page (~3 min)
    .venv/bin/python bench/bench_ingest_real.py --rounds 1 --sample 4   # quick
    .venv/bin/python bench/bench_ingest_real.py --profile var/ingest.prof   # + cProfile one set
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 5.0  # peer CPU per page / ours
# Elements a browser lays out as blocks: a line break before and after each.
BLOCKS = frozenset(
    {"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption"}
    | {"figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li"}
    | {"main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul"}
)
DROPPED = ("script", "style", "noscript", "template")


def lxml_dump(data: bytes, cache: Path) -> str:
    """The page as a second scraper's plain text: lxml's ``text_content()`` with a line
    break around each block element, blank lines dropped; cached."""
    import lxml
    import lxml.html

    sys.path.insert(0, str(ROOT))
    from digest import readers

    key = hashlib.sha256(f"lxml-blocks {lxml.__version__}\0".encode() + data).hexdigest()[:24]
    path = cache / f"{key}.txt"
    if path.is_file():
        return path.read_text(encoding="utf-8")
    try:
        root = lxml.html.document_fromstring(readers.decode(data))
    except Exception:  # an empty or unparsable page: no text, as a scraper would give
        root = None
    text = ""
    if root is not None:
        for element in root.iter(*DROPPED):
            element.drop_tree()
        for element in root.iter():
            if isinstance(element.tag, str) and element.tag in BLOCKS:
                element.tail = "\n" + (element.tail or "")
                element.text = "\n" + (element.text or "")
            elif not isinstance(element.tag, str):  # a comment or processing instruction
                element.text = ""
        lines = (" ".join(line.split()) for line in root.text_content().splitlines())
        text = "\n".join(line for line in lines if line) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


def dump_sets(work: Path, sample: int) -> dict[str, Path]:
    """Each dump set written as a folder of .txt files under ``work``: name → folder."""
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    from bench_pages import SETS
    from bench_text import CACHE, dump

    makers = {
        "dragnet, html-text": ("dragnet", dump),
        "readability, html-text": ("readability", dump),
        "dragnet, lxml blocks": ("dragnet", lambda data: lxml_dump(data, CACHE)),
    }
    folders: dict[str, Path] = {}
    for n, (name, (page_set, make)) in enumerate(makers.items()):
        pages = sorted((SETS[page_set][0] / "html").glob("*.html.gz"))[::sample]
        if not pages:
            sys.exit(
                f"skipped: no pages in {SETS[page_set][0]} (../shared/data/, beside the checkout)"
            )
        folder = work / f"set{n}"
        folder.mkdir()
        for page in pages:
            text = make(gzip.decompress(page.read_bytes()))
            (folder / page.name.replace(".html.gz", ".txt")).write_text(text, encoding="utf-8")
        folders[name] = folder
    return folders


def _timed(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None, codes: tuple[int, ...] = (0,)
) -> tuple[float, float, str]:
    """One child process, exiting with one of ``codes``: (CPU s, user+sys; wall s; its last
    line of output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in codes:
        sys.exit(f"{' '.join(cmd[:6])} … failed: {done.stderr.strip()[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu, wall, (done.stdout.strip().splitlines() or [""])[-1]


def _config(work: Path, folder: Path, run: str) -> Path:
    """A config ingesting into a fresh store of its own, with the shipped tag rules."""
    shipped = tomllib.loads((ROOT / "config" / "digest.toml").read_text(encoding="utf-8"))
    rules = "\n".join(
        f"{tag} = {json.dumps(phrases)}" for tag, phrases in shipped["tag_rules"].items()
    )
    config = work / f"{run}.toml"
    (work / f"{run}.db").unlink(missing_ok=True)
    config.write_text(
        f'database_url = "sqlite:///{work / f"{run}.db"}"\n'
        f'seeds_dir = "{folder}"\noutbox_dir = "{work / "outbox"}"\ntimezone = "UTC"\n'
        f"\n[tag_rules]\n{rules}\n",
        encoding="utf-8",
    )
    return config


def ours(
    folder: Path, work: Path, src: Path, run: str, profile: Path | None = None
) -> tuple[float, float, str]:
    """The whole `digest ingest FOLDER` process into a fresh store: CPU s, wall s, its summary."""
    config = _config(work, folder, run)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH", "")])),
    }
    prefix = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [sys.executable, *prefix, "-m", "digest", "--config", str(config), "ingest", str(folder)]
    # `digest ingest` exits 1 when it skipped a file (a page with no article): it still ran
    cpu, wall, line = _timed(cmd, work, env, codes=(0, 1))
    if " articles from " not in line:
        sys.exit(f"digest ingest {folder} printed no summary: {line}")
    return cpu, wall, line


def peer(folder: Path, work: Path) -> tuple[float, float, str]:
    """The jusText + pySBD lead-2 process over the folder's dumps: CPU s, wall s, its summary."""
    return _timed([sys.executable, str(Path(__file__)), "--peer", str(folder)], work)


def peer_child(folder: Path) -> None:
    """The peer's process: every dump's kept paragraphs and its lead-2; counts as JSON."""
    sys.path.insert(0, str(Path(__file__).parent))
    import pysbd
    from peers import justext_paragraphs, lead_sentences

    segmenter = pysbd.Segmenter(language="en", clean=False)
    pages = leads = 0
    for path in sorted(folder.glob("*.txt")):
        kept = justext_paragraphs(path.read_text(encoding="utf-8"))
        leads += bool(lead_sentences(kept, segmenter))
        pages += 1
    print(json.dumps({"pages": pages, "leads": leads}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is quoted")
    parser.add_argument("--sample", type=int, default=1, metavar="N", help="every Nth page")
    parser.add_argument("--profile", type=Path, metavar="PATH", help="cProfile our first set")
    parser.add_argument("--peer", type=Path, help=argparse.SUPPRESS)  # the peer's child
    args = parser.parse_args()
    if args.peer:
        peer_child(args.peer)
        return
    sys.path.insert(0, str(ROOT / "bench"))
    from common import snapshot

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-real-"))
    try:
        started = time.process_time()
        folders = dump_sets(work, args.sample)
        pages = {name: len(list(folder.glob("*.txt"))) for name, folder in folders.items()}
        total = sum(pages.values())
        version = snapshot(work / "src")
        print(
            f"digest {version}; {total:,} pages in {len(folders)} dump sets "
            f"({', '.join(f'{name}: {n:,}' for name, n in pages.items())}); "
            f"dumps ready in {time.process_time() - started:.1f} CPU s"
        )
        if args.profile:
            name, folder = next(iter(folders.items()))
            ours(folder, work, work / "src", "profile", args.profile.resolve())
            print(f"profile of `digest ingest` on {name}: {args.profile}")
        rounds: list[dict[str, float]] = []
        for n in range(args.rounds):
            figures = dict.fromkeys(("ours", "ours_wall", "peer", "peer_wall"), 0.0)
            for s, (name, folder) in enumerate(folders.items()):
                cpu, wall, line = ours(folder, work, work / "src", f"r{n}s{s}")
                figures["ours"] += cpu
                figures["ours_wall"] += wall
                peer_cpu, peer_wall, peer_line = peer(folder, work)
                figures["peer"] += peer_cpu
                figures["peer_wall"] += peer_wall
                if n == 0:
                    print(
                        f"  {name}: ours {1000 * cpu / pages[name]:.2f} ms/page ({line[:90]}); "
                        f"peer {1000 * peer_cpu / pages[name]:.2f} ms/page ({peer_line})"
                    )
            rounds.append(figures)
            print(
                f"round {n + 1}: ours {1000 * figures['ours'] / total:.2f} ms CPU/page "
                f"({1000 * figures['ours_wall'] / total:.2f} wall), peer "
                f"{1000 * figures['peer'] / total:.2f} ms CPU/page "
                f"({1000 * figures['peer_wall'] / total:.2f} wall): "
                f"{figures['peer'] / figures['ours']:.2f}×"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    ratio = statistics.median(r["peer"] / r["ours"] for r in rounds)
    ok = ratio >= TARGET
    print(
        f"\n| process | CPU ms/page | wall ms/page |\n|---|---:|---:|\n"
        f"| digest ingest (3 processes, fresh stores) | {1000 * med['ours'] / total:.2f} "
        f"| {1000 * med['ours_wall'] / total:.2f} |\n"
        f"| jusText + pySBD lead-2 (3 processes) | {1000 * med['peer'] / total:.2f} "
        f"| {1000 * med['peer_wall'] / total:.2f} |\n"
        f"\nmedian of {len(rounds)} rounds: ours {ratio:.2f}× faster than the peer, CPU per "
        f"page (target ≥ {TARGET:g}×): {'PASS' if ok else 'FAIL'}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import usage

    usage.report()
    main()
