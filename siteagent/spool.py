"""The agent's spool: instances a modality sent (C-STORE) or a device exported (watched folder),
on disk before anyone is told they are received, grouped by study until the study goes quiet.

Layout under `root`:
    tmp/                        files being written (a crash leaves only garbage here, cleared at start)
    incoming/<StudyUID>/<SOPUID>.dcm   received, not yet queued; one folder per study
    sealed/<StudyUID>-<stamp>/   a quiet study taken out of incoming/, being queued for sending

Every file is written to tmp/, fsynced, renamed into place and its folder fsynced: once store_*()
returns, the instance survives a power cut. A study folder's newest file says when it last grew;
the quiet period counts from that, or from the agent's start if later (a modality resending after
a reboot gets its full quiet period).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
COPY_CHUNK = 1024 * 1024


class SpoolFull(Exception):
    """The spool is above its limit or the disk nearly full: refuse for now, the sender drains it."""


class BadInstance(ValueError):
    """An instance we cannot file (no or malformed Study/SOP Instance UID)."""


def valid_uid(value: object) -> str:
    text = str(value or "").strip().rstrip("\x00")
    if not (0 < len(text) <= 64 and UID.match(text)):
        raise BadInstance(f"UID absent ou invalide : {text[:70]!r}")
    return text


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, root: Path, *, max_bytes: int, min_free_bytes: int = 200 * 1024**2) -> None:
        self.root = Path(root)
        self.tmp, self.incoming, self.sealed = self.root / "tmp", self.root / "incoming", self.root / "sealed"
        for d in (self.tmp, self.incoming, self.sealed):
            d.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp.iterdir():  # half-written by a killed agent: never acknowledged
            leftover.unlink(missing_ok=True)
        self.max_bytes, self.min_free_bytes = max_bytes, min_free_bytes
        self.started = time.time()
        # One lock between the writers (receiver threads, watcher) and seal(): a file is renamed
        # either into the study folder before it is sealed, or into a fresh one after.
        self.lock = threading.Lock()
        self._used = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    # --- limits ------------------------------------------------------------------------
    def used_bytes(self) -> int:
        return self._used

    def check_room(self, incoming: int = 0) -> None:
        if self._used + incoming > self.max_bytes:
            raise SpoolFull(f"file d'attente locale pleine ({self._used // 2**20} Mo)")
        if shutil.disk_usage(self.root).free - incoming < self.min_free_bytes:
            raise SpoolFull("disque presque plein")

    # --- writing -----------------------------------------------------------------------
    def store_bytes(self, data: bytes, study_uid: str, sop_uid: str) -> Path:
        return self._store(lambda f: f.write(data), len(data), study_uid, sop_uid)

    def store_file(self, src: Path, study_uid: str, sop_uid: str) -> Path:
        def copy(f: BinaryIO) -> None:
            with src.open("rb") as s:
                shutil.copyfileobj(s, f, COPY_CHUNK)

        return self._store(copy, src.stat().st_size, study_uid, sop_uid)

    def adopt(self, src: Path, study_uid: str, sop_uid: str) -> Path:
        """File `src` (a temporary file on the spool's disk, e.g. pynetdicom's) without copying it."""
        study_uid, sop_uid = valid_uid(study_uid), valid_uid(sop_uid)
        size = src.stat().st_size
        self.check_room(size)
        fd = os.open(src, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            return self._place(src, size, study_uid, sop_uid)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            return self.store_file(src, study_uid, sop_uid)  # another file system: copied

    def _store(self, write: Callable[[BinaryIO], object], size: int, study_uid: str, sop_uid: str) -> Path:
        study_uid, sop_uid = valid_uid(study_uid), valid_uid(sop_uid)
        self.check_room(size)
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        try:
            with tmp.open("wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            final = self._place(tmp, size, study_uid, sop_uid)
        finally:
            tmp.unlink(missing_ok=True)
        return final

    def _place(self, tmp: Path, size: int, study_uid: str, sop_uid: str) -> Path:
        with self.lock:
            folder = self.incoming / study_uid
            if not folder.is_dir():
                folder.mkdir()
                fsync_dir(self.incoming)
            final = folder / f"{sop_uid}.dcm"
            replaced = final.stat().st_size if final.exists() else 0  # the same instance resent
            os.replace(tmp, final)
            fsync_dir(folder)
            self._used += size - replaced
        return final

    # --- grouping ----------------------------------------------------------------------
    def quiet_studies(self, quiet_s: float) -> list[Path]:
        """Study folders in incoming/ that have not grown for quiet_s seconds."""
        now, out = time.time(), []
        for folder in sorted(self.incoming.iterdir()):
            files = list(folder.glob("*.dcm"))
            last = max([self.started, *(f.stat().st_mtime for f in files)])
            if now - last < quiet_s:
                continue
            if files:
                out.append(folder)
            else:  # left by a kill between mkdir and the first rename
                with self.lock:
                    if not any(folder.iterdir()):
                        folder.rmdir()
        return out

    def seal(self, folder: Path) -> Path:
        """Take a quiet study out of incoming/: instances arriving later start a new folder."""
        with self.lock:
            sealed = self.sealed / f"{folder.name}-{time.time_ns()}"
            os.replace(folder, sealed)
            fsync_dir(self.incoming)
            fsync_dir(self.sealed)
        return sealed

    def sealed_batches(self) -> Iterator[Path]:
        yield from sorted(p for p in self.sealed.iterdir() if p.is_dir())

    def remove(self, path: Path) -> None:
        size = path.stat().st_size
        path.unlink()
        with self.lock:
            self._used -= size

    def refuse(self, path: Path, folder: Path, reason: str) -> Path:
        size = path.stat().st_size
        target = refuse(path, folder, reason)
        with self.lock:
            self._used -= size
        return target

    def discard(self, batch: Path) -> None:
        """A sealed batch whose instances are all in the sending queue (its outbox has copies)."""
        for f in batch.iterdir():
            self.remove(f)
        batch.rmdir()
        fsync_dir(self.sealed)


def refuse(path: Path, folder: Path, reason: str) -> Path:
    """Move a file we will not send to `folder`, beside a .raison.txt saying why: never dropped."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder / f"{stamp}-{path.name}"
    while target.exists():
        target = folder / f"{stamp}-{uuid.uuid4().hex[:6]}-{path.name}"
    note = target.with_name(target.name + ".raison.txt")
    note.write_text(f"{path}\nrefusé le {time.strftime('%Y-%m-%d %H:%M:%S')} : {reason}\n", encoding="utf-8")
    shutil.move(path, target)
    fsync_dir(folder)
    return target
