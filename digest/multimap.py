"""A compact multimap for what a long batch remembers: strings → small ints, in arrays.

``store.Written`` keeps every key of every story a batch stored (three or more a story) so
that a later chunk's copies fold into them; as dicts of str → tuples that costs most of a
kilobyte a story, so a batch's peak memory grew with its size. Here a key is a 64-bit code
(``code``) in an open-addressing table of arrays, and each value an entry of a linked list
(in the order added): 8 bytes an entry and 16 a bucket, a table at most two-thirds full.
"""

from __future__ import annotations

import hashlib
from array import array

_EMPTY = -1
_MIN_BUCKETS = 1 << 10
_HEX = frozenset("0123456789abcdef")


def code(text: str) -> int:
    """The 64-bit code of a key: a 16-hex-digit hash (the store's ids and body keys) is read
    as the number it is, so distinct ones never share a code; any other string is hashed
    (two that share a code only make a false candidate, which the caller checks)."""
    if len(text) == 16 and _HEX.issuperset(text):
        return int(text, 16)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def hex_name(number: int) -> str:
    """The 16-hex-digit key whose ``code`` is ``number``."""
    return f"{number:016x}"


class Multimap:
    """Codes → the ints added under each, in the order added (repeats kept)."""

    __slots__ = ("_codes", "_first", "_last", "_next", "_used", "_values")

    def __init__(self) -> None:
        self._codes, self._first, self._last = _table(_MIN_BUCKETS)
        self._values = array("i")
        self._next = array("i")
        self._used = 0

    def get(self, key: int, limit: int | None = None) -> list[int]:
        """The ints under ``key``, oldest first; no more than ``limit`` of them."""
        found: list[int] = []
        entry = self._first[self._bucket(key)]
        while entry != _EMPTY and (limit is None or len(found) < limit):
            found.append(self._values[entry])
            entry = self._next[entry]
        return found

    def add(self, key: int, value: int) -> None:
        """``value`` under ``key``, after those already there."""
        bucket = self._bucket(key)
        entry = len(self._values)
        self._values.append(value)
        self._next.append(_EMPTY)
        if self._first[bucket] == _EMPTY:
            self._codes[bucket] = key
            self._first[bucket] = entry
            self._used += 1
        else:
            self._next[self._last[bucket]] = entry
        self._last[bucket] = entry
        if 3 * self._used > 2 * len(self._codes):
            self._grow()

    def _bucket(self, key: int) -> int:
        """Where ``key`` is, or the empty bucket where it would go (linear probing)."""
        mask = len(self._codes) - 1
        bucket = (key ^ (key >> 32)) & mask
        while self._first[bucket] != _EMPTY and self._codes[bucket] != key:
            bucket = (bucket + 1) & mask
        return bucket

    def _grow(self) -> None:
        codes, first, last = self._codes, self._first, self._last
        self._codes, self._first, self._last = _table(2 * len(codes))
        for old, head in enumerate(first):
            if head != _EMPTY:
                bucket = self._bucket(codes[old])
                self._codes[bucket] = codes[old]
                self._first[bucket] = head
                self._last[bucket] = last[old]


def _table(buckets: int) -> tuple[array[int], array[int], array[int]]:
    return array("Q", bytes(8 * buckets)), array("i", [_EMPTY]) * buckets, array("i", [0]) * buckets
