"""Atomic file writes: a reader or a crash never sees half a file.

Each published page and feed (``.html``, ``.xml``) is also written gzipped beside itself
(``feed.xml.gz``), so nginx (``gzip_static``) and ``digest serve`` send it compressed without
compressing it on every request.
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path

from digest.errors import OutputError


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write ``data`` to a temp file beside ``path``, flush it, then rename it into place."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}; check outbox_dir") from exc


def write_if_changed(path: Path, data: bytes | str) -> bool:
    """Write atomically unless the file already holds ``data``: its mtime and ETag stay put.
    A page or feed gets its gzipped copy (``gzipped``) beside it, rewritten after the file
    itself, and again whenever it is older than the file (a crash between the two)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    packed = gzipped(path) if path.suffix in PRECOMPRESSED else None
    try:
        same = path.read_bytes() == payload
    except OSError:
        same = False  # missing or unreadable: write_atomic reports what is really wrong
    if not same:
        write_atomic(path, payload)
    if packed is not None and not (same and _newer(packed, path)):
        write_atomic(packed, gzip.compress(payload, compresslevel=9, mtime=0))
    return not same


PRECOMPRESSED = (".html", ".xml")  # the suffixes whose files get a gzipped copy


def gzipped(path: Path) -> Path:
    """Where the gzipped copy of ``path`` is: beside it, named ``NAME.gz``."""
    return path.with_name(path.name + ".gz")


def _newer(copy: Path, original: Path) -> bool:
    try:
        return copy.stat().st_mtime_ns >= original.stat().st_mtime_ns
    except OSError:
        return False
