"""The durable local queue (SQLite, WAL, synchronous=FULL): survives reboots and power cuts.

Every step that matters (file compressed, upload created, item acknowledged) is committed
before the next begins, so a killed agent restarts exactly where it was.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

PRIORITY_RANK = {"stat": 0, "urgent": 1, "routine": 2}

SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
    id TEXT PRIMARY KEY, study_uid TEXT NOT NULL, priority TEXT NOT NULL, rank INTEGER NOT NULL,
    indication TEXT NOT NULL DEFAULT '', posted INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL DEFAULT (julianday('now'))
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY AUTOINCREMENT, manifest_id TEXT NOT NULL REFERENCES manifests(id),
    kind TEXT NOT NULL, path TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL,
    size INTEGER NOT NULL, raw_size INTEGER NOT NULL, tus_url TEXT, state TEXT NOT NULL DEFAULT 'pending',
    outcome TEXT NOT NULL DEFAULT '', code TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS instances (
    source_key TEXT PRIMARY KEY, sop_uid TEXT NOT NULL, manifest_id TEXT NOT NULL,
    item_id INTEGER, sha256 TEXT NOT NULL, size INTEGER NOT NULL, raw_size INTEGER NOT NULL,
    codec TEXT NOT NULL, lossy_ratio REAL
);
CREATE INDEX IF NOT EXISTS items_state ON items(state);
"""


class QueuedInstance(TypedDict):
    """One DICOM instance as queued: where it came from, what travels for it."""

    source_key: str
    sop_uid: str
    sha256: str
    size: int
    raw_size: int
    codec: str
    lossy_ratio: float | None
    path: Path


@dataclass
class Item:
    id: int
    manifest_id: str
    kind: str
    path: Path
    name: str
    sha256: str
    size: int
    raw_size: int
    tus_url: str | None
    state: str
    attempts: int
    priority: str


class Queue:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.outbox = self.state_dir / "outbox"
        self.outbox.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.state_dir / "queue.sqlite3", timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before we go on
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- filling -----------------------------------------------------------------------
    def known_source(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM instances WHERE source_key=?", (key,)).fetchone() is not None

    def add_manifest(self, *, study_uid: str, priority: str, indication: str) -> str:
        manifest_id = str(uuid.uuid4())
        self.db.execute(
            # posted=-1: still being filled; the sender leaves it alone until mark_ready().
            "INSERT INTO manifests(id, study_uid, priority, rank, indication, posted) VALUES (?,?,?,?,?,-1)",
            (manifest_id, study_uid, priority, PRIORITY_RANK.get(priority, 2), indication),
        )
        return manifest_id

    def mark_ready(self, manifest_id: str) -> None:
        self.db.execute("UPDATE manifests SET posted=0 WHERE id=? AND posted=-1", (manifest_id,))

    def recover_half_queued(self) -> None:
        """A study whose queueing a crash interrupted: send what was queued; the rest is queued anew."""
        self.db.execute("UPDATE manifests SET posted=0 WHERE posted=-1")

    def add_item(
        self,
        *,
        manifest_id: str,
        kind: str,
        path: Path,
        name: str,
        sha256: str,
        size: int,
        raw_size: int,
        instances: list[QueuedInstance],
    ) -> int:
        with self.db:
            self.db.execute("BEGIN")
            cur = self.db.execute(
                "INSERT INTO items(manifest_id, kind, path, name, sha256, size, raw_size)"
                " VALUES (?,?,?,?,?,?,?)",
                (manifest_id, kind, str(path), name, sha256, size, raw_size),
            )
            item_id = cur.lastrowid
            assert item_id is not None  # an INSERT always sets it
            for inst in instances:
                self.db.execute(
                    "INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        inst["source_key"],
                        inst["sop_uid"],
                        manifest_id,
                        item_id,
                        inst["sha256"],
                        inst["size"],
                        inst["raw_size"],
                        inst["codec"],
                        inst["lossy_ratio"],
                    ),
                )
        return item_id

    # --- sending -----------------------------------------------------------------------
    def manifests_to_post(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, study_uid, priority, indication FROM manifests WHERE posted=0 ORDER BY rank, created"
        ).fetchall()
        out = []
        for mid, study_uid, priority, indication in rows:
            instances = [
                {"sop_instance_uid": sop, "sha256": sha, "size": size, "raw_size": raw_size}
                for sop, sha, size, raw_size in self.db.execute(
                    "SELECT i.sop_uid, i.sha256, i.size, i.raw_size"
                    " FROM instances i JOIN items t ON t.id=i.item_id "
                    "WHERE i.manifest_id=? AND t.kind!='preview'",
                    (mid,),
                )
            ]
            out.append(
                {
                    "id": mid,
                    "study_instance_uid": study_uid,
                    "priority": priority,
                    "indication": indication,
                    "instances": instances,
                }
            )
        return out

    def mark_posted(self, manifest_id: str) -> None:
        self.db.execute("UPDATE manifests SET posted=1 WHERE id=?", (manifest_id,))

    def next_item(self) -> Item | None:
        """Previews of every study first (pre-read and ranking start early), then by urgency:
        a STAT study queued now overtakes routine ones already waiting."""
        row = self.db.execute(
            "SELECT t.id, t.manifest_id, t.kind, t.path, t.name, t.sha256, t.size, t.raw_size, t.tus_url,"
            " t.state, t.attempts, m.priority FROM items t JOIN manifests m ON m.id=t.manifest_id"
            " WHERE t.state='pending' AND m.posted=1"
            " ORDER BY (t.kind='preview') DESC, m.rank, m.created, t.id LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return Item(row[0], row[1], row[2], Path(row[3]), *row[4:])

    def set_tus_url(self, item_id: int, url: str | None) -> None:
        self.db.execute("UPDATE items SET tus_url=?, attempts=attempts+1 WHERE id=?", (url, item_id))

    def finish(self, item_id: int, outcome: str, code: str = "") -> None:
        self.db.execute(
            "UPDATE items SET state='done', outcome=?, code=? WHERE id=?", (outcome, code, item_id)
        )

    def pending_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM items WHERE state='pending'").fetchone()[0])

    def open_manifests(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT id FROM manifests WHERE complete=0 AND posted=1")]

    def mark_complete(self, manifest_id: str) -> None:
        self.db.execute("UPDATE manifests SET complete=1 WHERE id=?", (manifest_id,))

    def totals(self, manifest_ids: list[str] | None = None) -> dict[str, dict[str, Any]]:
        where = ""
        args: tuple[str, ...] = ()
        if manifest_ids is not None:
            where = f"WHERE manifest_id IN ({','.join('?' * len(manifest_ids))})"
            args = tuple(manifest_ids)
        rows = self.db.execute(
            f"SELECT kind, count(*), sum(size), sum(raw_size), group_concat(outcome) FROM items {where}"
            " GROUP BY kind",
            args,
        ).fetchall()
        return {
            kind: {
                "items": n,
                "bytes": size or 0,
                "raw": raw or 0,
                "outcomes": json.dumps(sorted(set(filter(None, (o or "").split(","))))),
            }
            for kind, n, size, raw, o in rows
        }

    # --- for the receiver and the watched folder (siteagent/grouping.py) ----------------
    def known_sop(self, sop_uid: str) -> bool:
        """Whether an instance with this SOP Instance UID is already queued: a modality resending
        what it sent before (its own retry, or after our restart) is not sent twice."""
        row = self.db.execute("SELECT 1 FROM instances WHERE sop_uid=? LIMIT 1", (sop_uid,)).fetchone()
        return row is not None
