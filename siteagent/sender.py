"""Drain the queue over the link: manifests first, then items by urgency, resuming each
upload from the server's offset; back off while the link is down, never give up on it."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import linkrate
from .manifest import rebundle
from .queue import ALREADY_RECEIVED, Item, Queue
from .tus_client import LinkDown, Refused, TusClient

MAX_ATTEMPTS = 5  # per item, for refusals that a fresh upload may cure (corrupted in transit)
# Lanes taking turns on the link (Sender.run): 2 keeps the link busy across the wait for each
# file's answer (a round trip plus the centre's fsyncs). Off (1) by default for now: in about one
# run in four of tests/test_siteagent_wire.py the agent exited 1 with two lanes. Probable cause,
# seen with one lane too: an answer cut short by a link cut parsed as complete (http.client), its
# body not JSON, an uncaught error; now a link error (tus_client). Not re-tested with two lanes.
LANES = 1


@dataclass
class Backoff:
    """Waits between tries while the link is down. A cut on a weak link lasts seconds: for the
    first `quick` failures the wait stays under `quick_cap`, so the agent is back within about a
    second of the link; after that (a long outage) it grows to `cap`, never giving up."""

    base: float = 0.25
    cap: float = 30.0
    quick: int = 30
    quick_cap: float = 1.0
    failures: int = 0

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> float:
        cap = self.quick_cap if self.failures < self.quick else self.cap
        delay = min(cap, self.base * 2.0**self.failures) * random.uniform(0.7, 1.0)
        self.failures += 1
        sleep(delay)
        return delay

    def reset(self) -> None:
        self.failures = 0


@dataclass
class SendStats:
    items: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    link_errors: int = 0
    already_received: int = 0  # items the centre already had whole: not sent


class Sender:
    def __init__(
        self,
        queue: Queue,
        client: TusClient,
        *,
        say: Callable[[str], None] = print,
        backoff: Backoff | None = None,
        lanes: int = LANES,
        more_coming: Callable[[], bool] | None = None,
        events: Callable[..., None] | None = None,
    ) -> None:
        self.queue, self.client, self.say = queue, client, say
        # While it answers True (a producer still compressing, siteagent/pipeline.py), an empty
        # queue means "wait for the next item", not "done".
        self.more_coming = more_coming or (lambda: False)
        self.events = events or (lambda event, **fields: None)
        self.backoff = backoff or Backoff()
        self.lanes = max(1, lanes)
        self.stats = SendStats()
        self._last_offset: dict[int, int] = {}  # items this process has sent to: their last offset
        self._cut_creations: set[int] = set()  # items whose POST with bytes a cut broke
        self._lock = threading.RLock()  # the queue (one SQLite connection) and the lanes' claims
        self._busy: set[int] = set()
        self._failed: BaseException | None = None

    def run(self, deadline: float | None = None) -> SendStats:
        """Send until the queue is empty (or the deadline). With several lanes, each has its own
        connection and they take turns writing (TusClient.wire): while one waits for the answer
        to its last bytes, the next file is already crossing: no idle link between files."""
        clients = [self.client] + [self.client.sibling() for _ in range(self.lanes - 1)]
        backoffs = [self.backoff] + [Backoff(base=self.backoff.base) for _ in clients[1:]]
        if len(clients) == 1:
            self._lane(clients[0], backoffs[0], deadline)
        else:
            threads = [
                threading.Thread(target=self._lane, args=(c, b, deadline), daemon=True)
                for c, b in zip(clients, backoffs, strict=True)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            for client in clients[1:]:
                client.close()
        if self._failed is not None:
            raise self._failed  # a refusal of the token or the account: the caller reports it
        return self.stats

    def _lane(self, client: TusClient, backoff: Backoff, deadline: float | None) -> None:
        while (deadline is None or time.monotonic() < deadline) and self._failed is None:
            try:
                # Asked before looking: a producer that finishes after an empty look has queued its
                # last item before finishing, so the next look finds it.
                coming = self.more_coming()
                with self._lock:
                    self._post_manifests(client)
                    # Asked again each time: a STAT study jumps ahead.
                    item = self.queue.next_item(exclude=self._busy)
                    if item is None and not self._busy and not coming:
                        return
                    if item is not None:
                        self._busy.add(item.id)
                if item is None:
                    time.sleep(0.1)  # the other lane's file may yet come back (a cut), or the producer's
                    continue
                try:
                    self._send(item, client, backoff)
                finally:
                    with self._lock:
                        self._busy.discard(item.id)
                backoff.reset()
            except LinkDown as exc:
                with self._lock:
                    self.stats.link_errors += 1
                delay = backoff.wait()
                self.say(f"Liaison interrompue ({exc}) ; nouvel essai dans {delay:.1f} s")
            except BaseException as exc:  # Refused (401/403) and the like: every lane stops
                self._failed = exc
                return

    def _post_manifests(self, client: TusClient) -> None:
        for manifest in self.queue.manifests_to_post():
            answer = client.post_manifest(manifest)
            have = answer.get("have") or []
            replaced: list[Path] = []
            with self.queue.transaction():  # posted and thinned together, or neither (a crash)
                self.queue.mark_posted(manifest["id"])
                if have:
                    replaced = self._skip_archived(manifest["id"], [u for u in have if isinstance(u, str)])
            for path in replaced:
                path.unlink(missing_ok=True)  # bundles packed again: the old file, once committed

    def _skip_archived(self, manifest_id: str, have: list[str]) -> list[Path]:
        """The centre already holds these instances of the study: what carries only them is done
        ("already_received") without a byte; a bundle that also carries others is packed again
        without them."""
        self.queue.mark_instances_archived(manifest_id, have)
        replaced = []
        for item_id, left in self.queue.items_to_thin(manifest_id):
            if not left:
                self.queue.finish(item_id, ALREADY_RECEIVED)
                self.stats.already_received += 1
            else:
                replaced.append(rebundle(self.queue, item_id, left))
        if self.queue.nothing_left_to_send(manifest_id):
            for item_id in self.queue.pending_previews(manifest_id):
                self.queue.finish(item_id, ALREADY_RECEIVED)  # no new image: no preview needed
        self.say(f"Examen {manifest_id[:8]} : {len(have)} instance(s) déjà au centre, non renvoyée(s)")
        return replaced

    def _send(self, item: Item, client: TusClient, backoff: Backoff) -> None:
        url = item.tus_url
        offset = 0
        if url:
            # Only after a failure (or a restart): what did the server keep of it?
            try:
                offset = client.offset(url)  # resume from the last byte the server has
                if item.id not in self._last_offset:
                    # Queued by an earlier process, which may have been killed mid-request.
                    offset = self._settled_offset(client, url, offset)
                if offset > self._last_offset.get(item.id, 0):
                    backoff.reset()  # bytes got through before the drop: the link is up again
                self._last_offset[item.id] = offset
            except Refused as exc:
                if exc.status not in (404, 410):
                    raise
                url = None  # expired or lost on the server: start this file again
        if not url:
            metadata = {
                "filename": item.name,
                "sha256": item.sha256,
                "manifest": item.manifest_id,
                "kind": item.kind,
            }
            # creation-with-upload: a small file goes whole in this one request; after a cut broke
            # such a request, an empty creation then PATCH (which a cut does not set back).
            with_bytes = item.id not in self._cut_creations
            self.events("sending", item=item.id, kind=item.kind, file=item.name, size=item.size)
            try:
                url, created = client.create(
                    item.size, metadata, path=item.path if with_bytes else None, progress=self._progress(item)
                )
            except LinkDown:
                self._cut_creations.add(item.id)
                raise
            except Refused as exc:
                if exc.status in (401, 403):
                    raise  # the token (expired, revoked) or the account, not the file: keep the queue
                if (exc.status == 413 and exc.code == "quota") or exc.status == 429:
                    self.say("Quota du site atteint au centre ; nouvel essai plus tard.")
                    raise LinkDown(exc.code or "quota") from exc
                self._refused(item, exc.code, exc.reason)
                return
            backoff.reset()  # the centre answered: the link is up
            self._locked(self.queue.set_tus_url, item.id, url)
            offset = self._last_offset[item.id] = created.offset
            outcome, code = created.outcome, created.code
            started, first = time.monotonic(), 0
        else:
            outcome, code = "", ""
            started, first = time.monotonic(), offset
        while offset < item.size:
            try:
                result = client.patch(url, item.path, offset, item.size, progress=self._progress(item))
            except Refused as exc:
                if exc.status == 429:  # the centre's limits (spool full, day's budget): wait, resume
                    raise LinkDown(exc.code) from exc
                if exc.status != 409:
                    raise
                offset = client.offset(url)  # the server has more (or less) than we thought
                continue
            if result.offset > offset:
                backoff.reset()  # the link works: a later drop starts the backoff afresh
            offset = self._last_offset[item.id] = result.offset
            outcome, code = result.outcome, result.code
        if code == "sha256_mismatch" and item.attempts < MAX_ATTEMPTS:
            self._locked(self.queue.set_tus_url, item.id, None)  # corrupted on the way: send it again, afresh
            return
        self._locked(self.queue.finish, item.id, outcome or "sent", code)
        self.events("sent", item=item.id, kind=item.kind, file=item.name, outcome=outcome or "sent")
        with self._lock:
            self.stats.items += 1
            # The link's rate, which sets the JPEG XL effort of the next studies (siteagent.linkrate).
            linkrate.record(self.queue.db, item.size - first, time.monotonic() - started)
        rate = (item.size - first) * 8 / max(time.monotonic() - started, 1e-3) / 1000
        self.say(f"\r{_label(item)} : envoyé ({item.size / 1e6:.2f} Mo, {rate:.0f} kbit/s)")

    def _settled_offset(self, client: TusClient, url: str, offset: int) -> int:
        """After a restart, bytes a killed predecessor left in its socket may still be arriving:
        wait until the server's offset stops moving, rather than send them a second time."""
        while True:
            time.sleep(1.0)
            now = client.offset(url)
            if now == offset:
                return now
            offset = now

    def _refused(self, item: Item, code: str, reason: str) -> None:
        with self._lock:
            self.queue.finish(item.id, "refused", code)
            self.stats.refused.append({"file": item.name, "code": code, "reason": reason})
        self.say(f"{_label(item)} refusé : {reason or code}")

    def _locked(self, call: Callable[..., object], *args: object) -> None:
        with self._lock:
            call(*args)

    def _progress(self, item: Item) -> Callable[[int], None]:
        last = [0.0]

        def show(done: int) -> None:
            now = time.monotonic()
            if now - last[0] > 1 or done == item.size:
                last[0] = now
                self.say(f"\r{_label(item)} : {100 * done // max(item.size, 1)} %")

        return show


def _label(item: Item) -> str:
    kind = {"preview": "aperçu", "bundle": "lot", "dicom": "fichier"}.get(item.kind, item.kind)
    return f"[{item.priority}] {kind} {item.name[:40]}"
