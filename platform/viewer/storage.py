"""Rendition bytes on disk: content-addressed (the sha256 is the name), written atomically.

A file is written under a temporary name in its final folder, flushed, then renamed: a worker
killed mid-write leaves at worst a `.tmp-` file (swept by the backfill), never a half rendition
under a real name. Writing the same bytes twice is a no-op, so a task can simply run again.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

from django.conf import settings

TMP_PREFIX = ".tmp-"


def root() -> Path:
    return Path(settings.JOLIBA_RENDITIONS_ROOT)


def relative_path(digest: str) -> str:
    return f"{digest[:2]}/{digest}.webp"


def path_of(digest: str) -> Path:
    return root() / relative_path(digest)


def put(data: bytes) -> str:
    """Store the bytes (once) and return their sha256."""
    digest = hashlib.sha256(data).hexdigest()
    final = path_of(digest)
    if final.is_file() and final.stat().st_size == len(data):
        return digest
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
    try:
        with temporary.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return digest


def exists(digest: str, size: int) -> bool:
    try:
        return path_of(digest).stat().st_size == size
    except OSError:
        return False


def sweep_temporary(older_than_s: float = 3600) -> int:
    """Remove what killed writers left; returns how many files."""
    base = root()
    if not base.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for leftover in base.glob(f"*/{TMP_PREFIX}*"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                removed += 1
        except OSError:
            continue
    return removed
