"""Time per MB of the text path's passes on adversarial input, from 10 KB to 5 MB.

Each input is a pattern repeated to the size: text where no full stop ends a sentence
("U.S. U.S. …", an unclosed bracket full of abbreviations), a page of headline-like lines,
a page of prose lines, a comment thread's rhythm, one-word lines. Each is split into
sentences (``summarize.split_sentences``), summarized (``lead_summary``) and cleaned
(``clean.clean_collection``); CPU seconds per MB are printed for every size, and the ratio
of the largest size's to the smallest's (linear time: about 1; quadratic: the size ratio).

    .venv/bin/python bench/bench_linear.py            # 10 KB, 100 KB, 1 MB, 5 MB
    .venv/bin/python bench/bench_linear.py --quick    # 10 KB and 100 KB
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import usage  # noqa: E402

from digest import clean, dates, summarize  # noqa: E402

UTC = dates.zone("UTC")
SIZES = (10_000, 100_000, 1_000_000, 5_000_000)
MAX_RATIO = 2.0  # per-MB cost at the largest size over the smallest: linear is about 1
NOISE_PER_MB = 0.02  # CPU s per MB below which a ratio is the clock's noise
PATTERNS = {
    "initialisms": "U.S. ",
    "unclosed bracket": "(e.g. the U.S. and Dr. Smith said ",
    "headline lines": "Harbour Council Meets Again On Tuesday Night\n",
    "prose lines": "The council voted on Monday to close the old bridge for a year, after"
    " engineers found cracks in two of its piers.\n",
    "comment rhythm": "Jane Doe\nMarch 3, 2019 at 10:15 am\nI agree with every word.\nReply\n",
    "one-word lines": "Word\n",
}


def _text(pattern: str, size: int) -> str:
    return (pattern * (size // len(pattern) + 1))[:size]


def _passes() -> dict[str, Callable[[str], object]]:
    return {
        "split_sentences": summarize.split_sentences,
        "lead_summary": lambda text: summarize.lead_summary(text.split("\n")),
        "clean": lambda text: list(clean.clean_collection([text], default_tz=UTC)),
    }


def _cpu(run: Callable[[str], object], text: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.process_time()
        run(text)
        times.append(time.process_time() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10 KB and 100 KB only")
    args = parser.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    heads = " | ".join(f"{size // 1000:,} KB" for size in sizes)
    print(f"CPU seconds per MB (median of 3 below 1 MB, 1 run above) | {heads} | largest/smallest")
    print("|---|" + "---:|" * (len(sizes) + 1))
    worst = 0.0
    for pass_name, run in _passes().items():
        for name, pattern in PATTERNS.items():
            per_mb = []
            for size in sizes:
                seconds = _cpu(run, _text(pattern, size), 3 if size < 1_000_000 else 1)
                per_mb.append(seconds / (size / 1_000_000))
            cells = " | ".join(f"{x:.2f}" for x in per_mb)
            if per_mb[0] < NOISE_PER_MB:  # the pass reads a bounded part (a lead): no ratio
                print(f"| {pass_name}: {name} | {cells} | – |")
                continue
            ratio = per_mb[-1] / per_mb[0]
            worst = max(worst, ratio)
            print(f"| {pass_name}: {name} | {cells} | {ratio:.1f} |")
    verdict = "PASS" if worst <= MAX_RATIO else "FAIL"
    print(f"\n{verdict} worst largest/smallest ratio: {worst:.1f} (target ≤ {MAX_RATIO})")
    if worst > MAX_RATIO:
        sys.exit(1)


if __name__ == "__main__":
    usage.report()
    main()
