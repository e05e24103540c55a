"""The durable local queue (SQLite, WAL, synchronous=FULL): survives reboots and power cuts.

Every step that matters (file compressed, upload created, item acknowledged) is committed
before the next begins, so a killed agent restarts exactly where it was.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

PRIORITY_RANK = {"stat": 0, "urgent": 1, "routine": 2}
# Outcomes the agent decides without sending (an item's, or an instance's):
ALREADY_RECEIVED = "already_received"  # the centre's manifest answer: it has the instance
DUPLICATE_IN_QUEUE = "duplicate_in_queue"  # another file with the same SOP Instance UID is queued

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
-- Encode while sending (siteagent/pipeline.py): members of a study identified and announced, to be
-- compressed in the background. state: pending, queued (in an item), already_received, failed.
CREATE TABLE IF NOT EXISTS planned (
    source_key TEXT PRIMARY KEY, manifest_id TEXT NOT NULL REFERENCES manifests(id), path TEXT NOT NULL,
    sop_uid TEXT NOT NULL, series TEXT NOT NULL, number INTEGER NOT NULL, raw_size INTEGER NOT NULL,
    estimate INTEGER NOT NULL, state TEXT NOT NULL DEFAULT 'pending', reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS planned_state ON planned(state, manifest_id);
CREATE INDEX IF NOT EXISTS planned_sop ON planned(sop_uid);
CREATE INDEX IF NOT EXISTS items_state ON items(state);
CREATE INDEX IF NOT EXISTS instances_sop ON instances(sop_uid);
"""
# Columns added after the first release: a queue from an older agent gets them on opening.
ADDED_COLUMNS = {"instances": {"outcome": "TEXT NOT NULL DEFAULT ''"}}


def _when_unlocked(step: Callable[[], None], deadline: float) -> None:
    """Run `step`, again while another connection holds the file: SQLite answers a change of
    journal mode (or a WAL recovery after a kill) with "locked" at once, not after its timeout."""
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


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


class PlannedInstance(TypedDict):
    """A member of a study known from its header, not yet compressed (encode while sending)."""

    source_key: str
    path: Path
    sop_uid: str
    series: str
    number: int
    raw_size: int
    estimate: int  # the expected size on the wire, for the centre's progress until it is known


@dataclass
class PreviewFile:
    path: Path
    sha256: str
    size: int


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
        # The sender's lanes share this connection, one call at a time (sender.Sender holds a lock).
        self.db = sqlite3.connect(
            self.state_dir / "queue.sqlite3", timeout=30, isolation_level=None, check_same_thread=False
        )
        self.db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before we go on
        _when_unlocked(self._set_up, deadline=time.monotonic() + 30)

    def _set_up(self) -> None:
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)  # IF NOT EXISTS: safe to run from two threads at once
        with self.transaction():  # two threads opening the queue at once add a column once
            for table, columns in ADDED_COLUMNS.items():
                have = {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}
                for name, decl in columns.items():
                    if name not in have:
                        self.db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {decl}")

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several steps committed together (or none, if the agent dies in between)."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- filling -----------------------------------------------------------------------
    def known_source(self, key: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM instances WHERE source_key=? UNION ALL"
                " SELECT 1 FROM planned WHERE source_key=? AND state!='failed'",
                (key, key),
            ).fetchone()
            is not None
        )

    def has_instance(self, sop_uid: str) -> bool:
        """Another file with this SOP Instance UID is queued (or sent), and was not refused:
        sending this one too would only cross the link to be told "duplicate"."""
        return (
            self.db.execute(
                "SELECT 1 FROM instances i JOIN items t ON t.id=i.item_id WHERE i.sop_uid=?"
                " AND NOT (t.state='done' AND t.outcome='refused') UNION ALL"
                " SELECT 1 FROM planned WHERE sop_uid=? AND state='pending' LIMIT 1",
                (sop_uid, sop_uid),
            ).fetchone()
            is not None
        )

    def add_duplicate(self, *, source_key: str, sop_uid: str) -> None:
        """Remember a file that carries an instance already queued: never queued, never sent."""
        row = (
            self.db.execute(
                "SELECT manifest_id FROM instances WHERE sop_uid=? AND item_id IS NOT NULL"
                " ORDER BY rowid DESC",
                (sop_uid,),
            ).fetchone()
            or self.db.execute(
                "SELECT manifest_id FROM planned WHERE sop_uid=? AND state='pending'", (sop_uid,)
            ).fetchone()
        )
        if row is None:
            return
        self.db.execute(
            "INSERT OR REPLACE INTO instances(source_key, sop_uid, manifest_id, item_id, sha256, size,"
            " raw_size, codec, lossy_ratio, outcome) VALUES (?,?,?,NULL,'',0,0,'',NULL,?)",
            (source_key, sop_uid, row[0], DUPLICATE_IN_QUEUE),
        )

    def add_manifest(self, *, study_uid: str, priority: str, indication: str) -> str:
        manifest_id = str(uuid.uuid4())
        self.db.execute(
            # posted=-1: still being filled; the sender leaves it alone until mark_ready().
            "INSERT INTO manifests(id, study_uid, priority, rank, indication, posted) VALUES (?,?,?,?,?,-1)",
            (manifest_id, study_uid, priority, PRIORITY_RANK.get(priority, 2), indication),
        )
        return manifest_id

    def announce(
        self,
        *,
        study_uid: str,
        priority: str,
        indication: str,
        members: list[PlannedInstance],
        previews: list[PreviewFile],
    ) -> str:
        """A study whose members are known (headers read) but not compressed yet: its manifest,
        ready to post, its previews, to go first, and its members, for the producer to compress
        (siteagent/pipeline.py). All committed together, or nothing (a crash re-announces it)."""
        manifest_id = str(uuid.uuid4())
        with self.transaction():
            self.db.execute(
                "INSERT INTO manifests(id, study_uid, priority, rank, indication, posted)"
                " VALUES (?,?,?,?,?,0)",
                (manifest_id, study_uid, priority, PRIORITY_RANK.get(priority, 2), indication),
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO planned(source_key, manifest_id, path, sop_uid, series, number,"
                " raw_size, estimate) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (
                        m["source_key"],
                        manifest_id,
                        str(m["path"]),
                        m["sop_uid"],
                        m["series"],
                        m["number"],
                        m["raw_size"],
                        m["estimate"],
                    )
                    for m in members
                ],
            )
            self.add_previews(manifest_id, previews)
        return manifest_id

    def add_previews(self, manifest_id: str, previews: list[PreviewFile]) -> None:
        """The study's previews, as items of their own (sent first: the sender ranks them)."""
        for preview in previews:
            self.add_item(
                manifest_id=manifest_id,
                kind="preview",
                path=preview.path,
                name="apercu.dcm",
                sha256=preview.sha256,
                size=preview.size,
                raw_size=0,
                instances=[],
            )

    def next_planned(self, exclude: Collection[str] = ()) -> tuple[str, Path, str] | None:
        """The next member to compress, (source_key, path, manifest_id): the most urgent study
        first (a STAT study announced now is compressed next), each in series and instance order.
        `exclude`: members the producer holds, compressed, waiting for their bundle."""
        skip = f" AND p.source_key NOT IN ({','.join('?' * len(exclude))})" if exclude else ""
        row = self.db.execute(
            "SELECT p.source_key, p.path, p.manifest_id FROM planned p JOIN manifests m ON m.id=p.manifest_id"
            f" WHERE p.state='pending'{skip} ORDER BY m.rank, m.created, p.manifest_id, p.series, p.number,"
            " p.path LIMIT 1",
            tuple(exclude),
        ).fetchone()
        return None if row is None else (row[0], Path(row[1]), row[2])

    def still_planned(self, source_keys: list[str]) -> set[str]:
        """Of these members, those still waiting to be queued."""
        marks = ",".join("?" * len(source_keys))
        return {
            r[0]
            for r in self.db.execute(
                f"SELECT source_key FROM planned WHERE state='pending' AND source_key IN ({marks})",
                source_keys,
            )
        }

    def planned_pending(self, manifest_id: str | None = None) -> int:
        where, args = ("AND manifest_id=?", (manifest_id,)) if manifest_id else ("", ())
        return int(
            self.db.execute(f"SELECT count(*) FROM planned WHERE state='pending' {where}", args).fetchone()[0]
        )

    def planned_failed(self, source_key: str, reason: str) -> None:
        """A member that could not be read when its turn came (the file vanished, a disk error):
        said, kept with its reason; its study stays incomplete at the centre, never silently."""
        self.db.execute(
            "UPDATE planned SET state='failed', reason=? WHERE source_key=? AND state='pending'",
            (reason[:500], source_key),
        )

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
        only_if_planned: bool = False,
    ) -> int | None:
        """Queue a file and the instances it carries. `only_if_planned` (the producer): only if
        each instance is still a pending member (not found at the centre meanwhile); None if not."""
        with self.transaction():
            if only_if_planned and self.still_planned([i["source_key"] for i in instances]) != {
                i["source_key"] for i in instances
            }:
                return None
            cur = self.db.execute(
                "INSERT INTO items(manifest_id, kind, path, name, sha256, size, raw_size)"
                " VALUES (?,?,?,?,?,?,?)",
                (manifest_id, kind, str(path), name, sha256, size, raw_size),
            )
            item_id = cur.lastrowid
            assert item_id is not None  # an INSERT always sets it
            for inst in instances:
                self.db.execute(
                    "INSERT OR REPLACE INTO instances(source_key, sop_uid, manifest_id, item_id, sha256,"
                    " size, raw_size, codec, lossy_ratio) VALUES (?,?,?,?,?,?,?,?,?)",
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
            # The producer's member is queued now, in the same commit (a crash: compressed again).
            self.db.executemany(
                "UPDATE planned SET state='queued' WHERE source_key=?",
                [(inst["source_key"],) for inst in instances],
            )
        return item_id

    # --- sending -----------------------------------------------------------------------
    def manifests_to_post(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, study_uid, priority, indication FROM manifests WHERE posted=0 ORDER BY rank, created"
        ).fetchall()
        out = []
        for mid, study_uid, priority, indication in rows:
            # Announced before compression (encode while sending): every member by its SOP Instance
            # UID, its expected size and no SHA-256 (optional: the transfer's own checks the bytes).
            planned = [
                {"sop_instance_uid": sop, "sha256": "", "size": estimate, "raw_size": raw_size}
                for sop, estimate, raw_size in self.db.execute(
                    "SELECT sop_uid, estimate, raw_size FROM planned WHERE manifest_id=? AND state!='failed'"
                    " ORDER BY series, number, path",
                    (mid,),
                )
            ]
            instances = planned or [
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

    def next_item(self, exclude: Collection[int] = ()) -> Item | None:
        """Previews of every study first (pre-read and ranking start early), then by urgency:
        a STAT study queued now overtakes routine ones already waiting. `exclude`: items another
        lane of the sender is on."""
        skip = f" AND t.id NOT IN ({','.join('?' * len(exclude))})" if exclude else ""
        row = self.db.execute(
            "SELECT t.id, t.manifest_id, t.kind, t.path, t.name, t.sha256, t.size, t.raw_size, t.tus_url,"
            " t.state, t.attempts, m.priority FROM items t JOIN manifests m ON m.id=t.manifest_id"
            f" WHERE t.state='pending' AND m.posted=1{skip}"
            " ORDER BY (t.kind='preview') DESC, m.rank, m.created, t.id LIMIT 1",
            tuple(exclude),
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

    # --- what the centre already has ---------------------------------------------------------
    def mark_instances_archived(self, manifest_id: str, sop_uids: list[str]) -> None:
        self.db.executemany(
            "UPDATE instances SET outcome=? WHERE manifest_id=? AND sop_uid=? AND item_id IS NOT NULL",
            [(ALREADY_RECEIVED, manifest_id, uid) for uid in sop_uids],
        )
        # Members not compressed yet: never compressed, counted as the centre's (no item carries them).
        for uid in sop_uids:
            for (key,) in self.db.execute(
                "SELECT source_key FROM planned WHERE manifest_id=? AND sop_uid=? AND state='pending'",
                (manifest_id, uid),
            ).fetchall():
                self.db.execute("UPDATE planned SET state=? WHERE source_key=?", (ALREADY_RECEIVED, key))
                self.db.execute(
                    "INSERT OR REPLACE INTO instances(source_key, sop_uid, manifest_id, item_id, sha256,"
                    " size, raw_size, codec, lossy_ratio, outcome) VALUES (?,?,?,NULL,'',0,0,'',NULL,?)",
                    (key, uid, manifest_id, ALREADY_RECEIVED),
                )

    def items_to_thin(self, manifest_id: str) -> list[tuple[int, list[dict[str, Any]]]]:
        """Items not yet begun that carry an instance the centre already has, each with the
        instances it must still carry ([] when none: the item need not go at all)."""
        rows = self.db.execute(
            "SELECT DISTINCT t.id FROM items t JOIN instances i ON i.item_id=t.id WHERE t.manifest_id=?"
            " AND t.state='pending' AND t.tus_url IS NULL AND t.kind!='preview' AND i.outcome=?",
            (manifest_id, ALREADY_RECEIVED),
        ).fetchall()
        out = []
        for (item_id,) in rows:
            left = [
                {"sha256": sha, "raw_size": raw}
                for sha, raw in self.db.execute(
                    "SELECT sha256, raw_size FROM instances WHERE item_id=? AND outcome!=?",
                    (item_id, ALREADY_RECEIVED),
                )
            ]
            out.append((item_id, left))
        return out

    def item_path(self, item_id: int) -> Path:
        return Path(self.db.execute("SELECT path FROM items WHERE id=?", (item_id,)).fetchone()[0])

    def replace_item_file(self, item_id: int, *, path: Path, sha256: str, size: int, raw_size: int) -> None:
        self.db.execute(
            "UPDATE items SET path=?, name=?, sha256=?, size=?, raw_size=? WHERE id=? AND tus_url IS NULL",
            (str(path), path.name, sha256, size, raw_size, item_id),
        )

    def nothing_left_to_send(self, manifest_id: str) -> bool:
        return (
            self.db.execute(
                "SELECT 1 FROM items WHERE manifest_id=? AND kind!='preview' AND state='pending' UNION ALL"
                " SELECT 1 FROM planned WHERE manifest_id=? AND state='pending' LIMIT 1",
                (manifest_id, manifest_id),
            ).fetchone()
            is None
        )

    def pending_previews(self, manifest_id: str) -> list[int]:
        return [
            r[0]
            for r in self.db.execute(
                "SELECT id FROM items WHERE manifest_id=? AND kind='preview' AND state='pending'",
                (manifest_id,),
            )
        ]

    def skipped(self, manifest_ids: list[str]) -> dict[str, int]:
        """Instances not sent, by reason: the centre had them, or a file repeated one."""
        marks = ",".join("?" * len(manifest_ids))
        counts = dict.fromkeys((ALREADY_RECEIVED, DUPLICATE_IN_QUEUE), 0)
        if manifest_ids:
            for outcome, n in self.db.execute(
                f"SELECT outcome, count(*) FROM instances WHERE manifest_id IN ({marks}) AND outcome IN (?,?)"
                " GROUP BY outcome",
                (*manifest_ids, ALREADY_RECEIVED, DUPLICATE_IN_QUEUE),
            ):
                counts[outcome] = n
        return counts

    def sendable_count(self) -> int:
        """Items waiting to be sent (or being sent) now."""
        return int(self.db.execute("SELECT count(*) FROM items WHERE state='pending'").fetchone()[0])

    def pending_count(self) -> int:
        """Items still to send, and members still to compress (none is sent yet)."""
        items = int(self.db.execute("SELECT count(*) FROM items WHERE state='pending'").fetchone()[0])
        return items + self.planned_pending()

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
