"""Codes, not sentences, in the database: a verdict is a code and its parameters, rendered when
it is shown — page, API, tus answer — in the language of whoever reads it, from one catalogue."""

import json
import re
import subprocess
import sys
from html import escape

import pytest
from django.urls import reverse
from django.utils import translation

from inference.pixel_codes import PREREAD_ONLY, PixelCode
from ingest import verdicts
from ingest.dicom_check import FileCode
from ingest.models import FileVerdict
from tests.helpers import api_client
from tests.paths import CT_HEAD, EDGE_CASES, REPO
from tests.test_uploads_tus import TUS, _create
from uploads.models import Transfer

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]
TRUNCATED = EDGE_CASES / "pydicom" / "MR_truncated.dcm"


def _in(language: str, code: str) -> str:
    """A verdict's sentence in one language, from the committed catalogue (the .po files)."""
    with translation.override(language):
        return str(verdicts.MESSAGES[code])


FRENCH_TRUNCATED = _in("fr", "truncated")
ENGLISH_TRUNCATED = _in("en", "truncated")


def test_the_catalogue_translates_the_verdicts():
    assert FRENCH_TRUNCATED.startswith("Fichier incomplet")
    assert ENGLISH_TRUNCATED.startswith("Incomplete file")


def test_verdicts_store_a_code_and_its_parameters_never_a_sentence():
    for model in (FileVerdict, Transfer):
        columns = {f.name for f in model._meta.get_fields()}
        assert {"code", "params"} <= columns and "reason" not in columns, model
    assert dict(Transfer._meta.get_field("outcome").choices).keys() == {
        "stored",
        "duplicate",
        "refused",
        "mixed",
    }
    assert dict(FileVerdict._meta.get_field("outcome").choices).keys() == {"stored", "duplicate", "refused"}


def test_the_pixel_codes_are_the_strings_the_pre_read_shares():
    assert {str(c) for c in PixelCode} - {str(c) for c in PREREAD_ONLY} == {
        "no_pixels",
        "not_image",
        "bad_pixel_description",
        "too_large",
        "truncated",
        "undecodable",
        "unsupported_codec",
    }


def test_every_code_the_platform_can_give_has_a_sentence():
    """The checker's codes, the platform's, and every code a tus refusal can carry."""
    codes = {str(c) for c in (*FileCode, *PixelCode)} - {str(FileCode.OK)} - {str(c) for c in PREREAD_ONLY}
    codes |= {v for k, v in vars(verdicts.Code).items() if k.isupper()}
    sources = "\n".join(p.read_text() for p in (REPO / "platform" / "uploads").glob("*.py"))
    codes |= set(re.findall(r'UploadRefused\(\d+, "([a-z0-9_]+)"', sources))
    codes |= set(re.findall(r'PhotoRefused\("([a-z0-9_]+)"', sources))
    codes |= set(re.findall(r'refused_file\(\w+, "([a-z0-9_]+)"', sources))
    missing = codes - set(verdicts.MESSAGES)
    assert not missing
    assert len(codes) > 50


def test_a_message_renders_its_parameters_and_survives_rows_without_them():
    assert "512×512×3" in verdicts.describe("too_large", {"rows": 512, "columns": 512, "frames": 3})
    assert "…×…×…" in verdicts.describe("too_large", {})  # a row migrated with empty params
    assert verdicts.describe("ok") == ""
    assert "no_such_code" in verdicts.describe("no_such_code")


def test_the_checker_child_emits_codes_and_parameters_only(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_bytes(b"x" * 600)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ingest.dicom_check",
            str(tmp_path),
            str(TRUNCATED),
            str(text),
            str(CT_HEAD / "01.dcm"),
            str(EDGE_CASES / "pydicom" / "empty_charset_LEI.dcm"),
        ],
        capture_output=True,
        check=True,
        cwd=REPO / "platform",
        timeout=60,
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(line["ok"], line["code"]) for line in lines] == [
        (False, "truncated"),
        (False, "not_dicom"),
        (True, "ok"),
        (False, "missing_uid"),
    ]
    assert all("reason" not in line and isinstance(line["params"], dict) for line in lines)
    assert lines[3]["params"] == {"uid": "StudyInstanceUID"}


def test_the_api_renders_the_reason_in_the_language_of_the_request(tech_a):
    msgid = FRENCH_TRUNCATED
    client = api_client(tech_a)
    answers = {}
    for lang in ("fr", "en"):
        with TRUNCATED.open("rb") as f:
            answers[lang] = client.post(
                reverse("api_upload"),
                {"files": [f], "indication": "x"},
                format="multipart",
                HTTP_ACCEPT_LANGUAGE=lang,
            ).json()
    assert answers["fr"]["verdicts"][0]["reason"] == msgid
    assert answers["en"]["verdicts"][0]["reason"] == ENGLISH_TRUNCATED
    # The same rows, read back: one code, no sentence stored.
    assert set(FileVerdict.objects.values_list("code", flat=True)) == {"truncated"}
    with translation.override("en"):
        assert FileVerdict.objects.first().reason == ENGLISH_TRUNCATED


def test_the_result_page_shows_the_reason_in_the_readers_language(tech_a, client):
    msgid = FRENCH_TRUNCATED
    client.force_login(tech_a)
    with TRUNCATED.open("rb") as f:
        sent = client.post(reverse("upload"), {"files": [f], "indication": "x", "priority": "routine"})
    assert sent.status_code == 302
    assert escape(msgid) in client.get(sent["Location"]).content.decode()
    assert ENGLISH_TRUNCATED in client.get(sent["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_tus_answers_give_the_reason_in_the_language_of_the_request(tech_a, settings):
    settings.UPLOADS_SITE_QUOTA_BYTES = 10
    tech = api_client(tech_a)
    msgid = _in("fr", "quota")
    fr, en = (
        tech.post("/api/v1/uploads/", HTTP_UPLOAD_LENGTH="11", HTTP_ACCEPT_LANGUAGE=lang, **TUS)
        for lang in ("fr", "en")
    )
    assert (fr.status_code, fr.json()["code"], fr.json()["reason"]) == (413, "quota", msgid)
    assert en.json()["reason"].startswith("Site upload quota reached")


def test_a_transfers_verdict_is_rendered_in_the_language_of_the_status_request(tech_a):
    data = TRUNCATED.read_bytes()
    tech = api_client(tech_a)
    url = _create(tech, data)["Location"]
    tech.generic(
        "PATCH", url, data, content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET="0", **TUS
    )
    msgid = FRENCH_TRUNCATED
    assert tech.get(url, HTTP_ACCEPT_LANGUAGE="en").json()["reason"] == ENGLISH_TRUNCATED
    assert tech.get(url, HTTP_ACCEPT_LANGUAGE="fr").json()["reason"] == msgid
    assert Transfer.objects.get().code == "truncated"
