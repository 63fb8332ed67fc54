"""Fuzzing at length: the ingest property tests' generators, 50,000 inputs in all.

Each target takes generated input (``tests/test_ingest_properties.py``'s strategies: hostile
characters, half-dates, broken feeds and pages, JSON Feeds, subscriber CSVs, lines of page
furniture) and may only answer with a ``DigestError``; any other exception is a crash. The
CPU time of each call is measured (but the first's, which pays for imports; CPU, as the
machine may be busy), and the slowest input of each target is printed, with the whole
run's wall and CPU time.

    .venv/bin/python bench/bench_fuzz.py                   # 50,000 inputs (~7 min)
    .venv/bin/python bench/bench_fuzz.py --inputs 100000   # at greater length (~13 min)
    .venv/bin/python bench/bench_fuzz.py --quick           # 2,000 inputs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import usage  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from digest import clean, dates, readers, segment, subscribers  # noqa: E402
from digest.errors import DigestError  # noqa: E402
from tests import test_ingest_properties as props  # noqa: E402

UTC = dates.zone("UTC")
MAX_SECONDS = 1.0  # the slowest input of any target


def _feed(data: bytes) -> None:
    site, entries = readers.read_feed(data)
    for entry in entries:
        readers.read_entry(entry, site, UTC)


def _json_feed(feed: Any) -> None:
    _feed(json.dumps(feed, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _csv(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "people.csv"
        path.write_bytes(data)
        subscribers.read_csv(path)


def _segment(text: str) -> None:
    segment.segments(segment.prepare(readers.printable(text)))


# target: (what it calls, its input, its share of the inputs)
TARGETS: dict[str, tuple[Callable[[Any], object], Any, float]] = {
    "dates.find_date": (lambda t: dates.find_date(t, UTC), props.TEXT | props.DATE_LIKE, 0.15),
    "readers.decode": (readers.decode, props.SOME_BYTES, 0.15),
    "feeds (RSS, Atom)": (_feed, st.one_of(props.FEED.map(props.utf8), props.SOME_BYTES), 0.15),
    "JSON Feed": (_json_feed, props.JSON_FEED, 0.10),
    "HTML pages": (
        lambda d: readers.read_html(d, UTC),
        st.one_of(props.PAGE.map(props.utf8), props.SOME_BYTES),
        0.05,
    ),
    "segmenter": (_segment, props.PAGE_TEXT | props.TEXT, 0.15),
    "cleaner": (
        lambda texts: [list(d) for d in clean.clean_collection(texts, default_tz=UTC)],
        st.lists(props.PAGE_TEXT, min_size=1, max_size=3),
        0.15,
    ),
    "subscriber CSV": (_csv, props.CSV_BYTES, 0.10),
}


def fuzz(name: str, call: Callable[[Any], object], strategy: Any, examples: int) -> tuple:
    """(inputs, crashes, slowest seconds, the slowest input's repr) of one target."""
    seen = {"inputs": 0, "crashes": 0, "slowest": 0.0, "input": ""}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(value: Any) -> None:
        seen["inputs"] += 1
        started = time.process_time()
        try:
            call(value)
        except DigestError:
            pass
        except Exception as exc:  # a crash: counted and shown, the run goes on
            seen["crashes"] += 1
            print(f"  CRASH in {name}: {type(exc).__name__}: {exc} on {value!r:.200}")
        took = time.process_time() - started
        if seen["inputs"] > 1 and took > seen["slowest"]:  # the first one imports (trafilatura…)
            seen["slowest"], seen["input"] = took, repr(value)[:80]

    run()
    return seen["inputs"], seen["crashes"], seen["slowest"], seen["input"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="2,000 inputs in all")
    parser.add_argument("--inputs", type=int, default=50_000)
    args = parser.parse_args()
    total = 2_000 if args.quick else args.inputs
    print("| target | inputs | crashes | slowest input (CPU s) |")
    print("|---|---:|---:|---:|")
    inputs = crashes = 0
    slowest = 0.0
    started, cpu = time.perf_counter(), time.process_time()
    for name, (call, strategy, share) in TARGETS.items():
        n, bad, worst, _ = fuzz(name, call, strategy, max(1, round(total * share)))
        inputs, crashes, slowest = inputs + n, crashes + bad, max(slowest, worst)
        print(f"| {name} | {n:,} | {bad} | {worst:.3f} |", flush=True)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    ok = crashes == 0 and slowest <= MAX_SECONDS
    print(
        f"\n{'PASS' if ok else 'FAIL'} {inputs:,} inputs in {wall:.0f} s wall, {cpu:.0f} s CPU: "
        f"{crashes} crashes, slowest input {slowest:.3f} s CPU (target 0 crashes, "
        f"≤ {MAX_SECONDS:.0f} s)"
    )
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    usage.report()
    main()
