"""Backup → wipe → restore on the real PostgreSQL and Orthanc (docs/backup.md): studies sent
through the platform and signed, backed up by `manage.py backup`, restored by `manage.py restore`
into a new database and a new, empty Orthanc; every study, image (same SOP Instance UID, same
pixel data) and report version comes back, and so do the spool's acknowledged bytes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.conf import settings as django_settings
from django.urls import reverse

from orthanc.server import OrthancProcess
from studies.models import Study
from tests.helpers import api_client, new_chest, send_ct, send_files, wait_for
from tests.ops_support import SNAPSHOT, child_env, manage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.orthanc]


def _sign(doctor, study, conclusion):
    dr = api_client(doctor)
    assert dr.post(reverse("api_claim", args=[study.pk])).status_code == 200
    signed = dr.put(
        reverse("api_report", args=[study.pk]),
        {"findings": "Examen relu.", "conclusion": conclusion, "sign": True},
        format="json",
    )
    assert signed.status_code == 200, signed.content


def _pixels(server, instance_id: str) -> str:
    answer = requests.get(
        f"{server.url}/instances/{instance_id}/content/7fe0-0010",
        auth=(server.username, server.password),
        timeout=30,
    )
    answer.raise_for_status()
    return hashlib.sha256(answer.content).hexdigest()


def _sop_uid(server, instance_id: str) -> str:
    tags = requests.get(
        f"{server.url}/instances/{instance_id}/simplified-tags",
        auth=(server.username, server.password),
        timeout=30,
    )
    tags.raise_for_status()
    return tags.json()["SOPInstanceUID"]


def _snapshot(env) -> dict:
    done = manage(["shell", "--no-imports", "-c", SNAPSHOT], env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _db_command(tool: str, name: str) -> None:
    db = django_settings.DATABASES["default"]
    subprocess.run(
        [tool, "--if-exists", "-h", db.get("HOST") or "127.0.0.1", "-p", str(db.get("PORT") or 5432),
         "-U", db.get("USER") or "postgres", name],
        check=False, capture_output=True,
    )  # fmt: skip


def test_backup_wipe_restore_brings_back_every_study_image_and_report(
    celery_worker, orthanc_server, tech_a, radiologist, tmp_path
):
    ct = send_ct(tech_a, tmp_path, n=3)
    chest = send_files(tech_a, [new_chest(tmp_path, "chest")], priority="routine")
    for study in (ct, chest):
        wait_for(lambda s=study: Study.objects.get(pk=s.pk).status == "queued", timeout=60)
    _sign(radiologist, ct, "Scanner normal.")
    _sign(radiologist, chest, "Pas de foyer.")
    # A study stored in Orthanc that the platform does not know yet (as one archived between the
    # database dump and the archive's export): the changes feed must find it after the restore.
    stray = new_chest(tmp_path, "stray")
    stray_stored = orthanc_server.client().store_instance(stray.read_bytes())
    # Acknowledged bytes still in the spool (a resumable upload under way) and a model package.
    src = {name: tmp_path / "source" / name for name in ("spool", "audit", "models")}
    (src["spool"] / "tus").mkdir(parents=True)
    (src["spool"] / "tus" / "upload-1").write_bytes(b"\x01acknowledged bytes" * 1000)
    (src["models"] / "demo").mkdir(parents=True)
    (src["models"] / "demo" / "manifest.json").write_text('{"name": "demo"}')
    src["audit"].mkdir()
    backup_dir = tmp_path / "backups"
    folders = {"INGEST_SPOOL_DIR": "spool", "AUDIT_SPOOL_DIR": "audit", "JOLIBA_MODELS_DIR": "models"}
    source_env = child_env(
        orthanc_server, BACKUP_DIR=str(backup_dir), **{k: str(src[v]) for k, v in folders.items()}
    )
    before = _snapshot(source_env)
    assert len(before["report_versions"]) == 2 and len(before["studies"]) == 2

    done = manage(["backup"], source_env)
    assert done.returncode == 0, done.stderr
    backup = backup_dir / done.stdout.strip().rsplit("/", 1)[-1]
    assert (backup / "manifest.json").exists() and not list(backup_dir.glob("*.partial"))
    sums = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=backup, capture_output=True, text=True)
    assert sums.returncode == 0, sums.stdout + sums.stderr
    manifest = json.loads((backup / "manifest.json").read_text())
    listed = {i["sop_instance_uid"] for i in manifest["orthanc"]["instances"]}
    ours = {sop for s in before["studies"].values() for sop, _ in s["instances"]}
    assert ours <= listed and len(listed) == manifest["orthanc"]["count"]

    # Wipe: a new database name and a new Orthanc with an empty storage folder.
    target_db = f"{django_settings.DATABASES['default']['NAME']}_restored_{uuid.uuid4().hex[:6]}"
    fresh = OrthancProcess(tmp_path / "orthanc-fresh").start()
    dst = {name: tmp_path / "restored" / name for name in ("spool", "audit", "models")}
    try:
        assert (
            requests.get(f"{fresh.url}/instances", auth=(fresh.username, fresh.password), timeout=5).json()
            == []
        )
        db = django_settings.DATABASES["default"]
        target_env = child_env(
            fresh,
            DATABASE_URL=f"postgres://{db.get('USER') or 'postgres'}@{db.get('HOST') or '127.0.0.1'}:"
            f"{db.get('PORT') or 5432}/{target_db}",
            **{k: str(dst[v]) for k, v in folders.items()},
        )
        done = manage(["restore", str(backup), "--create-database"], target_env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["instances"] == manifest["orthanc"]["count"]

        after = _snapshot(target_env)
        assert after["studies"] == before["studies"]
        assert after["report_versions"] == before["report_versions"]
        assert after["changes_cursor"] == 0  # the feed re-reads the restored archive
        for study in before["studies"].values():
            for sop_uid, instance_id in study["instances"]:
                assert _sop_uid(fresh, instance_id) == sop_uid
                assert _pixels(fresh, instance_id) == _pixels(orthanc_server, instance_id)
        assert (dst["spool"] / "tus" / "upload-1").read_bytes() == (
            src["spool"] / "tus" / "upload-1"
        ).read_bytes()
        assert (dst["models"] / "demo" / "manifest.json").read_text() == '{"name": "demo"}'

        # The study the dump did not know: the changes feed of the restored platform finds it.
        feed = "from ingest.changes_feed import follow_changes; follow_changes()"
        assert manage(["shell", "-c", feed], target_env).returncode == 0
        found = _snapshot(target_env)["studies"]
        assert stray_stored.study_id in {s["orthanc_id"] for s in found.values()}

        # A second restore into the now non-empty database is refused, with the reason.
        again = manage(["restore", str(backup)], target_env)
        assert again.returncode != 0 and "not empty" in again.stderr
    finally:
        fresh.stop()
        _db_command("dropdb", target_db)

    # The next backup downloads nothing it already has; a corrupt object fails verification.
    objects = sorted(p for p in (backup_dir / "objects").rglob("*") if p.is_file())
    stamps = {p: p.stat().st_mtime_ns for p in objects}
    done = manage(["backup", "--no-rotate"], source_env)
    assert done.returncode == 0, done.stderr
    assert {p: p.stat().st_mtime_ns for p in objects} == stamps
    assert sorted(p for p in (backup_dir / "objects").rglob("*") if p.is_file()) == objects
    victim = objects[0]
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one flipped byte
    checked = manage(["restore", str(backup), "--verify-only"], source_env)
    assert checked.returncode != 0 and "corrupt" in checked.stderr


def test_rotation_keeps_daily_and_weekly_backups(tmp_path):
    from health.backup import TIME_FORMAT, backups, rotate

    start = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)  # a Sunday
    sha = "ab" * 32
    (tmp_path / "objects" / "ab").mkdir(parents=True)
    (tmp_path / "objects" / "ab" / sha).write_bytes(b"kept")
    (tmp_path / "objects" / "cd").mkdir()
    (tmp_path / "objects" / "cd" / ("cd" * 32)).write_bytes(b"unreferenced")
    for day in range(30):
        for hour in (0, 12):  # two a day: only the later of a day counts as that day's
            folder = tmp_path / (start + timedelta(days=day, hours=hour)).strftime(TIME_FORMAT)
            folder.mkdir()
            items = [{"id": "x", "sha256": sha}] if day == 29 else []
            (folder / "manifest.json").write_text(json.dumps({"orthanc": {"instances": items}}))
    removed = rotate(tmp_path, daily=3, weekly=3)
    kept = [when for when, _ in backups(tmp_path)]
    last = start + timedelta(days=29, hours=12)  # Monday 30 November
    expected = [last, last - timedelta(days=1), last - timedelta(days=2)]  # three days; this week is the 30th
    # Weeks: this one (the 30th), the one before (its newest: Sunday the 29th, kept as a day too),
    # and the one before that: its Sunday, the 22nd.
    expected.append(datetime(2026, 11, 22, 14, 0, tzinfo=UTC))
    assert kept == expected
    assert len(removed) == 60 - len(kept)
    assert (tmp_path / "objects" / "ab" / sha).exists()
    assert not (tmp_path / "objects" / "cd" / ("cd" * 32)).exists()
