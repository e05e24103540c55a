"""Helpers of the ops tests (health endpoints, backups): child processes pointed at the test
database, and sockets that accept a connection and never answer (a hung component)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.helpers import database_url
from tests.paths import REPO


def child_env(orthanc, **extra: str) -> dict[str, str]:
    """The environment of a worker or manage.py child that sees the test database and `orthanc`."""
    from django.conf import settings

    return {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "ORTHANC_URL": orthanc.url,
        "ORTHANC_USERNAME": orthanc.username,
        "ORTHANC_PASSWORD": orthanc.password,
        "PYTHONPATH": str(REPO / "platform"),
        **extra,
    }


def manage(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


class SilentPort:
    """A listening socket nobody accepts from: connections complete (the kernel's backlog) and then
    hear nothing, as from a hung process."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def snapshot() -> dict:
    """What a backup must bring back, from the database of the current settings (run in a child
    `manage.py shell` against the source and against the restored database)."""
    from ingest.models import ChangesCursor
    from reports.models import ReportVersion
    from studies.models import Study

    studies = {
        study.study_instance_uid: {
            "orthanc_id": study.orthanc_id,
            "status": study.status,
            "priority": study.priority,
            "site": study.site.code if study.site else None,
            "instances": sorted([i.sop_instance_uid, i.orthanc_id] for i in study.instances.all()),
        }
        for study in Study.objects.select_related("site").prefetch_related("instances")
    }
    versions = sorted(
        [
            v.report.study.study_instance_uid,
            v.number,
            v.kind,
            v.findings,
            v.conclusion,
            v.author_name,
            v.signed_at.isoformat(),
        ]  # fmt: skip
        for v in ReportVersion.objects.select_related("report__study")
    )
    cursor = ChangesCursor.objects.filter(name="orthanc").values_list("last_seq", flat=True).first()
    return {"studies": studies, "report_versions": versions, "changes_cursor": cursor}


SNAPSHOT = "import json; from tests.ops_support import snapshot; print(json.dumps(snapshot()))"
