"""The real-pages ingest benchmark: its second scraper's dump and its peer's lead."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).parent.parent / "bench"


def load(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCH))  # the bench imports its peers and the text bench's dump
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


PAGE = (
    b"<html><head><title>Bridge | Gazette</title><style>p {color: red}</style></head><body>"
    b"<ul><li>Home</li><li>News</li></ul><h1>Bridge to close</h1><!-- a comment -->"
    b"<p>The council voted to close the bridge.</p><p>Ferries will   run <b>every</b> hour.</p>"
    b"<script>var x = 1;</script><div>Copyright 2026</div></body></html>"
)


def test_the_lxml_dump_breaks_lines_at_blocks_and_drops_scripts(tmp_path: Path) -> None:
    bench = load("bench_ingest_real")
    text = bench.lxml_dump(PAGE, tmp_path)
    assert text.splitlines() == [
        "Bridge | Gazette",
        "Home",
        "News",
        "Bridge to close",
        "The council voted to close the bridge.",
        "Ferries will run every hour.",
        "Copyright 2026",
    ]
    (cached,) = tmp_path.glob("*.txt")
    cached.write_text("from the cache\n", encoding="utf-8")
    assert bench.lxml_dump(PAGE, tmp_path) == "from the cache\n"


def test_the_peer_leads_with_two_sentences_of_the_kept_paragraphs() -> None:
    pysbd = pytest.importorskip("pysbd")  # of the bench extra

    peers = load("peers")
    segmenter = pysbd.Segmenter(language="en", clean=False)
    paragraphs = ["One short opening.", "Then a second one. And a third one."]
    assert peers.lead_sentences(paragraphs, segmenter) == "One short opening. Then a second one."
    assert peers.lead_sentences(paragraphs[:1], segmenter) == "One short opening."
    assert peers.lead_sentences([], segmenter) == ""
