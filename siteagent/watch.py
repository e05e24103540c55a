"""A watched folder, for devices that can only export files: polled (no extra dependency), a file
is taken only once it is stable (same size and mtime for the quiet period, seen twice at least),
copied durably into the spool (spool.py), then removed from the folder. A file that is not DICOM
(or has no usable Study/SOP Instance UID) is moved to the refused folder beside a .raison.txt:
never silently dropped. Names starting with "." are left alone (a device's files in progress).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from .spool import BadInstance, Spool, SpoolFull, fsync_dir, refuse, valid_uid


def identify(path: Path) -> tuple[str, str]:
    """(StudyInstanceUID, SOPInstanceUID) of a DICOM file; BadInstance with the reason otherwise."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except InvalidDicomError:
        with path.open("rb") as f:
            head = f.read(132)
        if len(head) < 132 or head[128:132] != b"DICM":
            try:  # a bare data set (no preamble) as some exports write it
                ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
                if "SOPClassUID" not in ds:
                    raise BadInstance("pas un fichier DICOM")
            except BadInstance:
                raise
            except Exception as exc:
                raise BadInstance("pas un fichier DICOM") from exc
        else:
            raise BadInstance("fichier DICOM illisible") from None
    except Exception as exc:
        raise BadInstance(f"fichier DICOM illisible : {str(exc)[:80]}") from exc
    return valid_uid(ds.get("StudyInstanceUID")), valid_uid(ds.get("SOPInstanceUID"))


class FolderWatcher:
    def __init__(
        self,
        folder: Path,
        spool: Spool,
        *,
        refused_dir: Path,
        quiet_s: float,
        say: Callable[[str], None] = print,
    ) -> None:
        self.folder, self.spool, self.refused_dir = Path(folder), spool, Path(refused_dir)
        self.quiet_s, self.say = quiet_s, say
        self._seen: dict[Path, tuple[tuple[int, int], float]] = {}
        self.folder.mkdir(parents=True, exist_ok=True)

    def _files(self) -> list[Path]:
        out: list[Path] = []
        skip = self.refused_dir.resolve()
        for root, dirs, names in os.walk(self.folder):
            dirs[:] = [d for d in dirs if not d.startswith(".") and (Path(root) / d).resolve() != skip]
            out.extend(Path(root) / n for n in names if not n.startswith("."))
        return sorted(out)

    def tick(self) -> int:
        """One look at the folder; returns how many files were taken into the spool."""
        now, taken, present = time.monotonic(), 0, set()
        for path in self._files():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            present.add(path)
            signature = (st.st_size, st.st_mtime_ns)
            seen = self._seen.get(path)
            if seen is None or seen[0] != signature:
                self._seen[path] = (signature, now)  # new or still growing: the quiet period restarts
                continue
            if now - seen[1] < self.quiet_s or time.time() - st.st_mtime < self.quiet_s:
                continue
            try:
                taken += self._take(path)
            except SpoolFull as exc:
                self.say(f"Dossier surveillé en attente : {exc}")
                break  # left in the folder; taken once the sender has made room
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return taken

    def _take(self, path: Path) -> int:
        self._seen.pop(path, None)
        try:
            study, sop = identify(path)
        except BadInstance as exc:
            target = refuse(path, self.refused_dir, str(exc))
            self.say(f"{path.name} refusé : {exc} (déplacé vers {target})")
            return 0
        self.spool.store_file(path, study, sop)
        path.unlink()  # only once its copy is durable: a crash here means it is taken again, deduped
        fsync_dir(path.parent)
        return 1
