"""Upload limits that hold (issue 10, item 5), each fact the issue's author probed reproduced first:

- a 1.1 MB stored ZIP whose 2,000 entries point at the same data wrote 1.9 GB to the spool;
- one technician reserved the site's whole quota with 18 zero-byte upload creations;
- the plain form and its multipart API had no quota at all;
- manifests answered 500 to a JSON list or `files: 1e20`;
- rate limits on creating uploads and on the SMS-reply endpoint; 429 with Retry-After, in French.

The C-STORE route and Orthanc's own refusals are in tests/test_cstore_route.py and
tests/test_orthanc_config.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zipfile
import zlib
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import User
from ingest import quota
from ingest.models import DailyUsage, QuotaHold, Submission
from tests.helpers import api_client, ct_study_bytes
from uploads import finalisation, spool, tasks, transfers
from uploads.models import Transfer

pytestmark = pytest.mark.django_db
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


@pytest.fixture(autouse=True)
def _fresh_limits(settings, monkeypatch):
    cache.clear()  # django-ratelimit's counters (LocMemCache in tests)
    # Finalisation is called by hand here (no worker): the queued task would go nowhere anyway.
    monkeypatch.setattr(tasks.finalise_transfer, "delay", lambda *a, **k: None)
    yield
    cache.clear()


def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _create(client, length: int, **meta: str):
    meta.setdefault("filename", "f.dcm")
    return client.post(
        "/api/v1/uploads/", HTTP_UPLOAD_LENGTH=str(length), HTTP_UPLOAD_METADATA=_meta(**meta), **TUS
    )


def _patch(client, url: str, offset: int, body: bytes):
    return client.generic(
        "PATCH",
        url,
        body,
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET=str(offset),
        **TUS,
    )


def _send_tus(client, data: bytes, **meta: str) -> Transfer:
    created = _create(client, len(data), sha256=hashlib.sha256(data).hexdigest(), **meta)
    assert created.status_code == 201, created.content
    assert _patch(client, created["Location"], 0, data).status_code == 204
    return Transfer.objects.get(pk=created["Location"].rstrip("/").rsplit("/", 1)[1])


def _spool_bytes(settings) -> int:
    return sum(p.stat().st_size for p in settings.INGEST_SPOOL_DIR.rglob("*") if p.is_file())


# --- ZIP bundles ------------------------------------------------------------------------------


def _shared_data_zip(entries: int, data: bytes, *, gap: int = 0) -> bytes:
    """A stored ZIP with ONE local file (header + data) that `entries` central-directory entries
    all point to (same header offset): Fifield's overlap with shared local headers. `gap` junk
    bytes after the data keep the declared total under the bundle's size (to isolate the
    overlap check from the ratio check)."""
    name = b"00000.dcm"
    crc = zlib.crc32(data)
    local = struct.pack(
        "<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, len(data), len(data), len(name), 0
    )
    body = local + name + data + b"\0" * gap
    central = b""
    for _ in range(entries):
        central += struct.pack(
            "<4sHHHHHHIIIHHHHHII",
            b"PK\x01\x02",
            20,
            20,
            0,
            0,
            0,
            0,
            crc,
            len(data),
            len(data),
            len(name),
            0,
            0,
            0,
            0,
            0,
            0,  # every entry: the same local header at offset 0
        )
        central += name
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, entries, entries, len(central), len(body), 0)
    return body + central + end


def _finalised(transfer: Transfer) -> Transfer:
    assert finalisation.finalise_transfer(transfer.pk) == finalisation.Finalised.DONE
    transfer.refresh_from_db()
    assert transfer.state == Transfer.State.FINALISED
    return transfer


def test_the_plain_zipfile_module_would_expand_the_overlap_bomb_2000_fold():
    """What the issue measured, at a small scale and in memory: zipfile itself accepts every
    entry of the shared-data ZIP and would write entries × data bytes."""
    data = b"D" * 1024
    bomb = _shared_data_zip(2000, data)
    with zipfile.ZipFile(io.BytesIO(bomb)) as z:
        infos = z.infolist()
        assert len(infos) == 2000 and sum(i.file_size for i in infos) == 2000 * len(data)
        assert z.read(infos[1999]) == data  # readable: extraction would write 2 MB from 3 kB here
    assert len(bomb) < 200 * 1024


def test_a_zip_whose_2000_entries_share_their_data_is_refused_before_a_byte_is_written(tech_a, settings):
    data = b"\0" * (550 * 1024)  # 2,000 × 550 kB = 1.1 GB declared from a ~0.7 MB file
    bomb = _shared_data_zip(2000, data)
    transfer = _finalised(_send_tus(api_client(tech_a), bomb, kind="bundle"))
    assert transfer.outcome == "refused" and transfer.code == "bundle_ratio", transfer.code
    assert "disproportionné" in transfer.reason
    # Nothing was unpacked: the spool holds the bundle's own bytes (removed once committed), no more.
    assert _spool_bytes(settings) <= len(bomb)


def test_a_zip_whose_entries_overlap_is_refused_with_a_reason_whatever_the_ratio(tech_a, settings):
    # Two entries on the same data, with enough padding that the declared total is under the size.
    bomb = _shared_data_zip(2, b"x" * 1000, gap=5000)
    with zipfile.ZipFile(io.BytesIO(bomb)) as z:
        assert sum(i.file_size for i in z.infolist()) < len(bomb)  # the ratio check alone passes it
    transfer = _finalised(_send_tus(api_client(tech_a), bomb, kind="bundle"))
    assert (transfer.outcome, transfer.code) == ("refused", "bundle_overlap")
    assert "partagent les mêmes données" in transfer.reason


def test_a_zip_declaring_more_than_the_per_file_limit_is_refused_before_extraction(tech_a, settings):
    settings.UPLOADS_BUNDLE_MAX_RATIO = 10_000.0  # a deployment that accepts compression, say
    settings.UPLOADS_MAX_BYTES = 1024**2
    bomb = _shared_data_zip(100, b"\0" * 20_000)  # 2 MB declared > 1 MiB per file
    transfer = _finalised(_send_tus(api_client(tech_a), bomb, kind="bundle"))
    assert (transfer.outcome, transfer.code) == ("refused", "bundle_too_large")
    assert "1 Mo" in transfer.reason


def test_a_zip_declaring_more_than_the_sites_room_is_refused_before_extraction(tech_a, settings, tmp_path):
    members = ct_study_bytes(tmp_path, (1, 2))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for i, m in enumerate(members):
            z.writestr(f"{i}.dcm", m)
    bundle = buf.getvalue()
    settings.UPLOADS_SITE_QUOTA_BYTES = int(len(bundle) * 1.5)  # the bundle fits, not it and its content
    transfer = _finalised(_send_tus(api_client(tech_a), bundle, kind="bundle"))
    assert (transfer.outcome, transfer.code) == ("refused", "quota")


def test_too_many_entries_are_refused_from_the_end_record_before_zipfile_reads_them(tech_a, settings):
    settings.UPLOADS_BUNDLE_MAX_MEMBERS = 50
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for i in range(51):
            z.writestr(f"{i}.dcm", b"x")
    transfer = _finalised(_send_tus(api_client(tech_a), buf.getvalue(), kind="bundle"))
    assert (transfer.outcome, transfer.code) == ("refused", "bundle_too_many")
    assert "50" in transfer.reason


def test_a_zip_inside_the_bundle_is_refused_on_its_own_never_unpacked(tech_a, tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("deep.dcm", b"y" * 100)
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("inner.zip", inner.getvalue())
    transfer = _finalised(_send_tus(api_client(tech_a), outer.getvalue(), kind="bundle"))
    verdicts = list(transfer.submission.verdicts.values_list("outcome", "code"))
    assert verdicts == [("refused", "bundle_nested")]


def test_a_compressed_member_is_still_refused(tech_a):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.dcm", b"\0" * 100_000)
    transfer = _finalised(_send_tus(api_client(tech_a), buf.getvalue(), kind="bundle"))
    assert (transfer.outcome, transfer.code) == ("refused", "bundle_bad_member")


# --- zero-byte reservations -------------------------------------------------------------------


@pytest.fixture
def tech_a2(site_a):
    return User.objects.create_user(username="tech_a2", password="pw-tech_a2", role="technician", site=site_a)


def test_eighteen_zero_byte_creations_no_longer_reserve_the_sites_quota(tech_a, tech_a2, settings):
    settings.UPLOADS_MAX_BYTES = 1000
    settings.UPLOADS_SITE_QUOTA_BYTES = 18 * 1000  # the whole quota, 18 declared files' worth
    settings.UPLOADS_MAX_OPEN_PER_USER = 0  # this test is about the quota, not the cap
    greedy = api_client(tech_a)
    for _ in range(18):
        assert _create(greedy, 1000).status_code == 201
    assert Transfer.objects.filter(state="receiving", offset=0).count() == 18
    assert quota.spool_in_use(tech_a.site_id) == 0  # nothing received, nothing held
    # Before: 413 quota for everyone else of the site. Now the other technician sends.
    other = _send_tus(api_client(tech_a2), b"z" * 1000)
    assert other.state == Transfer.State.COMPLETE
    assert quota.spool_in_use(tech_a.site_id) == 1000


def test_the_quota_counts_bytes_as_they_arrive_and_a_full_spool_answers_429_retry_after(
    tech_a, tech_a2, settings
):
    settings.UPLOADS_MAX_BYTES = 1000
    settings.UPLOADS_SITE_QUOTA_BYTES = 1500
    first, second = api_client(tech_a), api_client(tech_a2)
    a = _create(first, 1000)["Location"]
    b = _create(second, 1000)["Location"]  # both fit now: nothing received yet
    assert _patch(first, a, 0, b"a" * 1000).status_code == 204
    full = _patch(second, b, 0, b"b" * 1000)
    assert full.status_code == 429 and full.json()["code"] == "quota_wait"
    assert int(full["Retry-After"]) == settings.UPLOADS_QUOTA_RETRY_SECONDS
    assert "Espace d'envoi du site plein" in full.json()["reason"]
    assert second.head(b, **TUS)["Upload-Offset"] == "0"  # nothing written, nothing lost
    assert _patch(second, b, 0, b"b" * 400).status_code == 204  # what fits goes in
    assert not QuotaHold.objects.exists()  # holds of finished PATCHes are released


def test_a_creation_that_receives_nothing_expires_fast_and_frees_its_slot(tech_a, settings):
    settings.UPLOADS_MAX_OPEN_PER_USER = 2
    tech = api_client(tech_a)
    before = timezone.now()
    idle = _create(tech, 100)
    transfer = Transfer.objects.get()
    assert transfer.expires_at <= before + timedelta(seconds=settings.UPLOADS_IDLE_CREATION_SECONDS + 5)
    assert "Upload-Expires" in idle
    assert _create(tech, 100).status_code == 201
    capped = _create(tech, 100)
    assert capped.status_code == 429 and capped.json()["code"] == "too_many_open"
    assert capped["Retry-After"] == str(settings.UPLOADS_IDLE_CREATION_SECONDS)
    assert "Trop d'envois ouverts (2 au plus)" in capped.json()["reason"]
    # Bytes received: the long expiry (a link down over a weekend).
    assert _patch(tech, idle["Location"], 0, b"x" * 10).status_code == 204
    transfer.refresh_from_db()
    assert transfer.expires_at > timezone.now() + timedelta(days=6)
    # The byteless one's time passes: its slot is free at the next creation, its disk given back.
    stale = Transfer.objects.get(offset=0)
    Transfer.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _create(tech, 100).status_code == 201
    stale.refresh_from_db()
    assert stale.state == Transfer.State.EXPIRED and not spool.part_path(stale.pk).exists()


def test_the_sweep_expires_byteless_creations_too(tech_a, settings):
    tech = api_client(tech_a)
    _create(tech, 100)
    Transfer.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    tasks.sweep_transfers()
    assert Transfer.objects.get().state == Transfer.State.EXPIRED


# --- the daily budget, every route ------------------------------------------------------------


def test_the_daily_budget_stops_tus_bytes_until_tomorrow(tech_a, settings):
    settings.INGEST_SITE_DAILY_BYTES = 1500
    tech = api_client(tech_a)
    _send_tus(tech, b"a" * 1000)
    url = _create(tech, 1000)["Location"]
    late = _patch(tech, url, 0, b"b" * 1000)
    assert late.status_code == 429 and late.json()["code"] == "daily_budget"
    assert 0 < int(late["Retry-After"]) <= 24 * 3600
    assert DailyUsage.objects.get(site=tech_a.site).bytes == 1000


def _form_post(client, files, **extra):
    return client.post(
        reverse("upload"),
        {"files": files, "indication": "Toux", "priority": "routine"},
        **extra,
    )


def test_the_plain_form_has_a_quota_now(client, tech_a, settings, tmp_path):
    [data] = ct_study_bytes(tmp_path, (3,))
    client.force_login(tech_a)
    settings.UPLOADS_SITE_QUOTA_BYTES = len(data) // 2  # the site's room is smaller than the request
    answer = _form_post(client, [io.BytesIO(data)])
    assert answer.status_code == 413
    assert escape("Quota d'envoi du site atteint") in answer.content.decode()
    assert not Submission.objects.exists()  # nothing checked, nothing stored


def test_the_plain_form_refuses_a_body_over_the_request_limit_before_reading_it(client, tech_a, settings):
    client.force_login(tech_a)
    settings.INGEST_MAX_REQUEST_BYTES = 10_000
    answer = _form_post(client, [io.BytesIO(b"x" * 20_000)])
    assert answer.status_code == 413
    assert "Envoi trop volumineux" in answer.content.decode()
    assert not Submission.objects.exists()


def test_the_plain_form_counts_against_the_daily_budget(client, tech_a, settings):
    client.force_login(tech_a)
    settings.INGEST_SITE_DAILY_BYTES = 1000
    answer = _form_post(client, [io.BytesIO(b"x" * 2000)])
    assert answer.status_code == 429 and "Retry-After" in answer
    assert escape("Volume d'envoi du jour atteint") in answer.content.decode()


def test_the_multipart_api_has_the_same_limits(tech_a, settings, tmp_path):
    [data] = ct_study_bytes(tmp_path, (4,))
    api = api_client(tech_a)

    def post():
        return api.post(
            reverse("api_upload"),
            {"files": [io.BytesIO(data)], "indication": "x", "priority": "routine"},
            format="multipart",
        )

    settings.UPLOADS_SITE_QUOTA_BYTES = len(data) // 2
    refused = post()
    assert refused.status_code == 413 and refused.json()["code"] == "quota"
    settings.UPLOADS_SITE_QUOTA_BYTES = 10 * len(data)
    settings.INGEST_MAX_REQUEST_BYTES = len(data) // 2
    too_big = post()
    assert too_big.status_code == 413 and too_big.json()["code"] == "request_too_large"
    assert too_big.json()["reason"].startswith("Envoi trop volumineux")
    assert not Submission.objects.exists()
    assert not QuotaHold.objects.exists()


def test_a_multipart_body_without_a_length_is_refused(tech_a):
    from django.test import RequestFactory

    from ingest.quota import RequestSizeLimit

    request = RequestFactory().post("/api/v1/studies/upload/", {"files": io.BytesIO(b"x")})
    del request.META["CONTENT_LENGTH"]
    answer = RequestSizeLimit(lambda r: pytest.fail("the view must not run"))(request)
    assert answer.status_code == 411 and json.loads(answer.content)["code"] == "length_required"


@pytest.mark.orthanc
def test_a_request_holds_its_size_against_the_quota_while_it_runs(
    client, tech_a, settings, tmp_path, monkeypatch
):
    """While a form request is being checked, its bytes count: a concurrent tus PATCH sees them."""
    [data] = ct_study_bytes(tmp_path, (5,))
    seen = []
    from ingest import views

    receive = views.receive_submission

    def watching(**kwargs):
        seen.append(quota.spool_in_use(tech_a.site_id))
        return receive(**kwargs)

    monkeypatch.setattr(views, "receive_submission", watching)
    client.force_login(tech_a)
    answer = _form_post(client, [io.BytesIO(data)])
    assert answer.status_code == 302
    assert seen and seen[0] >= len(data)  # held during the request
    assert quota.spool_in_use(tech_a.site_id) == 0  # and released after
    assert DailyUsage.objects.get(site=tech_a.site).bytes >= len(data)


# --- rate limits ------------------------------------------------------------------------------


# The rates below are per hour: django-ratelimit counts in fixed windows, and a per-minute one
# ending between two of a test's requests starts the count again (the test then failed about
# once in a hundred runs, more under load).


def test_creating_uploads_is_rate_limited_per_user_and_per_site(tech_a, tech_a2, settings):
    settings.INGEST_RATE_LIMITS = {"upload_create": {"user": "3/h", "site": "5/h"}}
    first, second = api_client(tech_a), api_client(tech_a2)
    assert [_create(first, 10).status_code for _ in range(3)] == [201] * 3
    limited = _create(first, 10)
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited["Retry-After"]) <= 3600
    assert limited.json()["reason"] == "Trop de demandes en peu de temps : réessayez dans un instant."
    # The other technician has their own budget, but the site's is shared: 5 an hour in all.
    assert _create(second, 10).status_code == 201
    assert _create(second, 10).status_code == 429
    assert Transfer.objects.count() == 4


def test_the_form_and_the_api_are_rate_limited(client, tech_a, settings):
    settings.INGEST_RATE_LIMITS = {"upload_form": {"user": "1/h"}, "upload_api": {"user": "1/h"}}
    client.force_login(tech_a)
    assert _form_post(client, [io.BytesIO(b"")]).status_code == 302
    limited = _form_post(client, [io.BytesIO(b"")])
    assert limited.status_code == 429 and "Retry-After" in limited
    assert "Trop de demandes" in limited.content.decode()
    api = api_client(tech_a)

    def post():
        return api.post(
            reverse("api_upload"), {"files": [io.BytesIO(b"")], "indication": "x"}, format="multipart"
        )

    assert post().status_code == 201
    assert post().status_code == 429


def test_the_sms_reply_endpoint_is_rate_limited_per_sender_strangers_spending_nothing(client, settings):
    settings.ALERTS_CALLBACK_TOKEN = "k" * 20
    settings.INGEST_RATE_LIMITS = {"sms_reply": {"sender": "2/h", "all": "100/h"}}
    url = reverse("alerts:kannel_incoming")
    for _ in range(5):  # without Kannel's token: refused by the view, not counted
        assert client.get(url, {"from": "+22370000001", "text": "OK 1"}).status_code == 403
    ok = [client.get(url, {"from": "+22370000001", "text": "x", "token": "k" * 20}) for _ in range(2)]
    assert [r.status_code for r in ok] == [200, 200]
    limited = client.get(url, {"from": "+22370000001", "text": "x", "token": "k" * 20})
    assert limited.status_code == 429 and "Retry-After" in limited
    assert limited.content.decode() == "Trop de demandes en peu de temps : réessayez dans un instant."
    other = client.get(url, {"from": "+22370000002", "text": "x", "token": "k" * 20})
    assert other.status_code == 200


# --- manifests --------------------------------------------------------------------------------

BAD_MANIFESTS = [
    (b"[]", "manifest_not_object"),
    (b'[{"files": 1}]', "manifest_not_object"),
    (b'"text"', "manifest_not_object"),
    (b"null", "manifest_not_object"),
    (b'{"files": 1e20}', "manifest_bad_field"),
    (b'{"files": 100000000000000000000}', "manifest_bad_field"),
    (b'{"files": -1}', "manifest_bad_field"),
    (b'{"files": "3"}', "manifest_bad_field"),
    (b'{"files": true}', "manifest_bad_field"),
    (b'{"files": 10001}', "manifest_bad_field"),
    (b'{"files": NaN}', "manifest_bad_json"),
    (b'{"files": Infinity}', "manifest_bad_json"),
    (b'{"instances": [{"sop_instance_uid": "1.2", "size": -5}]}', "manifest_bad_field"),
    (b'{"instances": [{"sop_instance_uid": "1.2", "size": 1e300}]}', "manifest_bad_field"),
    (b'{"instances": [{"sop_instance_uid": "1.2", "size": 99999999999999999999999}]}', "manifest_bad_field"),
    (b'{"instances": [{"sop_instance_uid": 12}]}', "manifest_bad_field"),
    (b'{"instances": [{"sop_instance_uid": "not a uid"}]}', "manifest_bad_field"),
    (b'{"instances": [{"sop_instance_uid": "1.2", "sha256": "xyz"}]}', "manifest_bad_field"),
    (b'{"instances": [{}]}', "manifest_bad_field"),
    (b'{"instances": ["1.2.3"]}', "manifest_bad_field"),
    (b'{"instances": {"a": 1}}', "manifest_bad_field"),
    (b'{"priority": ["stat"]}', "manifest_bad_field"),
    (b'{"priority": "whenever"}', "manifest_bad_field"),
    (b'{"indication": 5}', "manifest_bad_field"),
    (b'{"indication": "' + b"x" * 3000 + b'"}', "manifest_bad_field"),
    (b'{"id": 12}', "manifest_bad_field"),
    (b'{"id": "not-a-uuid"}', "manifest_bad_field"),
    (b'{"study_instance_uid": {"x": 1}}', "manifest_bad_field"),
    (b"[" * 100_000 + b"]" * 100_000, "manifest_bad_json"),
    (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, "manifest_bad_json"),
    (b"\xff\xfe{}", "manifest_not_utf8"),
    (b'{"indication": "caf\xe9"}', "manifest_not_utf8"),
    (b"{", "manifest_bad_json"),
    (b"", None),  # an empty body is an empty manifest: accepted (the agent never sends one)
]


@pytest.mark.parametrize(("body", "code"), BAD_MANIFESTS, ids=[f"m{i}" for i in range(len(BAD_MANIFESTS))])
def test_every_malformed_manifest_is_answered_400_with_a_reason(tech_a, body, code):
    answer = api_client(tech_a).generic(
        "POST", "/api/v1/uploads/manifests/", body, content_type="application/json"
    )
    if code is None:
        assert answer.status_code == 201
        return
    assert answer.status_code == 400, (body[:60], answer.status_code, answer.content[:200])
    assert answer.json()["code"] == code
    assert answer.json()["reason"].startswith("Manifeste")
    assert not Submission.objects.exists()


def test_too_many_instances_and_too_large_a_body_are_refused(tech_a, settings):
    settings.UPLOADS_MANIFEST_MAX_INSTANCES = 3
    api = api_client(tech_a)
    many = {"instances": [{"sop_instance_uid": f"1.2.{i}"} for i in range(4)]}
    answer = api.post("/api/v1/uploads/manifests/", many, format="json")
    assert answer.status_code == 400 and answer.json()["code"] == "manifest_too_many"
    assert "3 au plus" in answer.json()["reason"]
    settings.UPLOADS_MANIFEST_MAX_BYTES = 1024
    big = api.generic(
        "POST",
        "/api/v1/uploads/manifests/",
        json.dumps({"indication": "x" * 2000}),
        content_type="application/json",
    )
    assert big.status_code == 413 and big.json()["code"] == "manifest_too_large"
    assert big.json()["reason"] == "Manifeste trop volumineux (plus de 1 Ko)."


def test_a_good_manifest_still_opens_and_keeps_its_numbers(tech_a):
    uid = "1.2.840.10008.1"
    answer = api_client(tech_a).post(
        "/api/v1/uploads/manifests/",
        {
            "priority": "stat",
            "indication": "Trauma",
            "study_instance_uid": uid,
            "instances": [{"sop_instance_uid": f"{uid}.1", "sha256": "A" * 64, "size": 12}],
            "files": 1,
        },
        format="json",
    )
    assert answer.status_code == 201
    submission = Submission.objects.get()
    assert submission.priority == "stat" and submission.expected_instances == 1
    assert submission.manifest.expected == [{"sop_instance_uid": f"{uid}.1", "sha256": "a" * 64, "size": 12}]


def test_the_quota_module_is_what_every_route_calls():
    """One rule, one place: the routes do not compute quotas themselves."""
    import inspect

    from ingest import api, views
    from uploads import bundles

    for module in (api, views):
        source = inspect.getsource(module)
        assert "admitted_request(" in source and "check_rate(" in source, module.__name__
    assert "quota.check_creation(" in inspect.getsource(transfers.create_transfer)
    assert "quota.check_chunk(" in inspect.getsource(transfers.receive_chunk)
    assert "quota.check_room(" in inspect.getsource(bundles.inspect)
    assert "Sum(" not in inspect.getsource(transfers)  # no quota arithmetic left outside ingest.quota
