"""Machine tokens (platform/tokens, docs/tokens.md): stored hashed and shown once, refused when
expired or revoked (at once), managed per site, issued by password to technician accounts only,
last use written at most once a minute; the same rules through DRF and through tus."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

import pytest
from django.contrib.auth.signals import user_login_failed
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from tokens import crypto, service
from tokens.models import MachineToken

pytestmark = pytest.mark.django_db
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def _api(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def _studies(secret: str) -> int:
    return _api(secret).get(reverse("api_studies")).status_code


def _tus_create(secret: str) -> int:
    """A tus creation (POST) authenticated by the token: 201 when accepted."""
    data = b"\0" * 10
    meta = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}"
        for k, v in {"filename": "01.dcm", "sha256": hashlib.sha256(data).hexdigest()}.items()
    )
    return (
        APIClient()
        .post(
            "/api/v1/uploads/",
            HTTP_UPLOAD_LENGTH=str(len(data)),
            HTTP_UPLOAD_METADATA=meta,
            HTTP_AUTHORIZATION=f"Token {secret}",
            **TUS,
        )
        .status_code
    )


def _row_text(token: MachineToken) -> str:
    """Every column of the token's row, as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(t)::text FROM tokens_machinetoken t WHERE id = %s", [token.pk])
        return cursor.fetchone()[0]


def _audited(token: MachineToken, action: str, outcome: str = "ok") -> int:
    """Rows of the audit trail about one token (a success is written on commit: the tests that
    count them run outside the test transaction)."""
    from audit.models import AuditEvent

    about = AuditEvent.objects.filter(object_type="tokens.machinetoken", object_id=str(token.pk))
    return about.filter(action=action, outcome=outcome).count()


@pytest.fixture
def site_admin_a(site_a):
    return User.objects.create_user(
        username="admin_kayes", password="pw-admin_kayes", role="admin", site=site_a
    )


# --- Stored hashed, shown once --------------------------------------------------------------------
def test_it_stores_no_secret_and_shows_it_once(client, admin_user, tech_a):
    client.force_login(admin_user)
    answer = client.post(
        reverse("tokens:issue"), {"name": "Kayes — poste radio 1", "user": tech_a.pk, "days": 30}
    )
    assert answer.status_code == 200
    token = MachineToken.objects.get()
    secret = answer.context["secret"]
    assert secret.encode() in answer.content
    assert "no-store" in answer["Cache-Control"]
    assert token.name == "Kayes — poste radio 1" and token.user == tech_a and token.site == tech_a.site
    assert token.created_by == admin_user
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    # The row holds neither the secret nor its random part; only the prefix and an HMAC.
    row = _row_text(token)
    assert secret not in row and secret[len(token.prefix) + 1 :] not in row
    assert token.prefix in row and secret.startswith(token.prefix + "_")
    assert token.digest == crypto.digest(secret) != hashlib.sha256(secret.encode()).hexdigest()
    # Never shown again: not on the list, not in the admin (nor its hash).
    listing = client.get(reverse("tokens:list"))
    assert listing.status_code == 200 and b"Kayes" in listing.content
    assert secret.encode() not in listing.content
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    for url in (
        reverse("admin:tokens_machinetoken_changelist"),
        reverse("admin:tokens_machinetoken_change", args=[token.pk]),
    ):
        page = client.get(url)
        assert page.status_code == 200, url
        assert token.prefix.encode() in page.content
        assert secret.encode() not in page.content and token.digest.encode() not in page.content
    assert client.get(reverse("admin:tokens_machinetoken_add")).status_code == 403
    assert _studies(secret) == 200


def test_the_service_issues_with_the_defaults_and_refuses_bad_requests(tech_a, site_b, settings):
    settings.TOKENS_DEFAULT_DAYS = 10
    token, secret = service.issue(tech_a, name="  agent  ")
    assert token.name == "agent" and token.site_id == tech_a.site_id and token.created_by is None
    assert timedelta(days=9) < token.expires_at - timezone.now() <= timedelta(days=10)
    assert service.authenticate_secret(secret) == token
    for kwargs in (
        {"name": ""},
        {"name": "x" * 101},
        {"name": "x", "site": site_b},
        {"name": "x", "days": 0},
    ):
        with pytest.raises(service.TokenNotIssued):
            service.issue(tech_a, **kwargs)
    assert MachineToken.objects.count() == 1


# --- Recognised through the API and tus; refused when it should be --------------------------------
def test_the_hash_is_found_through_the_api_and_tus(tech_a):
    _token, secret = service.issue(tech_a, name="poste 1")
    assert _studies(secret) == 200
    assert _tus_create(secret) == 201
    wrong = secret[:-4] + ("AAAA" if not secret.endswith("AAAA") else "BBBB")  # same prefix, wrong rest
    for bad in (wrong, "jlb_00000000_" + "x" * 43, "garbage", "é" * 40, ""):
        assert _studies(bad) == 401, bad
        assert _tus_create(bad) == 401, bad
    assert _api("").get(reverse("api_studies")).status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret} extra")
    assert client.get(reverse("api_studies")).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_an_expired_token_is_refused(tech_a):
    token, secret = service.issue(tech_a, name="poste 1", days=1)
    assert _studies(secret) == 200
    MachineToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert _studies(secret) == 401
    assert _tus_create(secret) == 401
    assert _audited(token, "token.used", "denied") == 2


@pytest.mark.django_db(transaction=True)
def test_a_revoked_token_stops_at_once(tech_a):
    token, secret = service.issue(tech_a, name="poste 1")
    client = _api(secret)
    assert client.get(reverse("api_studies")).status_code == 200
    assert service.revoke(token, by=None) is True
    assert client.get(reverse("api_studies")).status_code == 401  # the next request, same process
    assert _tus_create(secret) == 401
    assert service.revoke(token) is False  # once
    assert _audited(token, "token.revoked") == 1


def test_an_inactive_or_moved_account_loses_its_token(tech_a, site_b):
    _token, secret = service.issue(tech_a, name="poste 1")
    tech_a.site = site_b
    tech_a.save()
    assert _studies(secret) == 401  # a Kayes agent's token never speaks for Sikasso
    tech_a.site = _token.site
    tech_a.is_active = False
    tech_a.save()
    assert _studies(secret) == 401


@pytest.mark.django_db(transaction=True)
def test_last_use_is_written_at_most_once_a_minute(tech_a):
    token, secret = service.issue(tech_a, name="poste 1")
    assert token.last_used_at is None
    assert _studies(secret) == 200
    token.refresh_from_db()
    first = token.last_used_at
    assert first is not None and token.last_used_ip == "127.0.0.1"
    for _ in range(5):  # an upload's PATCHes: no new write
        assert _tus_create(secret) == 201
    token.refresh_from_db()
    assert token.last_used_at == first
    assert _audited(token, "token.used") == 1
    with CaptureQueriesContext(connection) as queries:  # no cache, but one indexed read
        assert service.authenticate_secret(secret) == token
    assert len(queries) == 1 and queries[0]["sql"].startswith("SELECT")
    MachineToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(seconds=61))
    assert _studies(secret) == 200
    token.refresh_from_db()
    assert token.last_used_at > first
    assert _audited(token, "token.used") == 2


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_write_the_last_use_once(tech_a):
    """Eight requests at once (an agent's parallel PATCHes, several web processes): one write."""
    import threading

    from django.db import connections

    token, secret = service.issue(tech_a, name="poste 1")
    barrier, found = threading.Barrier(8), []

    def use() -> None:
        try:
            barrier.wait(timeout=10)
            found.append(service.authenticate_secret(secret))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert found == [token] * 8
    assert _audited(token, "token.used") == 1
    token.refresh_from_db()
    assert token.last_used_at is not None


# --- Who manages tokens --------------------------------------------------------------------------
def test_the_admin_action_revokes(client, admin_user, tech_a, tech_b):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    a, secret_a = service.issue(tech_a, name="poste A")
    b, secret_b = service.issue(tech_b, name="poste B")
    client.force_login(admin_user)
    answer = client.post(
        reverse("admin:tokens_machinetoken_changelist"),
        {"action": "revoke_tokens", "_selected_action": [a.pk]},
    )
    assert answer.status_code == 302
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.revoked_at is not None and a.revoked_by == admin_user and b.revoked_at is None
    assert _studies(secret_a) == 401 and _studies(secret_b) == 200


def test_a_site_admin_manages_their_sites_tokens_only(client, site_admin_a, admin_user, tech_a, tech_b):
    a, secret_a = service.issue(tech_a, name="Kayes poste 1")
    b, secret_b = service.issue(tech_b, name="Sikasso poste 1")
    client.force_login(site_admin_a)
    page = client.get(reverse("tokens:list"))
    assert page.status_code == 200
    assert b"Kayes poste 1" in page.content and b"Sikasso poste 1" not in page.content
    assert [u.username for u in page.context["form"].fields["user"].queryset] == ["tech_a"]
    assert client.post(reverse("tokens:revoke", args=[b.pk])).status_code == 404
    assert client.post(reverse("tokens:revoke", args=[999999])).status_code == 404
    b.refresh_from_db()
    assert b.revoked_at is None and _studies(secret_b) == 200
    # Issuing for another site's technician: not offered, and refused if forced.
    assert (
        client.post(reverse("tokens:issue"), {"name": "x", "user": tech_b.pk, "days": 5}).status_code == 400
    )
    assert MachineToken.objects.filter(user=tech_b).count() == 1
    assert client.post(reverse("tokens:revoke", args=[a.pk])).status_code == 302
    a.refresh_from_db()
    assert a.revoked_by == site_admin_a and _studies(secret_a) == 401
    # An admin attached to no site manages every site's.
    client.force_login(admin_user)
    page = client.get(reverse("tokens:list"))
    assert b"Kayes poste 1" in page.content and b"Sikasso poste 1" in page.content
    assert client.post(reverse("tokens:revoke", args=[b.pk])).status_code == 302
    assert _studies(secret_b) == 401


def test_technicians_and_radiologists_manage_no_tokens(client, tech_a, radiologist):
    token, secret = service.issue(tech_a, name="poste 1")
    for person in (tech_a, radiologist):
        client.force_login(person)
        assert client.get(reverse("tokens:list")).status_code == 404
        assert (
            client.post(reverse("tokens:issue"), {"name": "x", "user": tech_a.pk, "days": 5}).status_code
            == 404
        )
        assert client.post(reverse("tokens:revoke", args=[token.pk])).status_code == 404
    assert MachineToken.objects.count() == 1 and _studies(secret) == 200
    client.logout()
    assert client.get(reverse("tokens:list")).status_code == 302  # to the login page


def test_the_rule_in_the_access_module(site_a, site_b, site_admin_a, admin_user, tech_a, radiologist):
    from studies.access import may_manage_tokens

    assert may_manage_tokens(site_admin_a, site_a) and not may_manage_tokens(site_admin_a, site_b)
    assert not may_manage_tokens(site_admin_a, None)
    assert may_manage_tokens(admin_user, site_a) and may_manage_tokens(admin_user, None)
    assert not any(may_manage_tokens(p, site_a) for p in (tech_a, radiologist))
    site_admin_a.is_active = False
    assert not may_manage_tokens(site_admin_a, site_a)


# --- The token endpoint -----------------------------------------------------------------------------
def test_the_token_endpoint_issues_for_a_technician_only(tech_a, radiologist, admin_user):
    seen = []

    def failed(sender, credentials, request=None, **kwargs):
        seen.append(request)

    user_login_failed.connect(failed)
    try:
        url = reverse("api_token")
        wrong = APIClient().post(url, {"username": "tech_a", "password": "nope"})
        assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_credentials"
        assert seen and seen[0] is not None  # the request reached authenticate(): lockout applies
        for person in (radiologist, admin_user):  # a stolen password yields no token
            answer = APIClient().post(url, {"username": person.username, "password": "pw-" + person.username})
            assert answer.status_code == 403, person
            assert answer.json()["code"] == "second_factor_required" and answer.json()["reason"]
        assert MachineToken.objects.count() == 0
        assert APIClient().post(url, {"username": "tech_a"}).status_code == 400
        answer = APIClient().post(
            url,
            {"username": "tech_a", "password": "pw-tech_a", "name": "Kayes — poste radio 1"},
            format="json",
        )
        assert answer.status_code == 201, answer.content
        body = answer.json()
        token = MachineToken.objects.get()
        assert body["name"] == token.name == "Kayes — poste radio 1" and body["prefix"] == token.prefix
        assert token.user == tech_a and token.site == tech_a.site and token.created_by == tech_a
        assert _studies(body["token"]) == 200
        unnamed = APIClient().post(url, {"username": "tech_a", "password": "pw-tech_a"}).json()
        assert (
            MachineToken.objects.get(prefix=unnamed["prefix"]).name
            == f"agent {timezone.localdate():%Y-%m-%d}"
        )
    finally:
        user_login_failed.disconnect(failed)


def test_the_token_endpoint_refuses_an_inactive_technician(tech_a):
    tech_a.is_active = False
    tech_a.save()
    answer = APIClient().post(reverse("api_token"), {"username": "tech_a", "password": "pw-tech_a"})
    assert answer.status_code == 400 and MachineToken.objects.count() == 0


# --- From DRF's tokens -----------------------------------------------------------------------------
def test_drf_tokens_become_hashed_tokens_named_migrated(tech_a):
    from importlib import import_module

    from django.apps import apps

    convert = import_module("tokens.migrations.0002_from_drf_tokens").convert_drf_tokens
    key = "0123456789abcdef0123456789abcdef01234567"
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id bigint, created timestamptz)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, %s, now())", [key, tech_a.pk])
    with connection.schema_editor() as editor:
        convert(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    token = MachineToken.objects.get()
    assert token.name == "migrated" and token.user == tech_a and token.site == tech_a.site
    assert key not in _row_text(token)
    assert _studies(key) == 200  # the site agent keeps working with the key it has
    service.revoke(token)
    assert _studies(key) == 401


# --- The site agent ----------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_refused_token_stops_the_agent_and_keeps_its_queue(live_server, tech_a, tmp_path):
    """Revoked after the agent announced its study: the uploads are refused with 401, and the
    files stay queued for the next run with a new token (not marked refused one by one)."""
    from siteagent.compression import SitePolicy
    from siteagent.manifest import enqueue
    from siteagent.queue import Queue
    from siteagent.sender import Sender
    from siteagent.tus_client import Refused, TusClient
    from tests.paths import CT_HEAD

    token, secret = service.issue(tech_a, name="poste 1")
    queue = Queue(tmp_path / "state")
    enqueue(queue, [CT_HEAD / "01.dcm"], policy=SitePolicy(mode="lossless"), say=lambda _m: None)
    pending = queue.pending_count()
    assert pending >= 1
    client = TusClient(live_server.url, secret)
    for manifest in queue.manifests_to_post():
        client.post_manifest(manifest)
        queue.mark_posted(manifest["id"])
    service.revoke(token)
    with pytest.raises(Refused) as refused:
        Sender(queue, client, say=lambda _m: None).run(deadline=None)
    assert refused.value.status == 401
    assert queue.pending_count() == pending
    client.close()
