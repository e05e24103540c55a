"""A bounded fuzz run of every ingest path (issue 10, Tests): DICOM, ZIP, PNG and JPEG files from
the test images (tests/paths.py: the shared folder, else the portable set), mutated by hypothesis,
sent through tus with its finalisation, the plain form and the multipart API; and manifest JSON.

For every example: no unhandled exception (no 500), every upload ends with a verdict (accepted, or
refused with a reason), the spool is bounded while it runs and empty afterwards, and the checker
children's peak memory (each reports its own getrusage high-water mark) stays under their limit.

Bounded for CI: a fixed number of examples per path, a deadline per example, derandomized (the
same examples on every run, so a failure reproduces). JOLIBA_FUZZ_SCALE=10 runs ten times more.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import resource
import threading
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.cache import cache
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import validation
from ingest.models import FileVerdict
from tests.helpers import api_client
from tests.paths import CT_HEAD, EDGE_CASES, FILM_PHOTO, HAVE_SHARED_TESTDATA, REAL_CXR
from uploads import photo, tasks
from uploads.models import Transfer

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs: the spool is emptied as in production

SCALE = max(1, int(os.environ.get("JOLIBA_FUZZ_SCALE", "1")))
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
VERDICTS = {"stored", "duplicate", "refused", "mixed"}


def _fuzz(examples: int, seconds: int = 60):
    return settings(
        max_examples=examples * SCALE,
        deadline=timedelta(seconds=seconds),
        derandomize=True,  # reproducible: the same examples every run
        database=None,  # nothing written beside the checkout
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
        print_blob=True,
    )


# --- seeds: real files ------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _dicom_seeds() -> list[bytes]:
    small = [EDGE_CASES / "pydicom" / n for n in ("MR_small_RLE.dcm", "JPEG-lossy.dcm", "no_meta.dcm")]
    return [_read(p) for p in small if p.exists()] + [_read(CT_HEAD / "01.dcm")]


def _png_seed() -> bytes:
    shared = REAL_CXR / "png" / "NIH-CXR14_00000001_000.png"
    if HAVE_SHARED_TESTDATA and shared.exists():
        return _read(shared)
    from PIL import Image  # the portable set has no PNG: the real chest JPEG, as a PNG

    out = io.BytesIO()
    with Image.open(FILM_PHOTO) as img:
        img.convert("L").resize((256, 256)).save(out, format="PNG")
    return out.getvalue()


def _zip_of(members: list[bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for i, data in enumerate(members):
            z.writestr(f"{i:05d}.dcm", data)
    return out.getvalue()


DICOM = _dicom_seeds()
SMALL_DICOM = [d for d in DICOM if len(d) < 100_000]
ZIP = [_zip_of(SMALL_DICOM[:2]), _zip_of(SMALL_DICOM)]
PNG = [_png_seed()]
JPEG = [_read(FILM_PHOTO)]


class Blob(bytes):
    """Bytes whose repr is short (a failing example prints its size and digest, not 700 kB)."""

    def __repr__(self) -> str:
        return f"Blob({len(self)} bytes, sha256 {hashlib.sha256(self).hexdigest()[:16]})"


@st.composite
def mutated(draw, seeds: list[bytes], *, tail: int = 0) -> bytes:
    """A seed with a few mutations: bit flips, overwrites (0xFF… lengths included), truncation,
    insertions, duplicated blocks. Half of them near the start (headers), or the end (`tail`
    bytes: a ZIP's central directory)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 6))):
        if not data:
            break
        where = draw(st.sampled_from(["head", "tail", "anywhere"]))
        if where == "head":
            pos = draw(st.integers(0, min(len(data) - 1, 2048)))
        elif where == "tail" and tail:
            pos = draw(st.integers(max(0, len(data) - tail), len(data) - 1))
        else:
            pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "overwrite", "huge", "truncate", "insert", "duplicate"]))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[pos : pos + len(chunk)] = chunk
        elif op == "huge":  # a length field claiming gigabytes
            data[pos : pos + 4] = draw(
                st.sampled_from([b"\xff\xff\xff\xff", b"\xff\xff\xff\x7f", b"\0\0\0\x80"])
            )
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        else:
            length = draw(st.integers(1, 4096))
            data[pos:pos] = data[pos : pos + length]
    return Blob(data)


# --- watching disk and memory -----------------------------------------------------------------


class SpoolWatch:
    """Samples the spool's size while the run goes, to bound what it ever held."""

    def __init__(self, root: Path) -> None:
        self.root, self.peak, self._stop = root, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def size(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except OSError:
                    pass  # removed while we looked
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.size())
            time.sleep(0.01)

    def __enter__(self) -> SpoolWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def fuzz_env(settings, monkeypatch, tech_a):
    settings.INGEST_RATE_LIMITS = {}  # the run sends hundreds of requests a minute on purpose
    settings.UPLOADS_MAX_OPEN_PER_USER = 0
    monkeypatch.setattr(tasks.finalise_transfer, "delay", lambda *a, **k: None)  # finalised by GET
    cache.clear()
    settings.INGEST_SPOOL_DIR.mkdir(parents=True, exist_ok=True)
    validation.reset_child_peak()
    parent_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with SpoolWatch(settings.INGEST_SPOOL_DIR) as watch:
        yield watch
    assert watch.size() == 0, "files left in the spool"
    # Memory: the checker children report their own peak; their limit (RLIMIT_AS) bounds it, and
    # the parent — which never parses untrusted DICOM — does not grow by more than a few photos.
    peak_child = validation.child_peak_rss_kb() * 1024
    assert 0 < peak_child <= settings.INGEST_CHILD_MEMORY_BYTES, peak_child
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - parent_before) * 1024
    assert grown < 512 * 1024**2, grown
    print(f"fuzz: spool peak {watch.peak / 1e6:.1f} MB, checker child peak RSS {peak_child / 1e6:.1f} MB")


def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _tus_send(client, data: bytes, kind: str, **extra: str) -> dict:
    meta = {"filename": f"fuzz.{kind}", "kind": kind, "sha256": hashlib.sha256(data).hexdigest(), **extra}
    created = client.post(
        "/api/v1/uploads/", HTTP_UPLOAD_LENGTH=str(len(data)), HTTP_UPLOAD_METADATA=_meta(**meta), **TUS
    )
    assert created.status_code == 201, (created.status_code, created.content[:200])
    url = created["Location"]
    if data:
        patched = client.generic(
            "PATCH", url, data, content_type="application/offset+octet-stream", HTTP_UPLOAD_OFFSET="0", **TUS
        )
        assert patched.status_code == 204, (patched.status_code, patched.content[:200])
    status = client.get(url)  # finalises it (nobody else is on it)
    assert status.status_code == 200
    return status.json()


def _assert_verdict(answer: dict) -> None:
    assert answer["state"] == "finalised", answer
    assert answer["outcome"] in VERDICTS, answer
    if answer["outcome"] == "refused":
        assert answer["code"] and answer["reason"], answer
    transfer = Transfer.objects.get(pk=answer["id"])
    for verdict in transfer.submission.verdicts.all():  # each member of a bundle too
        assert verdict.outcome in VERDICTS and (verdict.outcome != "refused" or verdict.reason)


def _bounded(watch: SpoolWatch, largest: int, expanded: int = 0) -> None:
    """The received file, the checker's clean copy, a bundle's members: a small multiple, never
    more; a photo also becomes its decoded pixels (`expanded`: at most photo.MAX_PIXELS bytes,
    wrapped then checked)."""
    assert watch.peak <= 4 * largest + expanded + 2 * 1024**2, (watch.peak, largest)


@pytest.mark.orthanc
@_fuzz(examples=10)
@given(data=mutated(DICOM))
def test_fuzzed_dicom_through_tus_always_gets_a_verdict(fuzz_env, tech_a, data):
    _assert_verdict(_tus_send(api_client(tech_a), data, "dicom"))
    _bounded(fuzz_env, len(data))


@pytest.mark.orthanc
@_fuzz(examples=8)
@given(data=mutated(ZIP, tail=400))
def test_fuzzed_zip_bundles_through_tus_always_get_a_verdict(fuzz_env, tech_a, data):
    _assert_verdict(_tus_send(api_client(tech_a), data, "bundle"))
    _bounded(fuzz_env, len(data))


@pytest.mark.orthanc
@_fuzz(examples=6)
@given(data=mutated(PNG + JPEG))
def test_fuzzed_photos_through_tus_always_get_a_verdict(fuzz_env, tech_a, data):
    answer = _tus_send(api_client(tech_a), data, "photo", patient_name="FUZZ^TEST", patient_id="F1")
    _assert_verdict(answer)
    _bounded(fuzz_env, len(data), expanded=2 * photo.MAX_PIXELS)


def _check_sending(answer_verdicts: list[dict], sent: int) -> None:
    assert len(answer_verdicts) == sent  # one verdict per file, none dropped
    for v in answer_verdicts:
        assert v["outcome"] in VERDICTS and (v["outcome"] != "refused" or v["reason"]), v


@pytest.mark.orthanc
@_fuzz(examples=4)
@given(files=st.lists(mutated(DICOM + PNG + JPEG + ZIP), min_size=1, max_size=3))
def test_fuzzed_files_through_the_plain_form_always_get_verdicts(fuzz_env, client, tech_a, files):
    client.force_login(tech_a)
    answer = client.post(
        reverse("upload"),
        {"files": [io.BytesIO(f) for f in files], "indication": "fuzz", "priority": "routine"},
    )
    assert answer.status_code == 302, (answer.status_code, answer.content[:300])
    result = client.get(answer["Location"])
    assert result.status_code == 200
    sent = result.context["submission"]
    _check_sending(
        [{"outcome": v.outcome, "reason": v.reason} for v in FileVerdict.objects.filter(submission=sent)],
        len(files),
    )
    _bounded(fuzz_env, sum(map(len, files)))


@pytest.mark.orthanc
@_fuzz(examples=4)
@given(files=st.lists(mutated(DICOM + PNG + JPEG + ZIP), min_size=1, max_size=3))
def test_fuzzed_files_through_the_multipart_api_always_get_verdicts(fuzz_env, tech_a, files):
    answer = api_client(tech_a).post(
        reverse("api_upload"),
        {"files": [io.BytesIO(f) for f in files], "indication": "fuzz", "priority": "routine"},
        format="multipart",
    )
    assert answer.status_code == 201, (answer.status_code, answer.content[:300])
    _check_sending(answer.json()["verdicts"], len(files))
    _bounded(fuzz_env, sum(map(len, files)))


# --- manifests: JSON of every shape -----------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=80),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=20), children, max_size=5)
    ),
    max_leaves=30,
)
FIELDS = ["id", "study_instance_uid", "priority", "indication", "instances", "files"]


@st.composite
def manifest_bodies(draw) -> bytes:
    """A manifest whose fields are any JSON; or a valid one's bytes mutated; or raw bytes."""
    kind = draw(st.sampled_from(["fields", "instances", "bytes", "raw"]))
    if kind == "fields":
        body = {name: draw(JSON_VALUES) for name in draw(st.lists(st.sampled_from(FIELDS), unique=True))}
        return json.dumps(body).encode()
    if kind == "instances":
        entry = st.dictionaries(
            st.sampled_from(["sop_instance_uid", "sha256", "size"]), JSON_VALUES, max_size=3
        )
        return json.dumps(
            {"instances": draw(st.lists(entry, max_size=5)), "files": draw(JSON_VALUES)}
        ).encode()
    valid = json.dumps(
        {
            "priority": "urgent",
            "indication": "Toux",
            "study_instance_uid": "1.2.3",
            "instances": [{"sop_instance_uid": "1.2.3.4", "sha256": "a" * 64, "size": 10}],
            "files": 1,
        }
    ).encode()
    if kind == "bytes":
        return draw(mutated([valid]))
    return draw(st.binary(max_size=300))


@pytest.mark.django_db  # no files: no need to flush the tables afterwards
@_fuzz(examples=100, seconds=10)
@given(body=manifest_bodies())
def test_fuzzed_manifests_are_answered_without_a_500(tech_a, body):
    cache.clear()
    answer = api_client(tech_a).generic(
        "POST", "/api/v1/uploads/manifests/", body, content_type="application/json"
    )
    assert answer.status_code in (200, 201, 400, 404, 413), (
        body[:80],
        answer.status_code,
        answer.content[:200],
    )
    if answer.status_code >= 400:
        assert answer.json()["reason"], answer.content


@pytest.mark.django_db
@_fuzz(examples=40, seconds=10)
@given(
    length=st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(max_size=30)),
    metadata=st.one_of(
        st.text(max_size=200),
        st.lists(st.tuples(st.text(max_size=12), st.binary(max_size=40)), max_size=6).map(
            lambda pairs: ",".join(f"{k} {base64.b64encode(v).decode()}" for k, v in pairs)
        ),
    ),
)
def test_fuzzed_tus_creations_are_answered_without_a_500(settings, tech_a, length, metadata):
    settings.INGEST_RATE_LIMITS = {}
    settings.UPLOADS_MAX_OPEN_PER_USER = 0
    try:
        answer = api_client(tech_a).post(
            "/api/v1/uploads/", HTTP_UPLOAD_LENGTH=length, HTTP_UPLOAD_METADATA=metadata, **TUS
        )
    except ValueError:  # the test client itself refuses a header with a newline: not a request
        return
    assert answer.status_code in (201, 400, 413), (length, metadata, answer.status_code, answer.content[:200])
