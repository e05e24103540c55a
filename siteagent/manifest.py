"""Turn folders, a CD (DICOMDIR) or single files into queued, compressed work per study.

Each study gets a manifest (every instance's SOPInstanceUID, SHA-256 and size), a preview
per series, and its instances — small ones packed into bundles, since a hundred 20 kB
requests over a 300 ms link reach only about half the throughput of one bulk stream.

`enqueue` compresses a study before its manifest can go; `announce` only reads the headers and
queues the manifest (SOP Instance UIDs, expected sizes) and the previews, and leaves the
compression to siteagent/pipeline.py, which encodes while the sender sends.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from .compression import (
    UNCOMPRESSED,
    Compressed,
    SitePolicy,
    compress_for_link,
    compress_stand_in,
    has_stand_in,
    lossy_first_applies,
)
from .preview import make_preview
from .queue import PlannedInstance, PreviewFile, Queue, QueuedInstance

# One manifest of a study: how each file is prepared, its source key's suffix, previews or not.
Pass = tuple[Callable[[Path, Path], Compressed | None], str, bool]

BUNDLE_MEMBER_MAX = 512 * 1024  # instances smaller than this travel in bundles
BUNDLE_TARGET = 2 * 1024**2
MAX_PREVIEWS_PER_STUDY = 4


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def find_files(paths: Iterable[Path]) -> list[Path]:
    """Every file under the given paths; a DICOMDIR's folder is walked, the DICOMDIR skipped."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_file() and path.name.upper() == "DICOMDIR":
            path = path.parent
        if path.is_dir():
            for root, _dirs, names in os.walk(path):
                found.extend(Path(root) / n for n in sorted(names) if n.upper() != "DICOMDIR")
        elif path.is_file():
            found.append(path)
    return sorted(set(found))


class Identity(TypedDict):
    study: str
    series: str
    sop: str
    number: int
    syntax: str


def _identify(path: Path) -> Identity | None:
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        return {
            "study": str(ds.StudyInstanceUID),
            "series": str(ds.get("SeriesInstanceUID", "")),
            "sop": str(ds.SOPInstanceUID),
            "number": int(ds.get("InstanceNumber") or 0),
            "syntax": str(ds.file_meta.get("TransferSyntaxUID", "")),
        }
    except Exception:  # not DICOM, or no UIDs: reported, not sent
        return None


def _source_key(path: Path, policy: SitePolicy) -> str:
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}|{policy.mode}"


@dataclass
class Found:
    """What is new in the given paths, by study; what is not DICOM; files repeating an instance."""

    studies: dict[str, list[tuple[Path, Identity]]]
    skipped: list[str]
    repeats: list[tuple[Path, str]]


def _find_new(queue: Queue, paths: Iterable[Path], policy: SitePolicy) -> Found:
    files = find_files(paths)
    studies: dict[str, list[tuple[Path, Identity]]] = defaultdict(list)
    skipped = []
    seen: set[str] = set()
    repeats: list[tuple[Path, str]] = []
    for path in files:
        if queue.known_source(_source_key(path, policy)):
            continue
        ident = _identify(path)
        if ident is None:
            skipped.append(path.name)
            continue
        if ident["sop"] in seen or queue.has_instance(ident["sop"]):
            # The same instance in a second file (a study exported twice, one image in two
            # syntaxes): the centre would store it once and call the other "duplicate". Sent once.
            repeats.append((path, ident["sop"]))
            continue
        seen.add(ident["sop"])
        studies[ident["study"]].append((path, ident))
    return Found(studies, skipped, repeats)


def _record_repeats(
    queue: Queue, found: Found, policy: SitePolicy, say: Callable[[str], None]
) -> dict[str, Any]:
    for path, sop in found.repeats:
        queue.add_duplicate(source_key=_source_key(path, policy), sop_uid=sop)
        say(f"{path.name} : même instance (SOP Instance UID) qu'un fichier déjà en file ; envoyée une fois")
    return {
        "studies": len(found.studies),
        "files": sum(len(m) for m in found.studies.values()),
        "skipped": found.skipped,
        "duplicates": [p.name for p, _sop in found.repeats],
    }


# Expected wire size against the file's, until compression tells (the centre's share of bytes and
# time to completion): lossless CT/CR/DX measured here come to 0.35-0.55 of their uncompressed size.
EXPECTED_RATIO_UNCOMPRESSED = 0.5


def _expected_size(path: Path, ident: Identity) -> int:
    size = path.stat().st_size
    if ident["syntax"] in UNCOMPRESSED:
        return max(1, int(size * EXPECTED_RATIO_UNCOMPRESSED))
    return size


def announce(
    queue: Queue,
    paths: Iterable[Path],
    *,
    policy: SitePolicy,
    priority: str = "routine",
    indication: str = "",
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Queue each new study's manifest and previews now, its members for the producer
    (siteagent/pipeline.py) to compress while the sender sends. Lossless only (a lossy image
    gets a new SOP Instance UID, which the manifest posted first could not list). Safe to run
    again after a crash: a study is announced whole or not at all, and never twice."""
    queue.recover_half_queued()
    found = _find_new(queue, paths, policy)
    for study_uid, members in found.studies.items():
        prefix = hashlib.sha1(study_uid.encode()).hexdigest()[:8]
        manifest_id = queue.announce(
            study_uid=study_uid,
            priority=priority,
            indication=indication,
            members=[
                PlannedInstance(
                    source_key=_source_key(path, policy),
                    path=path.resolve(),
                    sop_uid=ident["sop"],
                    series=ident["series"],
                    number=ident["number"],
                    raw_size=path.stat().st_size,
                    estimate=_expected_size(path, ident),
                )
                for path, ident in members
            ],
            previews=_make_previews(queue.outbox, prefix, members),
        )
        say(f"Examen {manifest_id[:8]} : {len(members)} fichier(s), compression pendant l'envoi…")
    return _record_repeats(queue, found, policy, say)


def enqueue(
    queue: Queue,
    paths: Iterable[Path],
    *,
    policy: SitePolicy,
    priority: str = "routine",
    indication: str = "",
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Compress and queue what is not queued yet. Safe to run again after a crash."""
    queue.recover_half_queued()
    found = _find_new(queue, paths, policy)
    studies = found.studies
    lossless = SitePolicy(mode="lossless", lossless_codecs=policy.lossless_codecs)
    as_sent: Pass = (lambda src, out: compress_for_link(src, out, policy), "", True)
    for study_uid, members in studies.items():
        passes = [as_sent]
        if lossy_first_applies(policy, priority) and any(has_stand_in(p, policy) for p, _ in members):
            # The stand-ins first, at the guideline ratio, then the lossless originals: two
            # manifests queued now, in this order, so a restart sends the second as well.
            passes = [
                (lambda src, out: compress_stand_in(src, out, policy), "|stand-in", True),
                (lambda src, out: compress_for_link(src, out, lossless), "", False),
            ]
        for make, key_suffix, previews in passes:
            _queue_study(
                queue,
                study_uid,
                members,
                priority=priority,
                indication=indication,
                say=say,
                make=make,
                source_key=_keyed(policy, key_suffix),
                previews=previews,
            )
    return _record_repeats(queue, found, policy, say)


def outbox_path(queue: Queue, manifest_id: str, source: Path) -> Path:
    """Where the version of `source` that travels in this manifest is written."""
    return queue.outbox / f"{manifest_id[:8]}-{hashlib.sha1(str(source).encode()).hexdigest()[:16]}.dcm"


def queued_instance(source_key: str, done: Compressed) -> QueuedInstance:
    """What the queue keeps of one compressed file."""
    return {
        "source_key": source_key,
        "sop_uid": done.sop_instance_uid,
        "sha256": sha256_of(done.path),
        "size": done.size,
        "raw_size": done.raw_size,
        "codec": done.codec,
        "lossy_ratio": done.lossy_ratio,
        "path": done.path,
    }


def _keyed(policy: SitePolicy, suffix: str) -> Callable[[Path], str]:
    """The queue's key of a source file in one of a study's manifests (the stand-ins' own)."""
    return lambda path: _source_key(path, policy) + suffix


def _queue_study(
    queue: Queue,
    study_uid: str,
    members: list[tuple[Path, Identity]],
    *,
    priority: str,
    indication: str,
    say: Callable[[str], None],
    make: Callable[[Path, Path], Compressed | None],
    source_key: Callable[[Path], str],
    previews: bool,
) -> None:
    """One manifest: the study's files as `make` prepares them (None: this file has no version
    in this manifest), small ones bundled, marked ready at the end."""
    manifest_id = queue.add_manifest(study_uid=study_uid, priority=priority, indication=indication)
    say(f"Examen {manifest_id[:8]} : {len(members)} fichier(s), compression…")
    if previews:
        _queue_previews(queue, manifest_id, members)
    small: list[QueuedInstance] = []
    for path, _ident in sorted(members, key=lambda m: (m[1]["series"], m[1]["number"], str(m[0]))):
        done = make(path, outbox_path(queue, manifest_id, path))
        if done is None:
            continue
        inst = queued_instance(source_key(path), done)
        if done.size < BUNDLE_MEMBER_MAX:
            small.append(inst)
            if sum(i["size"] for i in small) >= BUNDLE_TARGET:
                _queue_bundle(queue, manifest_id, small)
                small = []
            continue
        queue.add_item(
            manifest_id=manifest_id,
            kind="dicom",
            path=done.path,
            name=path.name,
            sha256=inst["sha256"],
            size=done.size,
            raw_size=done.raw_size,
            instances=[inst],
        )
    if len(small) == 1:
        inst = small[0]
        queue.add_item(
            manifest_id=manifest_id,
            kind="dicom",
            path=inst["path"],
            name=inst["path"].name,
            sha256=inst["sha256"],
            size=inst["size"],
            raw_size=inst["raw_size"],
            instances=small,
        )
    elif small:
        _queue_bundle(queue, manifest_id, small)
    queue.mark_ready(manifest_id)


def _make_previews(outbox: Path, prefix: str, members: list[tuple[Path, Identity]]) -> list[PreviewFile]:
    """A preview of each of the study's largest series (its middle image), written durably."""
    series: dict[str, list[tuple[Path, Identity]]] = defaultdict(list)
    for path, ident in members:
        series[ident["series"]].append((path, ident))
    made = []
    for _uid, items in sorted(series.items(), key=lambda s: -len(s[1]))[:MAX_PREVIEWS_PER_STUDY]:
        items.sort(key=lambda m: m[1]["number"])
        path, ident = items[len(items) // 2]  # the middle slice shows the most of a CT
        out = outbox / f"{prefix}-preview-{ident['sop'][-12:]}.dcm"
        try:
            make_preview(path, out)
        except Exception:  # no preview for an image we cannot render; the original still goes
            continue
        made.append(PreviewFile(out, sha256_of(out), out.stat().st_size))
    return made


def _queue_previews(queue: Queue, manifest_id: str, members: list[tuple[Path, Identity]]) -> None:
    queue.add_previews(manifest_id, _make_previews(queue.outbox, manifest_id[:8], members))


def rebundle(queue: Queue, item_id: int, keep: list[dict[str, Any]]) -> Path:
    """Pack a bundle again with only the members whose SHA-256 is in `keep` (the centre has the
    others). The item points at the new file; the old one's path is returned, to be removed once
    the queue has committed the change."""
    old = queue.item_path(item_id)
    wanted = {k["sha256"] for k in keep}
    out = old.with_name(f"{old.stem}-{hashlib.sha1(','.join(sorted(wanted)).encode()).hexdigest()[:8]}.zip")
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(old) as source, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as bundle:
        for i, info in enumerate(m for m in source.infolist() if not m.is_dir()):
            data = source.read(info)
            if hashlib.sha256(data).hexdigest() in wanted:
                bundle.writestr(f"{i:05d}.dcm", data)
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    queue.replace_item_file(
        item_id,
        path=out,
        sha256=sha256_of(out),
        size=out.stat().st_size,
        raw_size=sum(int(k["raw_size"]) for k in keep),
    )
    return old


def write_bundle(paths: list[Path], out: Path) -> Path:
    """A bundle: the instances in a stored ZIP, in order. Stored, never deflated: the centre
    (uploads.bundles) accepts only members whose bytes are their size, so a bundle cannot
    inflate."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as bundle:
        for i, path in enumerate(paths):
            bundle.write(path, arcname=f"{i:05d}.dcm")
    return out


def _queue_bundle(
    queue: Queue, manifest_id: str, members: list[QueuedInstance], *, only_if_planned: bool = False
) -> bool:
    out = queue.outbox / f"{manifest_id[:8]}-bundle-{members[0]['sha256'][:16]}.zip"
    tmp = write_bundle([inst["path"] for inst in members], out.with_suffix(".tmp"))
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    added = queue.add_item(
        manifest_id=manifest_id,
        kind="bundle",
        path=out,
        name=out.name,
        sha256=sha256_of(out),
        size=out.stat().st_size,
        raw_size=sum(i["raw_size"] for i in members),
        instances=members,
        only_if_planned=only_if_planned,
    )
    if added is None:
        out.unlink(missing_ok=True)  # a member is no longer to send: the caller packs again
        return False
    for inst in members:
        inst["path"].unlink(missing_ok=True)  # its bytes live in the bundle now
    return True
