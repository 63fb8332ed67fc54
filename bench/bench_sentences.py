"""Sentence splitting: ``summarize.split_sentences`` against pySBD and syntok, in one run.

Acceptance target: at least 20× pySBD's throughput with at least pySBD's accuracy on the 48
English golden rules (pySBD passes 47).

The text is ≥ 1 MB of distinct news prose built from real stories (the CNN sample in
../shared/data when present, the seeds, the test corpus): paragraphs of sentences drawn at
random, each with its inner words shuffled (seeded), so no paragraph repeats. Every splitter
gets the same paragraphs one by one, as the summarizer does; the three are timed in turn,
several rounds, and the median of each is reported.

    .venv/bin/python bench/bench_sentences.py           # 1 MB, 5 rounds
    .venv/bin/python bench/bench_sentences.py --quick   # 200 kB, 1 round (smoke test)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import usage  # noqa: E402

from digest import readers  # noqa: E402
from digest.summarize import split_sentences  # noqa: E402

GOLDEN = ROOT / "tests" / "data" / "golden_rules_en.jsonl"
CNN = ROOT.parent / "shared" / "data" / "cnndm_lead_sample.jsonl"
SOURCES = [ROOT / "seeds", ROOT / "tests" / "data" / "corpus"]
TARGET_SPEEDUP = 20.0
CONTENTION = 1.15  # wall / CPU time above which a round is flagged as sharing its core
Splitter = Callable[[str], list[str]]

# Only to cut the source stories into sentences to shuffle: crude on purpose, and not timed.
_CRUDE_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"“])")


def story_texts() -> list[str]:
    texts = []
    if CNN.is_file():
        texts += [json.loads(line)["article"] for line in CNN.read_text().splitlines() if line]
    for folder in SOURCES:
        texts += [readers.decode(p.read_bytes()) for p in sorted(folder.rglob("*.txt"))]
    return texts


def build_text(target_bytes: int, seed: int) -> list[str]:
    """Distinct paragraphs of news prose, ``target_bytes`` of UTF-8 in all."""
    pool = [
        sentence
        for text in story_texts()
        for paragraph in re.split(r"\n\s*\n", text)
        for sentence in _CRUDE_SENTENCE_END.split(" ".join(paragraph.split()))
        if len(sentence.split()) >= 4
    ]
    rng = random.Random(seed)
    paragraphs: list[str] = []
    size = 0
    while size < target_bytes:
        sentences = []
        for sentence in rng.sample(pool, rng.randint(2, 6)):
            words = sentence.split()
            middle = words[1:-1]
            rng.shuffle(middle)  # first word keeps its capital, last word its full stop
            sentences.append(" ".join([words[0], *middle, words[-1]]))
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        size += len(paragraph.encode("utf-8")) + 1
    return paragraphs


def splitters() -> dict[str, Splitter]:
    import pysbd
    from syntok import segmenter

    pysbd_segmenter = pysbd.Segmenter(language="en", clean=False)

    def with_pysbd(text: str) -> list[str]:
        return [s.strip() for s in pysbd_segmenter.segment(text)]

    def with_syntok(text: str) -> list[str]:
        return [
            "".join(token.spacing + token.value for token in sentence).strip()
            for paragraph in segmenter.process(text)
            for sentence in paragraph
        ]

    return {"digest.summarize": split_sentences, "pysbd 0.3": with_pysbd, "syntok": with_syntok}


def golden_passed(split: Splitter) -> int:
    rules = [json.loads(line) for line in GOLDEN.read_text().splitlines() if line.strip()]
    return sum(split(rule["text"]) == rule["expected"] for rule in rules)


def time_once(split: Splitter, paragraphs: list[str]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, sentences) for one pass over every paragraph."""
    wall, cpu = time.perf_counter(), time.process_time()
    found = sum(len(split(p)) for p in paragraphs)
    return time.perf_counter() - wall, time.process_time() - cpu, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 kB of text, 1 round")
    parser.add_argument("--bytes", type=int, default=None, help="text size (default 1,000,000)")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 5)")
    parser.add_argument("--seed", type=int, default=20190301)
    parser.add_argument("--cpu", type=int, default=None, help="pin the process to this core")
    args = parser.parse_args()
    size = args.bytes or (200_000 if args.quick else 1_000_000)
    rounds = args.rounds or (1 if args.quick else 5)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})

    paragraphs = build_text(size, args.seed)
    total = sum(len(p.encode("utf-8")) + 1 for p in paragraphs)
    fingerprint = hashlib.sha256((ROOT / "digest" / "summarize.py").read_bytes()).hexdigest()
    print(
        f"text: {total:,} bytes, {len(paragraphs):,} paragraphs "
        f"({len(set(paragraphs)):,} distinct), seed {args.seed}"
        f"{'' if CNN.is_file() else ' (CNN sample absent: seeds and corpus only)'}"
    )
    print(f"digest/summarize.py sha256 {fingerprint[:12]}; {rounds} round(s), medians\n")

    chosen = splitters()
    for split in chosen.values():  # warm-up: imports, regex compilation, pySBD's caches
        split(paragraphs[0])
    walls: dict[str, list[float]] = {name: [] for name in chosen}
    cpus: dict[str, list[float]] = {name: [] for name in chosen}
    counts: dict[str, int] = {}
    flagged = 0
    for _ in range(rounds):
        for name, split in chosen.items():
            wall, cpu, counts[name] = time_once(split, paragraphs)
            walls[name].append(wall)
            cpus[name].append(cpu)
            flagged += wall > CONTENTION * cpu
    accuracy = {name: golden_passed(split) for name, split in chosen.items()}
    rate = {name: total / 1e6 / statistics.median(t) for name, t in walls.items()}
    cpu_rate = {name: total / 1e6 / statistics.median(t) for name, t in cpus.items()}

    base = rate["pysbd 0.3"]
    print("| splitter | MB/s (wall) | × pySBD | MB/s (CPU) | sentences | golden rules |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in chosen:
        print(
            f"| {name} | {rate[name]:.2f} | {rate[name] / base:.1f}× | {cpu_rate[name]:.2f} "
            f"| {counts[name]:,} | {accuracy[name]}/48 |"
        )
    if flagged:
        print(
            f"\n{flagged} of {rounds * len(chosen)} timed passes shared their core "
            f"(wall > {CONTENTION}× CPU): compare the CPU column"
        )
    ours = "digest.summarize"
    ok = rate[ours] >= TARGET_SPEEDUP * base and accuracy[ours] >= accuracy["pysbd 0.3"]
    print(
        f"\ntarget: ≥ {TARGET_SPEEDUP:.0f}× pySBD's throughput with ≥ its golden rules: "
        f"{rate[ours] / base:.1f}×, {accuracy[ours]} vs {accuracy['pysbd 0.3']}: "
        f"{'MET' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    usage.report()
    sys.exit(main())
