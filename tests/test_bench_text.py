"""The text-path benchmark: a page dumped to text, read by our text path in both modes, and
by jusText, scored with the page benchmark's scorer."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def bench() -> ModuleType:
    folder = Path(__file__).parent.parent / "bench"
    sys.path.insert(0, str(folder))  # it imports its scorer from bench_pages
    spec = importlib.util.spec_from_file_location("bench_text", folder / "bench_text.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


STORY = [
    "The city council voted on Monday to close the old harbour bridge for a year, after"
    " engineers found that two of its piers had cracked during the winter storms, and"
    " that the road above them could no longer carry the weight of the buses and lorries.",
    "Ferries will run every twenty minutes while the bridge is closed, and the council"
    " said that the repairs would cost the town about four million pounds in all, to"
    " be paid for out of the money that had been set aside for a new library in the town.",
    "Shop owners on the quay said they feared the closure would keep visitors away from"
    " the old town for the whole of the summer season, when most of their trade is done, and"
    " they asked the council to put up signs showing the way to the quay from the station.",
]
PAGE = (
    "<html><head><title>Bridge to close | The Gazette</title></head><body>"
    "<ul><li><a href='/'>Home</a></li><li><a href='/news'>News</a></li>"
    "<li><a href='/sport'>Sport</a></li></ul><h1>Bridge to close</h1>"
    + "".join(f"<p>{p}</p>" for p in STORY)
    + "<div>Copyright 2026 The Gazette. All rights reserved.</div></body></html>"
).encode()
GOLD = "Bridge to close\n" + "\n".join(STORY)


def test_the_dump_is_cached_by_version_and_page(tmp_path: Path) -> None:
    b = bench()
    text = b.dump(PAGE, tmp_path)
    assert STORY[0] in text.splitlines() and "Home" in text
    assert len(list(tmp_path.glob("*.txt"))) == 1
    (cached,) = tmp_path.glob("*.txt")
    cached.write_text("from the cache", encoding="utf-8")
    assert b.dump(PAGE, tmp_path) == "from the cache"
    assert b.dump(PAGE + b" ", tmp_path) != "from the cache"  # another page, another key


def test_both_modes_of_our_text_path_and_the_peers_are_scored(tmp_path: Path) -> None:
    b = bench()
    text = b.dump(PAGE, None)
    heads = b.heads(PAGE)
    (tmp_path / "b").mkdir()
    (tmp_path / "d").mkdir()
    batch, _cpu = b.batch({"1.txt": text, "2.txt": ""}, tmp_path / "b")
    daily, _cpu, _wall = b.daily({"1.txt": text}, tmp_path / "d")
    assert batch["1.txt"] == daily["1.txt"]
    assert batch["2.txt"] == ("", "")  # rejected: nothing to score
    for body, lead in (batch["1.txt"], b.justext_kept(text)):
        precision, recall = b.page_scores(GOLD, body)
        assert precision > 0.9 and recall > 0.9
        assert b.lead_correct(GOLD, lead, heads)
    body, lead = b.keep_everything(text)
    assert body == text and lead == STORY[0]
    assert b.page_scores(GOLD, body)[0] < b.page_scores(GOLD, batch["1.txt"][0])[0]
    row = b.Row()
    assert not row.add("2", GOLD, batch["2.txt"], heads) and row.empty == 1
    assert row.f1s == {"2": 0.0}
