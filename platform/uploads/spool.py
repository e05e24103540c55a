"""The bytes of resumable uploads on disk: one file per upload under INGEST_SPOOL_DIR/tus/.

Every write is fsynced before the offset that covers it is committed, so an offset the
server has announced always has its bytes on disk, even after a power cut.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from django.conf import settings

BLOCK = 64 * 1024
# A long PATCH commits its offset every CHECKPOINT bytes: a resume (or a server killed
# mid-request) then loses at most this much, not the whole request.
CHECKPOINT = 256 * 1024


def spool_dir() -> Path:
    path = Path(settings.INGEST_SPOOL_DIR) / "tus"
    path.mkdir(parents=True, exist_ok=True)
    return path


def part_path(upload_id: object) -> Path:
    return spool_dir() / f"{upload_id}.part"


def create_part(upload_id: object) -> Path:
    path = part_path(upload_id)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.fsync(fd)
    os.close(fd)
    _fsync_dir(path.parent)
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_from(
    path: Path,
    offset: int,
    read: Callable[[int], bytes],
    limit: int,
    digest=None,
    checkpoint: Callable[[int], None] | None = None,
) -> tuple[int, bool]:
    """Write up to `limit` bytes read from `read` at `offset`; fsync; return (written, complete).

    Stops early when the stream ends (a dropped link): what arrived is kept and counted,
    as tus asks, unless the caller checks a per-request checksum and discards it.
    """
    written = 0
    fd = os.open(path, os.O_WRONLY)
    try:
        while written < limit:
            try:
                block = read(min(BLOCK, limit - written))
            except OSError:  # connection reset mid-body; Django wraps it as UnreadablePostError
                break
            if not block:
                break
            if digest is not None:
                digest.update(block)
            os.pwrite(fd, block, offset + written)
            written += len(block)
            if checkpoint and written % CHECKPOINT < len(block):
                os.fsync(fd)  # on disk first, then the offset that covers it
                checkpoint(written)
        os.fsync(fd)
    finally:
        os.close(fd)
    return written, written == limit


def truncate(path: Path, length: int) -> None:
    """Drop bytes past the acknowledged offset (written, never committed, before a crash)."""
    if path.exists() and path.stat().st_size > length:
        os.truncate(path, length)


def sha256_of(path: Path, length: int | None = None) -> str:
    digest = hashlib.sha256()
    remaining = length if length is not None else path.stat().st_size
    with path.open("rb") as f:
        while remaining > 0:
            block = f.read(min(1 << 20, remaining))
            if not block:
                break
            digest.update(block)
            remaining -= len(block)
    return digest.hexdigest()


def remove(upload_id: object) -> None:
    part_path(upload_id).unlink(missing_ok=True)
