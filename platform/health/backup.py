"""Backups and restore of a Joliba installation (docs/backup.md).

A backup is a folder BACKUP_DIR/<UTC time>/ holding, taken in this order:

1. platform.dump — pg_dump (custom format) of the platform database: one consistent snapshot.
2. files/<SETTING>.tar — the folders under DATA_DIR that hold acknowledged data: the ingest spool
   (files a site was told were received, and resumable uploads' acknowledged bytes) and the audit
   spool, plus the AI model packages. Taken after the dump, so anything the dump knows that was
   still in the spool is in the tar, or already in Orthanc and therefore in step 3.
3. Orthanc's instances, exported through its REST API, each file stored once under
   BACKUP_DIR/objects/ by its SHA-256 (shared by every backup: a daily backup downloads only the
   instances that are new since the last one). Taken last: Orthanc only gains instances while the
   platform runs, so every instance the dump refers to is in the export.
4. manifest.json (every instance: Orthanc ID, SOP Instance UID, SHA-256, size; every file's
   SHA-256) and SHA256SUMS (for `sha256sum -c`), then the folder is renamed from .partial.

Restore verifies every checksum first, then pg_restores into an empty database, stores every
instance into an (empty) Orthanc — Orthanc's IDs are hashes of the UIDs, so the database's
references hold — unpacks the folders, and resets the changes-feed cursor to 0 so that the feed
re-reads the archive: an instance stored between steps 1 and 3 becomes a study the platform knows.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from django.conf import settings

FORMAT = 1
# The DATA_DIR folders a backup carries, by setting name. Renditions (JOLIBA_RENDITIONS_ROOT) are
# remade from the archive by the worker; de-identified exports are temporary: neither is kept.
FOLDER_SETTINGS = ("INGEST_SPOOL_DIR", "AUDIT_SPOOL_DIR", "JOLIBA_MODELS_DIR")
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
CHUNK = 1024 * 1024
PAGE = 500


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- PostgreSQL -------------------------------------------------------------------------------
def _pg_env_and_args(db: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    if not db["ENGINE"].endswith("postgresql"):
        raise BackupError("backups need PostgreSQL (the quickstart's SQLite file is copied by hand)")
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    args = ["-h", str(db.get("HOST") or "127.0.0.1"), "-p", str(db.get("PORT") or 5432)]
    if db.get("USER"):
        args += ["-U", str(db["USER"])]
    return env, args


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def dump_database(db: dict[str, Any], target: Path) -> None:
    env, args = _pg_env_and_args(db)
    _run(["pg_dump", *args, "--format=custom", "--no-owner", "--file", str(target), str(db["NAME"])], env)


def restore_database(db: dict[str, Any], dump: Path, *, create: bool) -> None:
    env, args = _pg_env_and_args(db)
    if create:
        _run(["createdb", *args, str(db["NAME"])], env)
    tables = subprocess.run(
        ["psql", *args, "-tA", "-d", str(db["NAME"]), "-c",
         "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if tables.returncode != 0:
        raise BackupError(f"cannot reach the target database: {tables.stderr.strip()[-500:]}")
    if tables.stdout.strip() != "0":
        raise BackupError(f"the target database {db['NAME']} is not empty: restore into a fresh one")
    _run(
        ["pg_restore", *args, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
         "-d", str(db["NAME"]), str(dump)],
        env,
    )  # fmt: skip


# --- Orthanc ------------------------------------------------------------------------------------
@dataclass
class Archive:
    url: str
    username: str
    password: str

    @classmethod
    def from_settings(cls) -> Archive:
        return cls(settings.ORTHANC_URL.rstrip("/"), settings.ORTHANC_USERNAME, settings.ORTHANC_PASSWORD)

    def session(self) -> requests.Session:
        session = requests.Session()
        session.auth = (self.username, self.password)
        return session


def list_instances(archive: Archive, session: requests.Session) -> Iterator[dict[str, Any]]:
    since = 0
    while True:
        params: dict[str, str | int] = {"expand": "", "since": since, "limit": PAGE}
        answer = session.get(f"{archive.url}/instances", params=params, timeout=60)
        answer.raise_for_status()
        page = answer.json()
        yield from page
        if len(page) < PAGE:
            return
        since += PAGE


def _known_objects(root: Path) -> dict[tuple[str, str], str]:
    """(Orthanc ID, file UUID) → SHA-256 from the finished backups: Orthanc never rewrites a stored
    file (OverwriteInstances is off), and a re-stored instance gets a new file UUID."""
    known: dict[tuple[str, str], str] = {}
    for manifest in root.glob("*/manifest.json"):
        for item in json.loads(manifest.read_text())["orthanc"]["instances"]:
            if (root / "objects" / item["sha256"][:2] / item["sha256"]).exists():
                known[(item["id"], item.get("file_uuid", ""))] = item["sha256"]
    return known


def export_instances(archive: Archive, root: Path) -> list[dict[str, Any]]:
    session = archive.session()
    objects = root / "objects"
    known = _known_objects(root)
    exported = []
    for instance in list_instances(archive, session):
        key = (instance["ID"], instance.get("FileUuid", ""))
        sha = known.get(key)
        if sha is None:
            sha = _download(archive, session, instance["ID"], objects)
        exported.append(
            {
                "id": instance["ID"],
                "sop_instance_uid": instance.get("MainDicomTags", {}).get("SOPInstanceUID", ""),
                "file_uuid": key[1],
                "sha256": sha,
                "size": (objects / sha[:2] / sha).stat().st_size,
            }
        )
    return exported


def _download(archive: Archive, session: requests.Session, instance_id: str, objects: Path) -> str:
    objects.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.NamedTemporaryFile(dir=objects, prefix=".incoming-", delete=False) as tmp:
        try:
            with session.get(
                f"{archive.url}/instances/{instance_id}/file", stream=True, timeout=120
            ) as answer:
                answer.raise_for_status()
                for block in answer.iter_content(CHUNK):
                    digest.update(block)
                    tmp.write(block)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
    sha = digest.hexdigest()
    final = objects / sha[:2] / sha
    final.parent.mkdir(exist_ok=True)
    os.replace(tmp.name, final)
    return sha


def import_instances(archive: Archive, root: Path, instances: list[dict[str, Any]]) -> int:
    session = archive.session()
    for item in instances:
        data = (root / "objects" / item["sha256"][:2] / item["sha256"]).read_bytes()
        answer = session.post(f"{archive.url}/instances", data=data, timeout=120)
        if answer.status_code != 200:
            raise BackupError(f"Orthanc refused instance {item['id']}: HTTP {answer.status_code}")
        stored = answer.json()
        if stored.get("ID") != item["id"]:
            raise BackupError(f"instance {item['id']} came back as {stored.get('ID')}")
    return len(instances)


# --- Folders ----------------------------------------------------------------------------------
def pack_folder(source: Path, target: Path) -> None:
    with tarfile.open(target, "w") as tar:
        if source.exists():
            tar.add(source, arcname=".")


def unpack_folder(archive: Path, target: Path, *, force: bool) -> None:
    if target.exists() and any(target.iterdir()) and not force:
        raise BackupError(f"{target} is not empty (--force to unpack over it)")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")


# --- The backup -------------------------------------------------------------------------------
@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BackupError(f"another backup or rotation is running in {root}") from exc
        yield


def make_backup(root: Path | None = None, *, now: datetime | None = None) -> Path:
    """One full backup under root (BACKUP_DIR); returns its folder."""
    root = Path(root or settings.BACKUP_DIR)
    now = now or datetime.now(UTC)
    with _locked(root):
        for stale in root.glob("*.partial"):  # a backup killed half-way
            shutil.rmtree(stale)
        work = root / f"{now.strftime(TIME_FORMAT)}.partial"
        work.mkdir()
        (work / "files").mkdir()
        dump_database(dict(settings.DATABASES["default"]), work / "platform.dump")
        folders: dict[str, dict[str, Any]] = {}
        for name in FOLDER_SETTINGS:
            tar = work / "files" / f"{name}.tar"
            pack_folder(Path(getattr(settings, name)), tar)
            folders[name] = {
                "file": f"files/{name}.tar",
                "sha256": sha256_file(tar),
                "size": tar.stat().st_size,
            }
        instances = export_instances(Archive.from_settings(), root)
        manifest = {
            "format": FORMAT,
            "created": now.isoformat(),
            "platform_database": {
                "file": "platform.dump",
                "name": settings.DATABASES["default"]["NAME"],
                "sha256": sha256_file(work / "platform.dump"),
                "size": (work / "platform.dump").stat().st_size,
            },
            "folders": folders,
            "orthanc": {"count": len(instances), "instances": instances},
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=1))
        sums = [
            f"{sha256_file(work / rel)}  {rel}"
            for rel in ["platform.dump", *(f["file"] for f in folders.values()), "manifest.json"]
        ]
        (work / "SHA256SUMS").write_text("\n".join(sums) + "\n")
        for path in work.rglob("*"):
            if path.is_file():
                _fsync(path)
        final = root / now.strftime(TIME_FORMAT)
        os.replace(work, final)
        return final


def backups(root: Path) -> list[tuple[datetime, Path]]:
    found = []
    for path in root.iterdir() if root.exists() else ():
        if (path / "manifest.json").exists():
            try:
                found.append((datetime.strptime(path.name, TIME_FORMAT).replace(tzinfo=UTC), path))
            except ValueError:
                continue
    return sorted(found, reverse=True)


def to_keep(found: list[tuple[datetime, Path]], daily: int, weekly: int) -> set[Path]:
    """The newest backup of each of the `daily` most recent days that have one, and the newest of
    each of the `weekly` most recent ISO weeks; the newest backup of all is always kept."""
    keep: set[Path] = {found[0][1]} if found else set()
    days: dict[Any, Path] = {}
    weeks: dict[Any, Path] = {}
    for when, path in found:  # newest first: the first seen of a day or week is its newest
        days.setdefault(when.date(), path)
        weeks.setdefault(when.isocalendar()[:2], path)
    keep |= set(list(days.values())[:daily]) | set(list(weeks.values())[:weekly])
    return keep


def rotate(root: Path | None = None, daily: int | None = None, weekly: int | None = None) -> list[Path]:
    """Delete the backups the rotation does not keep, then the objects no kept backup lists."""
    root = Path(root or settings.BACKUP_DIR)
    daily = settings.BACKUP_KEEP_DAILY if daily is None else daily
    weekly = settings.BACKUP_KEEP_WEEKLY if weekly is None else weekly
    with _locked(root):
        found = backups(root)
        keep = to_keep(found, daily, weekly)
        removed = [path for _, path in found if path not in keep]
        for path in removed:
            shutil.rmtree(path)
        referenced = {
            item["sha256"]
            for path in keep
            for item in json.loads((path / "manifest.json").read_text())["orthanc"]["instances"]
        }
        for obj in (root / "objects").glob("*/*") if (root / "objects").exists() else ():
            if obj.name not in referenced:
                obj.unlink()
        return removed


# --- Verification and restore -------------------------------------------------------------------
def verify(backup: Path) -> dict[str, Any]:
    """Every checksum of the backup and of the objects it lists; raises BackupError on the first bad one."""
    backup = Path(backup)
    manifest_path = backup / "manifest.json"
    if not manifest_path.exists():
        raise BackupError(f"{backup} is not a finished backup (no manifest.json)")
    for line in (backup / "SHA256SUMS").read_text().splitlines():
        sha, rel = line.split("  ", 1)
        if not (backup / rel).exists() or sha256_file(backup / rel) != sha:
            raise BackupError(f"{rel}: checksum mismatch or missing")
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {manifest.get('format')}")
    objects = backup.parent / "objects"
    for item in manifest["orthanc"]["instances"]:
        path = objects / item["sha256"][:2] / item["sha256"]
        if not path.exists() or sha256_file(path) != item["sha256"]:
            raise BackupError(f"instance {item['id']}: object missing or corrupt")
    return manifest


def restore_backup(
    backup: Path, *, create_database: bool = False, force_folders: bool = False
) -> dict[str, int]:
    """Into the database, Orthanc and folders of the current settings (a fresh installation)."""
    from django.db import connection

    backup = Path(backup)
    manifest = verify(backup)
    restore_database(dict(settings.DATABASES["default"]), backup / "platform.dump", create=create_database)
    stored = import_instances(Archive.from_settings(), backup.parent, manifest["orthanc"]["instances"])
    for name, item in manifest["folders"].items():
        unpack_folder(backup / item["file"], Path(getattr(settings, name)), force=force_folders)
    from ingest.models import ChangesCursor

    connection.close()  # a connection opened before the restore saw an empty schema
    ChangesCursor.objects.update_or_create(name="orthanc", defaults={"last_seq": 0})  # re-read it all
    return {"instances": stored, "folders": len(manifest["folders"])}
