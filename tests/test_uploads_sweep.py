"""Every transfer ends with a verdict, and one bad transfer never blocks another.

A 1×70000 PNG sent as a photo (pydicom could not write its 70000 columns: OSError) and a
fuzzed TIFF (Pillow fails in its own ways) got no verdict at all: the status request answered
500, the transfer stayed complete, and the periodic sweep stopped at it — every transfer queued
behind it waited for ever.
"""

import io
import random

import numpy as np
import pytest
from django.db import DatabaseError
from PIL import Image
from pydicom.uid import generate_uid

from tests.helpers import api_client, dicom_copy
from tests.paths import CT_HEAD
from tests.test_uploads_tus import TUS, _create, _patch
from uploads import finalisation, tasks
from uploads.models import Transfer
from uploads.photo import PhotoRefused, wrap_photo

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]
FACTS = {"patient_name": "DIARRA^Awa", "patient_id": "KY-0042", "modality": "CR"}


def wide_png() -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.zeros((1, 70000), np.uint8)).save(out, format="PNG")
    return out.getvalue()


def fuzzed_tiff(seed: int = 1834) -> bytes:
    """A small TIFF with a few bytes flipped, as a damaged scan arrives."""
    out = io.BytesIO()
    image = Image.fromarray((np.arange(32 * 32) % 256).astype(np.uint8).reshape(32, 32))
    image.save(out, format="TIFF", compression="tiff_deflate")
    data, rnd = bytearray(out.getvalue()), random.Random(seed)
    for _ in range(rnd.randint(1, 8)):
        data[rnd.randrange(4, len(data))] = rnd.randrange(256)
    return bytes(data)


def queue_photo(tech, data: bytes, name: str) -> str:
    url = _create(tech, data, filename=name, kind="photo", **FACTS)["Location"]
    assert _patch(tech, url, 0, data).status_code == 204
    return url


@pytest.fixture
def no_worker(monkeypatch):
    monkeypatch.setattr(tasks.finalise_transfer, "delay", lambda *a, **k: None)


def test_a_photo_nothing_can_read_gets_a_verdict_and_the_status_request_never_500s(tech_a, tmp_path):
    tech = api_client(tech_a)
    got = {}
    for name, data in (("large.png", wide_png()), ("scan.tif", fuzzed_tiff())):
        status = tech.get(queue_photo(tech, data, name))
        assert status.status_code == 200, (name, status.content[:300])
        answer = status.json()
        assert (answer["state"], answer["outcome"]) == ("finalised", "refused"), (name, answer)
        assert answer["reason"]
        got[name] = answer["code"]
    assert got == {"large.png": "photo_too_large", "scan.tif": "photo_unreadable"}


def test_wrapping_refuses_what_pillow_or_pydicom_cannot_take(tmp_path):
    for data, code in (
        (wide_png(), "photo_too_large"),
        (fuzzed_tiff(), "photo_unreadable"),
        (b"GIF89a" + b"\0" * 100, "photo_unreadable"),
    ):
        source = tmp_path / "in"
        source.write_bytes(data)
        with pytest.raises(PhotoRefused) as refused:
            wrap_photo(source, FACTS, tmp_path / "out.dcm")
        assert refused.value.code == code


def fresh_slice(tmp_path, number: int) -> bytes:
    """A CT slice of a study of its own: the session's archive is shared with other tests."""
    return dicom_copy(
        CT_HEAD / f"{number:02d}.dcm",
        tmp_path / f"{number:02d}.dcm",
        StudyInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
    ).read_bytes()


def test_an_input_nothing_foresaw_is_refused_as_unprocessable_not_retried_for_ever(
    tech_a, no_worker, monkeypatch, tmp_path
):
    data = fresh_slice(tmp_path, 20)
    tech = api_client(tech_a)
    url = _create(tech, data)["Location"]
    _patch(tech, url, 0, data)

    def surprise(*args, **kwargs):
        raise TypeError("an input nobody foresaw")

    monkeypatch.setattr(finalisation, "_files_of", surprise)
    status = tech.get(url)
    assert status.status_code == 200
    assert (status.json()["outcome"], status.json()["code"]) == ("refused", "unprocessable")
    assert Transfer.objects.get().state == "finalised"


def test_the_sweep_finishes_every_transfer_even_behind_ones_that_fail(
    tech_a, no_worker, monkeypatch, tmp_path
):
    tech = api_client(tech_a)
    stuck_url = _create(tech, b"\0" * 200, filename="stuck.dcm")["Location"]  # first in line
    _patch(tech, stuck_url, 0, b"\0" * 200)
    queue_photo(tech, wide_png(), "large.png")
    queue_photo(tech, fuzzed_tiff(), "scan.tif")
    ct = fresh_slice(tmp_path, 21)
    url = _create(tech, ct, filename="21.dcm")["Location"]
    _patch(tech, url, 0, ct)
    stuck = Transfer.objects.get(filename="stuck.dcm")
    check = finalisation._check

    def database_trouble(transfer, work):  # what no verdict can be recorded for: kept, retried
        if transfer.pk == stuck.pk:
            raise DatabaseError("could not serialize access")
        return check(transfer, work)

    monkeypatch.setattr(finalisation, "_check", database_trouble)
    tasks.sweep_transfers()
    states = dict(Transfer.objects.values_list("filename", "state"))
    assert states == {
        "stuck.dcm": "complete",
        "large.png": "finalised",
        "scan.tif": "finalised",
        "21.dcm": "finalised",
    }
    assert Transfer.objects.get(filename="21.dcm").outcome == "stored"
    monkeypatch.setattr(finalisation, "_check", check)
    tasks.sweep_transfers()  # the next sweep gives the last one its verdict
    assert Transfer.objects.get(pk=stuck.pk).state == "finalised"
    assert tech.get(stuck_url, **TUS).json()["code"] == "not_dicom"
