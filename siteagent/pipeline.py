"""Encode while sending: the members of announced studies (manifest.announce) are compressed by a
background producer while the sender sends what is already queued, so encoding adds to the wall
time only where it is slower than the link, and JPEG XL may take higher efforts
(`SitePolicy(encode_while_sending=True)`, jpegxl.encoding_cost).

The producer is a thread of the agent's process with its own SQLite connection: libjxl, CharLS
and OpenJPEG run outside the GIL (imagecodecs and pylibjpeg release it while encoding), the rest
of a file's work (pydicom parsing, SHA-256) is short. One producer per state directory at a time
(`producer.lock`); it takes the most urgent study's members first, rechecked before every file, so
a STAT study announced by another `joliba-push` is compressed next. Each member's item is committed
with its `planned` row set to `queued`: a kill leaves the others `pending`, compressed again on the
next start, and nothing is queued or sent twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from .compression import SitePolicy, compress_for_link
from .manifest import BUNDLE_MEMBER_MAX, BUNDLE_TARGET, _queue_bundle, outbox_path, queued_instance
from .queue import Queue, QueuedInstance

EVENTS_MAX_BYTES = 1024**2  # the event log is rotated once (events.jsonl.1) beyond this


def log_event(state_dir: Path, event: str, **fields: object) -> None:
    """One line of STATE/events.jsonl: what the agent did and when (wall clock), for the
    technician and for the tests that check the pipeline really overlaps."""
    path = Path(state_dir) / "events.jsonl"
    try:
        if path.exists() and path.stat().st_size > EVENTS_MAX_BYTES:
            os.replace(path, path.with_name("events.jsonl.1"))
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"t": round(time.time(), 3), "event": event, **fields}, ensure_ascii=False))
            f.write("\n")
    except OSError:  # a full disk must not stop the sending; the queue is what counts
        pass


def produce(
    queue: Queue,
    policy: SitePolicy,
    *,
    say: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> int:
    """Compress every pending member, most urgent study first, into items (small ones in
    bundles, see below). Returns how many members were compressed."""
    done_count = 0
    small: list[QueuedInstance] = []
    small_manifest = ""

    def flush() -> None:
        nonlocal small
        _queue_members(queue, small_manifest, small)
        small = []

    while stop is None or not stop.is_set():
        nxt = queue.next_planned(exclude=[i["source_key"] for i in small])
        if small and (nxt is None or nxt[2] != small_manifest):
            flush()  # the study's last member, or a more urgent study comes first
            continue
        if nxt is None:
            break
        source_key, path, manifest_id = nxt
        try:
            done = compress_for_link(path, outbox_path(queue, manifest_id, path), policy)
            inst = queued_instance(source_key, done)
        except OSError as exc:  # vanished or unreadable since it was announced
            queue.planned_failed(source_key, f"{type(exc).__name__}: {exc}")
            say(f"{path.name} : illisible au moment de le compresser ({exc}) ; non envoyé")
            log_event(queue.state_dir, "failed", file=path.name, reason=str(exc))
            continue
        done_count += 1
        log_event(
            queue.state_dir,
            "compressed",
            file=path.name,
            manifest=manifest_id,
            codec=done.codec,
            effort=done.effort,
            size=done.size,
            seconds=round(done.encode_seconds, 3),
        )
        if done.size < BUNDLE_MEMBER_MAX:
            small.append(inst)
            small_manifest = manifest_id
            # A full bundle goes; so does a smaller one when the sender would otherwise run dry
            # (fewer than two items waiting, the one on the link included): the link never waits
            # for a bundle to fill while the encoder works on.
            if sum(i["size"] for i in small) >= BUNDLE_TARGET or queue.sendable_count() < 2:
                flush()
            continue
        _queue_members(queue, manifest_id, [inst], name=path.name)
    return done_count


def _queue_members(queue: Queue, manifest_id: str, members: list[QueuedInstance], name: str = "") -> None:
    """One item for these compressed members (a bundle for several), leaving out any the centre
    turned out to have while they were compressed (the manifest's answer came meanwhile): the
    check and the queueing are one commit, so such a member is never sent."""
    while members:
        left = queue.still_planned([m["source_key"] for m in members])
        for gone in (m for m in members if m["source_key"] not in left):
            gone["path"].unlink(missing_ok=True)
        members = [m for m in members if m["source_key"] in left]
        if len(members) == 1:
            inst = members[0]
            added = queue.add_item(
                manifest_id=manifest_id,
                kind="dicom",
                path=inst["path"],
                name=name or inst["path"].name,
                sha256=inst["sha256"],
                size=inst["size"],
                raw_size=inst["raw_size"],
                instances=members,
                only_if_planned=True,
            )
            if added is not None:
                return
        elif members and _queue_bundle(queue, manifest_id, members, only_if_planned=True):
            return


class Producer(threading.Thread):
    """`produce` in the background, on its own connection to the queue, under producer.lock
    (another agent's producer running on the same state directory is waited for: it compresses
    this one's members too, most urgent first)."""

    def __init__(self, state_dir: Path, policy: SitePolicy, *, say: Callable[[str], None] = print) -> None:
        super().__init__(name="joliba-producer", daemon=True)  # a killed agent resumes from the queue
        self.state_dir, self.policy, self.say = Path(state_dir), policy, say
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.compressed = 0

    def run(self) -> None:
        try:
            with (self.state_dir / "producer.lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                queue = Queue(self.state_dir)
                try:
                    self.compressed = produce(queue, self.policy, say=self.say, stop=self.stop)
                finally:
                    queue.close()
        except BaseException as exc:  # reported by the caller: the sender must not wait for ever
            self.error = exc
            self.say(f"Compression interrompue : {type(exc).__name__}: {exc}")

    def more_coming(self) -> bool:
        return self.is_alive()
