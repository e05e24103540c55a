"""The audit trail on real PostgreSQL: each audited action leaves exactly one row with its actor,
role, client address, object and outcome; the table refuses UPDATE and DELETE even in raw SQL;
a row the database refuses goes to the spool file and is replayed; the admins' page and CSV.

Most tests run with transactions committed (transactional_db), as production does: rows of
successful actions are written on commit, which a test wrapped in one transaction never reaches.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import authenticate, login, logout
from django.contrib.sessions.backends.db import SessionStore
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.http import QueryDict
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from audit import receivers
from audit.api import record
from audit.models import AuditEvent
from audit.spool import pending_files, spool_path
from audit.tasks import replay_audit_spool
from reports.models import ReportExport
from reports.services import amend_report, save_report
from studies import lifecycle
from studies.models import Instance, Status, Study
from tests.helpers import api_client

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT = "196.200.1.7"  # the site's public address, as the proxy saw it
PROXY = "10.0.0.1"  # nginx: the platform's direct peer
BEHIND_PROXY = {"REMOTE_ADDR": PROXY, "HTTP_X_FORWARDED_FOR": f"{CLIENT}, 10.0.0.9"}


@pytest.fixture(autouse=True)
def _audit_settings(settings, tmp_path):
    settings.AUDIT_SPOOL_DIR = tmp_path / "audit-spool"
    settings.JOLIBA_PROXY_COUNT = 1  # X-Forwarded-For: client, then one proxy before nginx
    settings.JOLIBA_RENDITIONS_ROOT = tmp_path / "renditions"
    from django.core.cache import cache

    cache.clear()


def _study(site, status=Status.QUEUED, assigned=None, modality="CR") -> Study:
    n = Study.objects.count() + 1
    return Study.objects.create(
        orthanc_id=f"audit{n}",
        study_instance_uid=f"1.9.77.{n}",
        site=site,
        status=status,
        assigned_to=assigned,
        modality=modality,
    )


def _only(action: str, **filters) -> AuditEvent:
    rows = list(AuditEvent.objects.filter(action=action, **filters))
    assert len(rows) == 1, [(r.action, r.outcome, r.actor_username) for r in AuditEvent.objects.all()]
    return rows[0]


# --- the table itself ----------------------------------------------------------------------


def test_the_table_refuses_update_and_delete_even_in_raw_sql(tech_a):
    record("test.kept", actor=tech_a)
    row = _only("test.kept")
    for sql in (
        "UPDATE audit_auditevent SET action = 'test.changed' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [row.pk])
    # pgtrigger's session switch does not open this trigger (it is not pgtrigger's).
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL pgtrigger.ignore = '{audit_auditevent_append_only}'")
            cursor.execute("UPDATE audit_auditevent SET action = 'test.changed' WHERE id = %s", [row.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=row.pk).update(outcome="denied")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=row.pk).delete()
    assert AuditEvent.objects.get(pk=row.pk).action == "test.kept"


def test_a_deleted_users_rows_keep_their_name_and_role(django_user_model, site_a):
    gone = django_user_model.objects.create_user(username="gone_tech", role="technician", site=site_a)
    record("test.by_gone", actor=gone)
    gone_id = gone.pk
    gone.delete()  # no foreign key constraint: nothing to update in the audit table
    row = _only("test.by_gone")
    assert (row.actor_id, row.actor_username, row.actor_role) == (gone_id, "gone_tech", "technician")


# --- logins --------------------------------------------------------------------------------


def _request(**meta):
    request = RequestFactory().post("/accounts/login/", **{**BEHIND_PROXY, **meta})
    request.session = SessionStore()
    return request


def test_login_success_failure_and_logout_each_leave_one_row(tech_a):
    request = _request()
    assert authenticate(request, username="tech_a", password="wrong") is None
    failed = _only("login.failed")
    assert (failed.outcome, failed.actor_id, failed.actor_username) == ("failed", None, "tech_a")
    assert failed.client_address == CLIENT

    user = authenticate(request, username="tech_a", password="pw-tech_a")
    login(request, user)
    ok = _only("login.succeeded")
    assert (ok.outcome, ok.actor_id, ok.actor_role, ok.client_address) == (
        "ok",
        tech_a.pk,
        "technician",
        CLIENT,
    )
    assert ok.site_id is None  # a login names no object

    request.user = user
    logout(request)
    out = _only("logout")
    assert (out.actor_id, out.client_address) == (tech_a.pk, CLIENT)


def test_a_failed_login_on_the_login_page_leaves_one_row_with_the_address(client, tech_a):
    page = client.get(reverse("login")).content.decode()
    if 'name="auth-username"' in page:  # the two-factor login wizard (auth app)
        data = {"login_view-current_step": "auth", "auth-username": "tech_a", "auth-password": "nope"}
    else:
        data = {"username": "tech_a", "password": "nope"}
    client.post(reverse("login"), data, **BEHIND_PROXY)
    row = _only("login.failed")
    assert (row.actor_username, row.client_address, row.request_method) == ("tech_a", CLIENT, "POST")
    assert row.request_path == reverse("login") and row.request_id


def test_an_attempt_axes_locks_out_is_one_locked_out_row(tech_a):
    """Axes sends user_locked_out during the failed attempt's user_login_failed (or sets
    request.axes_locked_out before it when the client is already locked): one row either way."""
    from audit.middleware import AuditMiddleware

    def view(request):
        receivers.on_login_failed(None, credentials={"username": "tech_a"}, request=request)
        receivers.on_locked_out("axes", request=request, username="tech_a", ip_address=CLIENT)
        from django.http import HttpResponse

        return HttpResponse(status=403)

    def already_locked(request):
        request.axes_locked_out = True  # what AxesBackend sets before refusing
        receivers.on_login_failed(None, credentials={"username": "tech_a"}, request=request)
        from django.http import HttpResponse

        return HttpResponse(status=403)

    AuditMiddleware(view)(RequestFactory().post("/accounts/login/", **BEHIND_PROXY))
    AuditMiddleware(already_locked)(RequestFactory().post("/accounts/login/", **BEHIND_PROXY))
    rows = list(AuditEvent.objects.order_by("id"))
    assert [(r.action, r.outcome, r.actor_username, r.client_address) for r in rows] == [
        ("login.locked_out", "denied", "tech_a", CLIENT),
        ("login.locked_out", "denied", "tech_a", CLIENT),
    ]


def test_brute_force_under_axes_is_one_row_per_attempt(settings, tech_a):
    """With the auth app's django-axes: failures, then the attempt that locks, then refusals."""
    from django.apps import apps
    from django.http import HttpResponse

    from audit.middleware import AuditMiddleware

    if not apps.is_installed("axes"):
        pytest.skip("django-axes is not in INSTALLED_APPS on this branch (the auth app adds it)")
    limit = int(getattr(settings, "AXES_FAILURE_LIMIT", 3))

    def attempt(request):
        authenticate(request, username="tech_a", password="wrong")
        return HttpResponse(status=403)

    for _ in range(limit + 2):
        AuditMiddleware(attempt)(_request())
    rows = [(r.action, r.outcome, r.client_address) for r in AuditEvent.objects.order_by("id")]
    failed, locked = ("login.failed", "failed", CLIENT), ("login.locked_out", "denied", CLIENT)
    assert rows == [failed] * (limit - 1) + [locked] * 3


# --- reading patient data: one middleware ---------------------------------------------------


def test_the_study_page_records_one_view_and_a_denied_one_for_another_site(client, tech_a, tech_b, site_a):
    study = _study(site_a)
    client.force_login(tech_a)
    assert client.get(reverse("study_detail", args=[study.pk]), **BEHIND_PROXY).status_code == 200
    row = _only("study.viewed")
    assert (row.outcome, row.actor_id, row.actor_username, row.actor_role) == (
        "ok",
        tech_a.pk,
        "tech_a",
        "technician",
    )
    assert (row.client_address, row.object_type, row.object_id) == (CLIENT, "studies.study", str(study.pk))
    assert (row.object_label, row.site_id) == (f"KAYES-{study.pk}", site_a.pk)
    assert row.request_path == f"/studies/{study.pk}/" and row.request_method == "GET"

    other = client.__class__()
    other.force_login(tech_b)
    assert other.get(reverse("study_detail", args=[study.pk]), REMOTE_ADDR="41.73.1.2").status_code == 404
    denied = _only("study.viewed", outcome="denied")
    assert (denied.actor_username, denied.actor_role, denied.client_address) == (
        "tech_b",
        "technician",
        "41.73.1.2",
    )
    assert denied.object_label == f"KAYES-{study.pk}"  # the admin sees which case was tried


def test_a_signed_out_visitor_sent_to_the_login_page_is_recorded_denied(client, site_a):
    study = _study(site_a)
    assert client.get(reverse("study_detail", args=[study.pk])).status_code == 302
    row = _only("study.viewed")
    assert (row.outcome, row.actor_id, row.actor_username) == ("denied", None, "")


def test_the_api_detail_and_the_reading_page_record_a_view(radiologist, site_a, client):
    study = _study(site_a, Status.IN_READING, assigned=radiologist)
    assert api_client(radiologist).get(f"/api/v1/studies/{study.pk}/", **BEHIND_PROXY).status_code == 200
    api = _only("study.viewed")
    assert (api.actor_username, api.actor_role, api.client_address) == ("dr_a", "radiologist", CLIENT)
    client.force_login(radiologist)
    assert client.get(reverse("read", args=[study.pk])).status_code == 200
    assert (
        AuditEvent.objects.filter(action="study.viewed", request_path=f"/worklist/{study.pk}/read/").count()
        == 1
    )


def test_viewer_frames_are_one_images_viewed_row_per_study_per_window(client, radiologist, site_a, settings):
    from viewer import storage
    from viewer.models import Rendition

    study = _study(site_a, Status.IN_READING, assigned=radiologist)
    instance = Instance.objects.create(
        study=study, sop_instance_uid="1.9.77.1.1", series_instance_uid="1.9.77.1", orthanc_id="inst-a"
    )
    names = []
    for frame in range(3):
        data = f"frame {frame}".encode()
        digest = storage.put(data)
        Rendition.objects.create(
            instance=instance, kind="full", frame=frame, format="webp16", width=1, height=1, digest=digest,
            size=len(data),
        )  # fmt: skip
        names.append(f"full-{frame}-{digest[:16]}")
    client.force_login(radiologist)
    for name in names * 2:  # six frame fetches
        url = reverse("viewer_rendition", args=[study.pk, instance.pk, name])
        assert client.get(url, **BEHIND_PROXY).status_code == 200
    row = _only("study.images_viewed")
    assert (row.outcome, row.actor_username, row.object_label) == ("ok", "dr_a", f"KAYES-{study.pk}")
    assert row.detail["instance"] == instance.pk

    settings.AUDIT_IMAGES_VIEWED_MINUTES = 0  # no window: every fetch is a row
    client.get(reverse("viewer_rendition", args=[study.pk, instance.pk, names[0]]))
    assert AuditEvent.objects.filter(action="study.images_viewed").count() == 2


def test_a_denied_original_download_is_recorded_each_time(client, tech_b, site_a):
    study = _study(site_a)
    instance = Instance.objects.create(
        study=study, sop_instance_uid="1.9.77.2.1", series_instance_uid="1.9.77.2", orthanc_id="inst-b"
    )
    client.force_login(tech_b)
    for _ in range(2):
        assert client.get(reverse("viewer_original", args=[study.pk, instance.pk])).status_code == 404
    rows = AuditEvent.objects.filter(action="image.downloaded")
    assert [(r.outcome, r.actor_username) for r in rows] == [("denied", "tech_b"), ("denied", "tech_b")]


def _signed(study, radiologist):
    save_report(study=study, author=radiologist, findings="Pas d'anomalie.", conclusion="Normal.", sign=True)


def test_the_pdf_download_report_signed_amended_and_export_are_one_row_each(
    client, tech_a, radiologist, site_a
):
    study = _study(site_a, Status.IN_READING, assigned=radiologist)
    _signed(study, radiologist)
    signed = _only("report.signed")
    assert (signed.actor_username, signed.actor_role, signed.outcome) == ("dr_a", "radiologist", "ok")
    assert (signed.object_type, signed.object_label, signed.site_id) == (
        "reports.reportversion",
        f"KAYES-{study.pk} v1",
        site_a.pk,
    )
    assert signed.detail == {"version": 1, "kind": "original"}
    assert not AuditEvent.objects.filter(action__startswith="case.").exists()  # the sign move: one row

    client.force_login(tech_a)
    assert client.get(reverse("report_pdf", args=[study.pk]), **BEHIND_PROXY).status_code == 200
    pdf = _only("report.pdf_downloaded")
    assert (pdf.actor_username, pdf.client_address, pdf.object_label) == (
        "tech_a",
        CLIENT,
        f"KAYES-{study.pk}",
    )

    study.refresh_from_db()
    amend_report(study=study, author=radiologist, kind="addendum", reason="Précision", addendum="Revu.")
    amended = _only("report.amended")
    assert amended.detail == {"version": 2, "kind": "addendum"}
    assert amended.object_label == f"KAYES-{study.pk} v2"

    from orthanc.client import OrthancError
    from reports.export import deliver_export

    export = ReportExport.objects.filter(version__number=1, version__report__study=study).get()
    with pytest.raises(OrthancError):  # the test archive is a closed port
        deliver_export(export.pk)
    exported = _only("report.exported")
    assert (exported.outcome, exported.actor_id, exported.actor_role) == ("failed", None, "platform")
    assert exported.detail == {"version": 1, "attempt": 1, "to": "orthanc"}


def test_the_api_signature_carries_the_signers_address(radiologist, site_a):
    study = _study(site_a, Status.IN_READING, assigned=radiologist)
    answer = api_client(radiologist).put(
        f"/api/v1/studies/{study.pk}/report/",
        {"findings": "Normal.", "conclusion": "Normal.", "sign": True},
        format="json",
        **BEHIND_PROXY,
    )
    assert answer.status_code == 200, answer.content
    row = _only("report.signed")
    assert (row.actor_username, row.client_address, row.request_method) == ("dr_a", CLIENT, "PUT")


# --- the case's moves ----------------------------------------------------------------------


def test_claim_release_hand_over_reassign_and_expiry_are_one_row_each(
    radiologist, radiologist_2, admin_user, site_a, settings
):
    study = _study(site_a)
    dr = api_client(radiologist)
    assert dr.post(f"/api/v1/studies/{study.pk}/claim/", **BEHIND_PROXY).status_code == 200
    claimed = _only("case.claimed")
    assert (claimed.actor_username, claimed.actor_role, claimed.client_address) == (
        "dr_a",
        "radiologist",
        CLIENT,
    )
    assert (claimed.object_label, claimed.outcome) == (f"KAYES-{study.pk}", "ok")
    assert claimed.detail == {"from": "queued", "to": "in_reading", "assignee": "dr_a"}

    answer = dr.post(f"/api/v1/studies/{study.pk}/hand-over/", {"assignee": radiologist_2.pk}, format="json")
    assert answer.status_code == 200, answer.content
    assert _only("case.handed_over").detail["assignee"] == "dr_b"

    admin = api_client(admin_user)
    answer = admin.post(f"/api/v1/studies/{study.pk}/reassign/", {"assignee": radiologist.pk}, format="json")
    assert answer.status_code == 200, answer.content
    reassigned = _only("case.reassigned")
    assert (reassigned.actor_username, reassigned.actor_role) == ("admin_a", "admin")

    assert dr.post(f"/api/v1/studies/{study.pk}/release/").status_code == 200
    assert _only("case.released").actor_username == "dr_a"

    study.refresh_from_db()
    lifecycle.transition(study, lifecycle.Transition.CLAIM, actor=radiologist)
    later = timezone.now() + timedelta(minutes=settings.ASSIGNMENT_CLAIM_TIMEOUT_MINUTES + 1)
    assert lifecycle.expire_overdue_claims(now=later) == [study.pk]
    expired = _only("case.expired")
    assert (expired.actor_id, expired.actor_role, expired.detail["reason"]) == (
        None,
        "platform",
        "claim_timeout",
    )
    assert AuditEvent.objects.filter(action="case.claimed").count() == 2


def test_a_refused_move_is_one_row_saying_why_and_never_an_ok_one(radiologist, radiologist_2, tech_b, site_a):
    study = _study(site_a, Status.IN_READING, assigned=radiologist_2)
    assert (
        api_client(radiologist).post(f"/api/v1/studies/{study.pk}/claim/", **BEHIND_PROXY).status_code == 409
    )
    lost = _only("case.claimed")
    assert (lost.outcome, lost.actor_username, lost.client_address) == ("failed", "dr_a", CLIENT)
    assert lost.detail == {"status": 409, "code": "taken"} and lost.object_label == f"KAYES-{study.pk}"
    # Another site's technician trying: 404, a refusal.
    assert api_client(tech_b).post(f"/api/v1/studies/{study.pk}/release/").status_code == 404
    assert _only("case.released").outcome == "denied"
    study.refresh_from_db()
    assert study.assigned_to_id == radiologist_2.pk


# --- admin changes -------------------------------------------------------------------------


def test_an_admin_change_names_who_which_object_and_which_fields(client, django_user_model, site_a):
    boss = django_user_model.objects.create_superuser(username="boss", password="pw-boss", role="admin")
    client.force_login(boss)
    url = reverse("admin:accounts_site_change", args=[site_a.pk])
    data = {"code": "kayes", "name": "Hôpital régional de Kayes", "region": "Kayes", "dicom_aet": "KAYES_CR"}
    answer = client.post(url, {**data, "phone": "", "email": ""}, **BEHIND_PROXY)
    assert answer.status_code == 302, answer.content.decode()[:2000]
    row = _only("admin.changed")
    assert (row.actor_username, row.client_address, row.object_type) == ("boss", CLIENT, "accounts.site")
    assert (row.object_label, row.site_id) == ("kayes", site_a.pk)
    assert row.detail == {"fields": ["Nom"]}


# --- never blocks, never lost -----------------------------------------------------------------


def test_a_denied_row_survives_the_callers_rollback_an_ok_row_does_not(tech_a):
    with pytest.raises(RuntimeError), transaction.atomic():
        record("test.refused_inside", actor=tech_a, outcome="denied")
        record("test.done_inside", actor=tech_a)
        raise RuntimeError("the clinical action failed")
    assert _only("test.refused_inside").outcome == "denied"
    assert not AuditEvent.objects.filter(action="test.done_inside").exists()
    with transaction.atomic():
        record("test.done_inside", actor=tech_a)
        assert not AuditEvent.objects.filter(action="test.done_inside").exists()  # on commit
    assert _only("test.done_inside").outcome == "ok"


def test_record_never_raises_into_its_caller(tech_a):
    class Exploding:
        @property
        def pk(self):
            raise RuntimeError("boom")

    record("test.odd_object", actor=tech_a, obj=Exploding(), detail={"n": 1})
    row = _only("test.odd_object")  # written, with what could be said
    assert (row.outcome, row.actor_username, row.detail) == ("ok", "tech_a", {"undescribed": "Exploding"})


@pytest.fixture
def refusing_table():
    """A test-only database condition: the table refuses rows whose action is test.refused."""
    with connection.cursor() as cursor:
        cursor.execute(
            "ALTER TABLE audit_auditevent ADD CONSTRAINT audit_test_refuses CHECK (action <> 'test.refused')"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DROP CONSTRAINT IF EXISTS audit_test_refuses")


def test_rows_the_database_refuses_go_to_the_spool_file_and_are_replayed(refusing_table, tech_a, caplog):
    record("test.refused", actor=tech_a)  # outside a transaction: at once
    with transaction.atomic():
        record("test.refused", actor=tech_a, outcome="failed")  # on a connection of its own
    with transaction.atomic():
        record("test.refused", actor=tech_a, outcome="ok")  # on commit
    assert not AuditEvent.objects.filter(action="test.refused").exists()
    lines = [json.loads(line) for line in spool_path().read_text().splitlines()]
    assert [(r["action"], r["outcome"], r["actor_username"]) for r in lines] == [
        ("test.refused", "ok", "tech_a"),
        ("test.refused", "failed", "tech_a"),
        ("test.refused", "ok", "tech_a"),
    ]
    assert any("spool" in m and r.levelname == "ERROR" for r in caplog.records for m in [r.getMessage()])

    with pytest.raises(IntegrityError):  # still refused: the task fails, the file waits
        replay_audit_spool()
    assert not AuditEvent.objects.filter(action="test.refused").exists()
    assert pending_files() and not spool_path().exists()
    record("test.refused", actor=tech_a)  # meanwhile: a new file beside the one waiting
    assert spool_path().exists()

    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DROP CONSTRAINT audit_test_refuses")
    assert replay_audit_spool() == 4
    rows = list(AuditEvent.objects.filter(action="test.refused").order_by("at"))
    assert len(rows) == 4 and all(r.spooled and r.actor_id == tech_a.pk for r in rows)
    assert {str(r.event_id) for r in rows} >= {r["event_id"] for r in lines}
    assert [r.at.isoformat() for r in rows[:3]] == [r["at"] for r in lines]  # their own time, kept
    assert not pending_files() and not spool_path().exists()
    assert replay_audit_spool() == 0


def test_a_replay_cut_short_inserts_nothing_twice(tech_a, refusing_table):
    record("test.refused", actor=tech_a)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE audit_auditevent DROP CONSTRAINT audit_test_refuses")
    line = spool_path().read_text()
    replay_audit_spool()
    spool_path().write_text(line)  # the same row again, as if the first replay died before unlinking
    replay_audit_spool()
    assert AuditEvent.objects.filter(action="test.refused").count() == 1


def test_the_replay_is_on_the_beat_schedule(settings):
    from joliba.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["audit-replay-spool"]
    assert entry["task"] in app.tasks and entry["schedule"] > 0


# --- the page and its CSV --------------------------------------------------------------------


@pytest.fixture
def trail(tech_a, tech_b, site_a, site_b):
    a, b = _study(site_a), _study(site_b)
    record("study.viewed", actor=tech_a, obj=a, request=RequestFactory().get("/", REMOTE_ADDR="41.73.1.2"))
    record("study.viewed", actor=tech_b, obj=a, outcome="denied")
    record("study.viewed", actor=tech_b, obj=b)
    record("login.failed", actor='=HYPERLINK("http://x")', outcome="failed")
    return a, b


def test_may_see_audit_is_for_active_admins_only(tech_a, radiologist, admin_user, django_user_model):
    from django.contrib.auth.models import AnonymousUser

    from studies import access

    boss = django_user_model.objects.create_superuser(username="root", password="x")
    former = django_user_model.objects.create_user(username="former", role="admin", is_active=False)
    people = {"tech": tech_a, "radiologist": radiologist, "admin": admin_user, "superuser": boss}
    people |= {"inactive admin": former, "anonymous": AnonymousUser()}
    assert [name for name, user in people.items() if access.may_see_audit(user)] == ["admin", "superuser"]


def test_only_admins_see_the_trail(client, tech_a, radiologist, admin_user, trail):
    for user in (tech_a, radiologist):
        client.force_login(user)
        assert client.get(reverse("audit:events")).status_code == 404
        assert client.get(reverse("audit:export")).status_code == 404
    client.logout()
    assert client.get(reverse("audit:events")).status_code == 302  # to the login page
    client.force_login(admin_user)
    page = client.get(reverse("audit:events"))
    assert page.status_code == 200 and "Journal d'audit" in page.content.decode()


def test_the_page_filters_and_is_itself_audited(client, admin_user, trail, site_a):
    a, b = trail
    client.force_login(admin_user)

    def shown(**query):
        page = client.get(reverse("audit:events"), query, **BEHIND_PROXY)
        assert page.status_code == 200
        return [(e.action, e.actor_username, e.outcome) for e, _site in page.context["events"]]

    assert shown(actor="tech_b") == [("study.viewed", "tech_b", "ok"), ("study.viewed", "tech_b", "denied")]
    assert shown(outcome="denied", action="study") == [("study.viewed", "tech_b", "denied")]
    assert shown(case=f"KAYES-{a.pk}", action="study.viewed") == [
        ("study.viewed", "tech_b", "denied"),
        ("study.viewed", "tech_a", "ok"),
    ]
    assert shown(case=str(b.pk)) == [("study.viewed", "tech_b", "ok")]
    assert shown(site=site_a.pk, actor="tech_a") == [("study.viewed", "tech_a", "ok")]
    assert shown(address="41.73.1.2") == [("study.viewed", "tech_a", "ok")]
    today = timezone.localdate()
    assert len(shown(start=today.isoformat(), end=today.isoformat(), action="study")) == 3
    assert shown(end=(today - timedelta(days=1)).isoformat(), action="study") == []
    bad = client.get(reverse("audit:events"), {"address": "not-an-address"})
    assert bad.status_code == 200 and bad.context["events"] == [] and bad.context["filters"].errors

    viewed = AuditEvent.objects.filter(action="audit.viewed").order_by("id")
    assert viewed.count() == 9
    first = viewed.first()
    assert (first.actor_username, first.client_address, first.detail) == (
        "admin_a",
        CLIENT,
        {"filters": {"actor": "tech_b"}},
    )


def test_the_page_goes_back_in_time_by_keyset(client, admin_user, trail, settings):
    settings.AUDIT_PAGE_SIZE = 2
    client.force_login(admin_user)
    seen, query = [], {"action": "study.viewed"}
    for _ in range(3):
        page = client.get(reverse("audit:events"), query)
        seen += [e.pk for e, _site in page.context["events"]]
        if not page.context["next_query"]:
            break
        query = QueryDict(page.context["next_query"]).dict()
    expected = list(
        AuditEvent.objects.filter(action="study.viewed").order_by("-at", "-id").values_list("pk", flat=True)
    )
    assert seen == expected and len(seen) == 3


def test_the_csv_export_is_the_filtered_set_and_defuses_formulas(client, admin_user, trail):
    client.force_login(admin_user)
    answer = client.get(reverse("audit:export"), {"action": "login.failed"}, **BEHIND_PROXY)
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    assert answer["Cache-Control"] == "private, no-store"
    rows = list(csv.reader(io.StringIO(b"".join(answer.streaming_content).decode())))
    assert rows[0][:4] == ["at", "action", "outcome", "actor"]
    assert [r[1:4] for r in rows[1:]] == [["login.failed", "failed", '\'=HYPERLINK("http://x")']]
    exported = _only("audit.exported")
    assert (exported.actor_username, exported.client_address, exported.detail) == (
        "admin_a",
        CLIENT,
        {"filters": {"action": "login.failed"}},
    )

    everything = client.get(reverse("audit:export"))
    lines = list(csv.reader(io.StringIO(b"".join(everything.streaming_content).decode())))
    assert len(lines) == 1 + AuditEvent.objects.count()  # its own row included: written before
