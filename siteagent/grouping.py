"""From spooled instances to queued studies: a study is complete when it has been quiet (no new
instance) for the configured period; it is then queued like any study given on the command line
(manifest.enqueue: compression, previews, bundles), and its spool folder removed.

Priority of a received study: the most urgent of the site's default (--priority), the DICOM
Requested Procedure Priority found in its instances (STAT → stat, HIGH → urgent), and the site's
rules by modality (--priority-rule CT=urgent). Indication: the instances' Reason for the Requested
Procedure, else the site's default (--indication).
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable
from pathlib import Path

from .compression import SitePolicy
from .manifest import enqueue
from .queue import PRIORITY_RANK, Queue
from .spool import Spool

DICOM_PRIORITY = {"STAT": "stat", "HIGH": "urgent"}


def study_priority(
    files: list[Path], default: str, rules: dict[str, str], default_indication: str
) -> tuple[str, str]:
    import pydicom

    candidates, indication = [default], ""
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception:  # unreadable headers: the centre's verdict will say why
            continue
        places = [ds, *ds.get("RequestAttributesSequence", [])]
        for where in places:
            wanted = str(where.get("RequestedProcedurePriority", "")).strip().upper()
            if wanted in DICOM_PRIORITY:
                candidates.append(DICOM_PRIORITY[wanted])
            indication = indication or str(where.get("ReasonForTheRequestedProcedure", "")).strip()
        modality = str(ds.get("Modality", "")).upper()
        if modality in rules:
            candidates.append(rules[modality])
    return min(candidates, key=lambda p: PRIORITY_RANK.get(p, 2)), indication or default_indication


class Grouper:
    def __init__(
        self,
        spool: Spool,
        *,
        quiet_s: float,
        policy: SitePolicy,
        priority: str = "routine",
        rules: dict[str, str] | None = None,
        indication: str = "",
        lock_path: Path | None = None,
        refused_dir: Path | None = None,
        say: Callable[[str], None] = print,
    ) -> None:
        self.spool, self.quiet_s, self.policy = spool, quiet_s, policy
        self.priority, self.rules, self.indication = priority, rules or {}, indication
        self.lock_path, self.say = lock_path, say
        self.refused_dir = refused_dir or spool.root.parent / "refused"

    def tick(self, queue: Queue) -> int:
        """Seal the studies gone quiet and queue every sealed batch (also those a crash left)."""
        for folder in self.spool.quiet_studies(self.quiet_s):
            self.spool.seal(folder)
        queued = 0
        for batch in self.spool.sealed_batches():
            queued += self._queue(queue, batch)
        return queued

    def _queue(self, queue: Queue, batch: Path) -> int:
        files = sorted(batch.glob("*.dcm"))
        fresh = []
        for f in files:
            if queue.known_sop(f.stem):  # named by SOP Instance UID (spool.py)
                self.say(f"Instance {f.stem} déjà dans la file d'envoi : pas renvoyée")
                self.spool.remove(f)
            else:
                fresh.append(f)
        if fresh:
            priority, indication = study_priority(fresh, self.priority, self.rules, self.indication)
            handle = self.lock_path.open("a") if self.lock_path else None
            try:
                if handle:
                    fcntl.flock(handle, fcntl.LOCK_EX)  # not interleaved with a `joliba-push PATH`
                found = enqueue(
                    queue, [batch], policy=self.policy, priority=priority, indication=indication, say=self.say
                )
            finally:
                if handle:
                    handle.close()
            for name in found["skipped"]:
                self.say(f"{name} : illisible, non envoyé (mis dans {self.refused_dir})")
                self.spool.refuse(batch / name, self.refused_dir, "en-tête DICOM illisible")
            self.say(f"Examen reçu ({len(fresh)} instance(s), {priority}) : dans la file d'envoi")
        self.spool.discard(batch)
        return len(fresh)
