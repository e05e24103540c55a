"""The audit rows the database refused, kept in an append-only JSON-lines file until replayed.

Writers append one line each under an exclusive flock and fsync it. The replay (the beat task
audit.tasks.replay_spool) takes the same lock, renames the file aside (new rows then start a new
file: a writer that waited on the lock sees the rename and opens the new one), inserts every line
(ON CONFLICT DO NOTHING on event_id: a replay cut short and run again inserts nothing twice), and
removes the file only once all its rows are in the table.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from django.conf import settings

log = logging.getLogger("joliba.audit")

SPOOL_NAME = "audit-spool.jsonl"
REPLAYING = ".replaying"


def spool_path() -> Path:
    return Path(settings.AUDIT_SPOOL_DIR) / SPOOL_NAME


def spool(row: dict[str, Any], *, refused: bool = True) -> None:
    """Append one row to the spool file and fsync it; log it whole if even that fails.
    `refused`: the database refused the row (an error), rather than a row kept there by design."""
    line = (json.dumps(row, default=str, separators=(",", ":")) + "\n").encode()
    path = spool_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    current = os.stat(path).st_ino
                except FileNotFoundError:
                    current = None
                if current != os.fstat(fd).st_ino:
                    continue  # the replay moved this file aside while we waited: open the new one
                os.write(fd, line)
                os.fsync(fd)
                break
            finally:
                os.close(fd)  # releases the lock
    except Exception:
        log.critical("audit: row lost to both the database and the spool file: %s", line.decode().strip())
        return
    level = logging.ERROR if refused else logging.INFO
    log.log(level, "audit: %s (%s) kept in the spool file %s", row.get("action"), row.get("outcome"), path)


def pending_files() -> list[Path]:
    folder = spool_path().parent
    return sorted(folder.glob(f"{SPOOL_NAME}.*{REPLAYING}")) if folder.is_dir() else []


def replay_spool() -> int:
    """Insert every spooled row into the table; returns how many lines were replayed."""
    path = spool_path()
    if path.exists():
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.rename(path, path.with_name(f"{SPOOL_NAME}.{time.time_ns()}{REPLAYING}"))
        finally:
            os.close(fd)
    replayed = 0
    for aside in pending_files():
        replayed += _replay_file(aside)
    return replayed


def _replay_file(aside: Path) -> int:
    from .api import event_of
    from .models import AuditEvent

    events, bad = [], 0
    for number, line in enumerate(aside.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(event_of(json.loads(line), spooled=True))
        except (ValueError, TypeError, KeyError):
            bad += 1  # a line cut by a crash mid-write: kept in the log, never dropped silently
            log.error("audit: unreadable spool line %s:%s: %s", aside.name, number, line[:2000])
    AuditEvent.objects.bulk_create(events, ignore_conflicts=True, batch_size=500)
    aside.unlink()
    log.info("audit: %s spooled rows replayed from %s (%s unreadable)", len(events), aside.name, bad)
    return len(events)
