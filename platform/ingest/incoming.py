"""Turn Django's uploaded files into files on disk the validator can read."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from .services import IncomingFile


@contextmanager
def spooled(files: list[UploadedFile]) -> Iterator[list[IncomingFile]]:
    settings.INGEST_SPOOL_DIR.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="upload-", dir=settings.INGEST_SPOOL_DIR))
    try:
        incoming = []
        for i, f in enumerate(files):
            path = work / f"{i}.bin"
            with path.open("wb") as out:
                for chunk in f.chunks():
                    out.write(chunk)
            incoming.append(IncomingFile(name=Path(f.name or f"file-{i}").name, path=path))
        yield incoming
    finally:
        shutil.rmtree(work, ignore_errors=True)
