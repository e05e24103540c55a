"""The quickstart's SMS gateway: one JSON line per message in ALERTS_SMS_FILE (nothing is sent)."""

from __future__ import annotations

import json

from django.conf import settings

from . import Handed


class FileBackend:
    name = "file"

    def send(self, *, to: str, text: str, encoding: str, reference: str) -> Handed:
        path = settings.ALERTS_SMS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"to": to, "text": text, "encoding": encoding, "ref": reference}) + "\n")
        return Handed(gateway_id=f"file-{reference}")
