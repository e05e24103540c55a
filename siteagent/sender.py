"""Drain the queue over the link: manifests first, then items by urgency, resuming each
upload from the server's offset; back off while the link is down, never give up on it."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import linkrate
from .queue import Item, Queue
from .tus_client import LinkDown, Refused, TusClient

MAX_ATTEMPTS = 5  # per item, for refusals that a fresh upload may cure (corrupted in transit)


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    failures: int = 0

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> float:
        delay = min(self.cap, self.base * 2.0**self.failures) * random.uniform(0.7, 1.0)
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


class Sender:
    def __init__(
        self,
        queue: Queue,
        client: TusClient,
        *,
        say: Callable[[str], None] = print,
        backoff: Backoff | None = None,
    ) -> None:
        self.queue, self.client, self.say = queue, client, say
        self.backoff = backoff or Backoff()
        self.stats = SendStats()
        self._last_offset: dict[int, int] = {}

    def run(self, deadline: float | None = None) -> SendStats:
        while deadline is None or time.monotonic() < deadline:
            try:
                self._post_manifests()
                item = self.queue.next_item()  # asked again each time: a STAT study jumps ahead
                if item is None:
                    return self.stats
                self._send(item)
                self.backoff.reset()
            except LinkDown as exc:
                self.stats.link_errors += 1
                delay = self.backoff.wait()
                self.say(f"Liaison interrompue ({exc}) ; nouvel essai dans {delay:.1f} s")
        return self.stats

    def _post_manifests(self) -> None:
        for manifest in self.queue.manifests_to_post():
            self.client.post_manifest(manifest)
            self.queue.mark_posted(manifest["id"])

    def _send(self, item: Item) -> None:
        url = item.tus_url
        offset = 0
        if url:
            try:
                offset = self.client.offset(url)  # resume from the last byte the server has
                if item.id not in self._last_offset:
                    offset = self._settled_offset(url, offset)
                if offset > self._last_offset.get(item.id, 0):
                    self.backoff.reset()  # bytes got through before the drop: the link is up again
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
            try:
                url = self.client.create(item.size, metadata)
            except Refused as exc:
                if exc.status in (401, 403):
                    raise  # the token (expired, revoked) or the account, not the file: keep the queue
                if (exc.status == 413 and exc.code == "quota") or exc.status == 429:
                    self.say("Quota du site atteint au centre ; nouvel essai plus tard.")
                    raise LinkDown(exc.code or "quota") from exc
                self._refused(item, exc.code, exc.reason)
                return
            self.queue.set_tus_url(item.id, url)
            offset = 0
        outcome, code = "", ""
        started, first = time.monotonic(), offset
        while offset < item.size:
            try:
                result = self.client.patch(url, item.path, offset, item.size, progress=self._progress(item))
            except Refused as exc:
                if exc.status == 429:  # the centre's limits (spool full, day's budget): wait, resume
                    raise LinkDown(exc.code) from exc
                if exc.status != 409:
                    raise
                offset = self.client.offset(url)  # the server has more (or less) than we thought
                continue
            if result.offset > offset:
                self.backoff.reset()  # the link works: a later drop starts the backoff afresh
            offset = self._last_offset[item.id] = result.offset
            outcome, code = result.outcome, result.code
        if code == "sha256_mismatch" and item.attempts < MAX_ATTEMPTS:
            self.queue.set_tus_url(item.id, None)  # corrupted on the way: send it again, afresh
            return
        self.queue.finish(item.id, outcome or "sent", code)
        self.stats.items += 1
        linkrate.record(self.queue.db, item.size - first, time.monotonic() - started)  # JPEG XL effort
        rate = (item.size - first) * 8 / max(time.monotonic() - started, 1e-3) / 1000
        self.say(f"\r{_label(item)} : envoyé ({item.size / 1e6:.2f} Mo, {rate:.0f} kbit/s)")

    def _settled_offset(self, url: str, offset: int) -> int:
        """After a restart, bytes a killed predecessor left in its socket may still be arriving:
        wait until the server's offset stops moving, rather than send them a second time."""
        while True:
            time.sleep(1.0)
            now = self.client.offset(url)
            if now == offset:
                return now
            offset = now

    def _refused(self, item: Item, code: str, reason: str) -> None:
        self.queue.finish(item.id, "refused", code)
        self.stats.refused.append({"file": item.name, "code": code, "reason": reason})
        self.say(f"{_label(item)} refusé : {reason or code}")

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
