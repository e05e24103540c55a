"""Bundles: a stored (uncompressed) ZIP of small instances, checked before a byte is unpacked.

Never trusted on its headers alone:

1. the end-of-central-directory record is read first: too many entries, or a central directory
   larger than that many entries can need, is refused before zipfile parses it;
2. every entry must be stored (no compression), none larger than the bundle, its data range
   inside the file and before the central directory;
3. no two entries may share or overlap their data (a "zip bomb by overlap", David Fifield 2019:
   2,000 entries pointing at the same megabyte expand to 2 GB);
4. the declared total (sum of `file_size`) must fit the per-file limit, the ratio to the bundle's
   size, and the site's spool room (ingest.quota) — before extraction;
5. while extracting, the bytes really written are counted and the extraction stops at the
   declared total (and at the limit), whatever the headers said;
6. a member that is itself a ZIP is refused on its own (no nested archives).
"""

from __future__ import annotations

import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from ingest import quota

from .refusals import UploadRefused

EOCD = b"PK\x05\x06"
EOCD_SIZE = 22
LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes
LOCAL_SIGNATURE = b"PK\x03\x04"
# A central-directory entry: 46 bytes + name (≤ 255 here) + extra + comment; 1 KiB is generous.
CENTRAL_ENTRY_MAX = 1024
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


def max_members() -> int:
    return int(settings.UPLOADS_BUNDLE_MAX_MEMBERS)


def max_ratio() -> float:
    return float(settings.UPLOADS_BUNDLE_MAX_RATIO)


@dataclass(frozen=True)
class Member:
    info: zipfile.ZipInfo
    index: int
    name: str


def _end_record(path: Path) -> tuple[int, int, int]:
    """(entries, central directory size, its offset) from the EOCD record, read by hand."""
    size = path.stat().st_size
    with path.open("rb") as f:
        tail_len = min(size, EOCD_SIZE + 0xFFFF)  # the record, then a comment of ≤ 64 KiB
        f.seek(size - tail_len)
        tail = f.read(tail_len)
    at = tail.rfind(EOCD)
    if at < 0 or len(tail) - at < EOCD_SIZE:
        raise UploadRefused(400, "bundle_unreadable")
    _sig, _disk, _cd_disk, _here, entries, cd_size, cd_offset, _comment = struct.unpack(
        "<4sHHHHIIH", tail[at : at + EOCD_SIZE]
    )
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        raise UploadRefused(400, "bundle_unreadable")  # ZIP64: never needed by a bundle of small files
    return entries, cd_size, cd_offset


def _data_range(f, info: zipfile.ZipInfo, end: int) -> tuple[int, int]:
    """[start, stop) of an entry's local header and data, from its local header."""
    f.seek(info.header_offset)
    header = f.read(LOCAL_HEADER.size)
    if len(header) != LOCAL_HEADER.size:
        raise UploadRefused(400, "bundle_unreadable")
    fields = LOCAL_HEADER.unpack(header)
    if fields[0] != LOCAL_SIGNATURE:
        raise UploadRefused(400, "bundle_unreadable")
    name_len, extra_len = fields[9], fields[10]
    stop = info.header_offset + LOCAL_HEADER.size + name_len + extra_len + info.compress_size
    if stop > end:
        raise UploadRefused(400, "bundle_unreadable")
    return info.header_offset, stop


def inspect(path: Path, *, site_id: int, bundle_length: int) -> list[Member]:
    """The bundle's members, after every check that can be made before extraction."""
    entries, cd_size, cd_offset = _end_record(path)
    limit = max_members()
    if entries > limit or cd_size > limit * CENTRAL_ENTRY_MAX:
        raise UploadRefused(400, "bundle_too_many", limit=limit)
    try:
        with zipfile.ZipFile(path) as bundle:
            infos = bundle.infolist()
            cd_start = bundle.start_dir
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise UploadRefused(400, "bundle_unreadable") from exc
    if len(infos) > limit:
        raise UploadRefused(400, "bundle_too_many", limit=limit)
    members = [
        Member(info=info, index=i, name=Path(info.filename).name[:255]) for i, info in enumerate(infos)
    ]
    members = [m for m in members if not m.info.is_dir()]
    if not members:
        raise UploadRefused(400, "bundle_empty")
    total = 0
    for m in members:
        info = m.info
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise UploadRefused(400, "bundle_bad_member")
        if info.file_size > bundle_length or info.flag_bits & 0x1:  # larger than the bundle; encrypted
            raise UploadRefused(400, "bundle_bad_member")
        total += info.file_size
    file_limit = quota.max_file_bytes()
    if total > file_limit:
        raise UploadRefused(400, "bundle_too_large", limit_mb=max(1, file_limit // 1024**2))
    if bundle_length and total > max_ratio() * bundle_length:
        raise UploadRefused(400, "bundle_ratio")
    # Overlap: each entry's local header + data must be its own, inside the file, before the
    # central directory (which must itself be where the EOCD says).
    with path.open("rb") as f:
        ranges = sorted(_data_range(f, m.info, cd_start) for m in members)
    previous_stop = 0
    for start, stop in ranges:
        if start < previous_stop:
            raise UploadRefused(400, "bundle_overlap")
        previous_stop = stop
    if cd_start < previous_stop or cd_offset > cd_start:
        raise UploadRefused(400, "bundle_overlap")
    try:
        quota.check_room(site_id, total)  # the bundle itself is already counted (its offset)
    except quota.LimitExceeded as exc:
        raise UploadRefused(413, exc.code, **exc.params) from None
    return members


def extract(path: Path, members: list[Member], work: Path) -> list[tuple[Member, Path]]:
    """Unpack `members` (checked by inspect) under `work`, counting every byte written: a member
    yielding more than it declared, or a total past the declared one, stops the extraction."""
    declared_total = sum(m.info.file_size for m in members)
    written_total = 0
    out: list[tuple[Member, Path]] = []
    try:
        with zipfile.ZipFile(path) as bundle:
            for m in members:
                target = work / f"{m.index:05d}.dcm"  # never trust member names for paths
                written = 0
                with bundle.open(m.info) as src, target.open("wb") as dst:
                    while True:
                        block = src.read(1 << 20)
                        if not block:
                            break
                        written += len(block)
                        written_total += len(block)
                        if written > m.info.file_size or written_total > declared_total:
                            raise UploadRefused(
                                400, "bundle_too_large", limit_mb=max(1, declared_total // 1024**2)
                            )
                        dst.write(block)
                out.append((m, target))
    except UploadRefused:
        raise
    except Exception as exc:  # zipfile fails in many ways (bad CRC, cut short...)
        raise UploadRefused(400, "bundle_unreadable") from exc
    return out


def is_zip(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4) in ZIP_MAGICS
