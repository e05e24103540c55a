"""The access matrix: every URL pattern of the platform, tried by each persona, against one table.

`test_every_route_has_an_entry` walks the URL resolver (every include, named or not): a pattern
the table does not know fails with its name, so whoever adds a route decides who may reach it.
`test_route` tries each entry of ROUTES, one test per route, every persona and method of it;
`test_admin_route` does the same for the Django admin, by family (below). The Markdown matrix is
printed at the end of the module (`-s`), or written to $JOLIBA_ACCESS_MATRIX
(`python -m tests.access_matrix_report` does both).

A cell is what one persona gets from one method of one route:
- `200`, `404`... the status code;
- `302>name`: a redirection to the URL named `name` (`302>login`: the login page);
- a trailing `*`: the route's effect happened (the study claimed, the alert acknowledged...);
  on a route with an effect, a cell without `*` asserts that nothing changed;
- a trailing `-`: answered, but refused on its merits (a form's errors, "this link is not
  valid", a redirection with a message); `!`: a redirection that denies; `+`: a redirection to
  the login page that is the route's success (a logout). The markers only change the verdict
  the matrix shows (✓ · ✗), not the answer compared;
- `now~want`: a known gap: today's answer is `now`, the rule wants `want`, and another item of
  issue 10 (or a fix the lead was told of) closes it: the entry's note says which. The cell fails
  once `want` is answered, asking for the table to be updated.
Denied is 404 for another site's object (never 403: a site must not learn what another sent),
403/401/302>login for who may not be there at all; a 500 is never an answer (outside a gap).
A 200 is also read: site A's patients (SITE_A_MARKER in their names) must appear where the entry
says (`shows_site_a`, so the check is not blind) and never for tech_b, nonreader, anon, revoked
or expired: a list leaks by its content, not its status.

The Django admin is tried by family, from the same walk: each admin pattern's parameters filled
from the pattern (an object of its model, each app label, a content type); the admin persona's
answer follows the ModelAdmin's own permissions (a read-only model's add page is 403), everyone
else is sent to the admin's login page; writes (add, change, delete, password, logout) are also
POSTed, empty. A new ModelAdmin is tried without an entry; an admin pattern of a new kind fails.

Personas (tests/access_personas.py): tech_a, tech_b, reader, nonreader, admin, anon, revoked,
expired. Each request is made by a fresh client inside a savepoint rolled back after it, so every
cell starts from the same world (built once per module, through the platform's services).

Routes that stream from Orthanc (the preview, the API preview, the original DICOM) are tried with
the session's real Orthanc (`orthanc_server`, one chest radiograph stored in it): `test_route`
takes them through the `orthanc` marker; without Orthanc an allowed persona would get the archive
outage's 404 and the matrix could not tell it from a denial.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib import admin
from django.db import transaction
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.exceptions import Resolver404

from tests.access_personas import DESCRIPTIONS, PERSONAS, SITE_A_MARKER, World, build_world

# --- Cells ------------------------------------------------------------------------------------
LOGIN = "302>login"
ANON_PAGE = f"{LOGIN} {LOGIN} {LOGIN}"  # anon, revoked, expired on a page behind the login
ANON_API = "401 401 401"  # tokens' authentication first: 401 with WWW-Authenticate: Token
ANON_TUS = "401 401 401"
ANON_404 = "404 404 404"  # the viewer's answers: no redirection for an <img> or a script


def row(cells: str) -> dict[str, str]:
    """Eight cells, in PERSONAS order, separated by spaces: one line of the matrix."""
    values = cells.split()
    if len(values) != len(PERSONAS):
        raise ValueError(f"{len(values)} cells for {len(PERSONAS)} personas: {cells!r}")
    return dict(zip(PERSONAS, values, strict=True))


@dataclass
class Case:
    """One way of calling a route: its parameters filled with site A's objects, and per method
    the expected row (and the body sent, and the effect to check)."""

    kwargs: Callable[[World], dict[str, Any]] = lambda w: {}
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    data: Callable[[World], Any] | None = None  # POST/PUT body (dict, or bytes with content_type)
    query: Callable[[World], dict[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    effect: Callable[[World], bool] | None = None
    label: str = ""
    note: str = ""
    shows_site_a: tuple[str, ...] = ()  # personas whose 200 must show site A's studies
    settings: dict[str, Any] = field(default_factory=dict)  # overrides for this case's requests


def case(
    kwargs: Callable[[World], dict[str, Any]] | None = None, *, label: str = "", **methods: str | Any
) -> Case:
    """case(lambda w: {...}, GET="cells", POST="cells", data=..., effect=...)."""
    options = {k: methods.pop(k) for k in list(methods) if k.upper() != k}
    made = Case(kwargs=kwargs or (lambda w: {}), label=label, **options)
    made.rows = {method: row(cells) for method, cells in methods.items()}
    return made


def _status(w: World, study: Any) -> str:
    from studies.models import Study

    return Study.objects.values_list("status", flat=True).get(pk=study.pk)


def _holder(w: World, study: Any) -> Any:
    from studies.models import Study

    return Study.objects.values_list("assigned_to_id", flat=True).get(pk=study.pk)


def _queued(w: World) -> dict[str, int]:
    return {"pk": w.queued.pk}


def _held(w: World) -> dict[str, int]:
    return {"pk": w.held.pk}


def _reported(w: World) -> dict[str, int]:
    return {"pk": w.reported.pk}


def _image(w: World) -> dict[str, int]:
    return {"pk": w.queued.pk, "instance_pk": w.instance.pk}


def _mixed(w: World) -> dict[str, int]:
    """Site B's study (which tech_b and nonreader may see) with site A's image: nobody's."""
    return {"pk": w.site_b_study.pk, "instance_pk": w.instance.pk}


MIXED = "mixed: site B's study, site A's image"


def _report_changed(w: World) -> bool:
    from reports.models import Report

    return Report.objects.filter(study=w.held, findings__contains="matrix").exists()


def _amended(w: World) -> bool:
    return w.reported.report.versions.count() > 1


def _linked(w: World) -> bool:
    from assignment.models import PatientLink

    return PatientLink.objects.filter(decided_by=w.users["reader"]).exists()


def _tus(**extra: str) -> dict[str, str]:
    return {"HTTP_TUS_RESUMABLE": "1.0.0", **extra}


# The table: pattern name (or, for an unnamed pattern, its route) → the cases tried on it.
# Columns: tech_a tech_b reader nonreader admin | anon revoked expired.
ROUTES: dict[str, list[Case]] = {
    # --- Signing in and out (django.contrib.auth.urls) ---
    "home": [case(GET=f"302>study_list 302>study_list 302>worklist 302>worklist 302>study_list {ANON_PAGE}")],
    "login": [
        case(
            GET="200 200 200 200 200 200 200 200",
            POST="200- 200- 200- 200- 200- 200- 200- 200-",  # a wrong password: the form again
            data=lambda w: {
                "login_view-current_step": "auth",  # django-two-factor-auth's wizard, first step
                "auth-username": "m_admin",
                "auth-password": "wrong",
            },
        )
    ],
    # --- The second factor and the account (accounts.urls; docs/authentication.md) ---
    # A technician has no phone enrolled: to the enrolment; a verified session: nothing to verify.
    "verify_second_factor": [
        case(GET=f"302>two_factor:setup 302>two_factor:setup 302>home 302>home 302>home {ANON_PAGE}")
    ],
    "account": [case(GET=f"200 200 200 200 200 {ANON_PAGE}")],
    "logout_everywhere": [
        case(
            GET="405 405 405 405 405 405 405 405",
            POST=f"{LOGIN}+ {LOGIN}+ {LOGIN}+ {LOGIN}+ {LOGIN}+ {ANON_PAGE}",
        )
    ],
    # Who has a phone enrolled already is sent on; the QR code exists only during an enrolment.
    "two_factor:setup": [case(GET=f"200 200 {'302>two_factor:setup_complete ' * 3}{ANON_PAGE}")],
    "two_factor:qr": [case(GET=f"404 404 404 404 404 {ANON_PAGE}")],
    # Backup codes need a verified second factor: a technician without a phone is sent to sign in.
    "two_factor:backup_tokens": [case(GET=f"{LOGIN} {LOGIN} 200 200 200 {ANON_PAGE}")],
    "two_factor:profile": [case(GET=" ".join(["302>account"] * 8))],
    "two_factor:login": [case(GET=" ".join(["302>login"] * 8))],
    "two_factor:setup_complete": [case(GET=" ".join(["302>two_factor:backup_tokens"] * 8))],
    "logout": [
        case(
            GET="405 405 405 405 405 405 405 405",
            POST=f"{LOGIN}+ {LOGIN}+ {LOGIN}+ {LOGIN}+ {LOGIN}+ {LOGIN}+ {LOGIN}+ {LOGIN}+",  # logged out
        )
    ],
    "password_change": [
        case(
            GET=f"200 200 200 200 200 {ANON_PAGE}",
            POST=f"200- 200- 200- 200- 200- {ANON_PAGE}",  # an empty form: its errors, nothing changed
            data=lambda w: {},
        )
    ],
    "password_change_done": [case(GET=f"200 200 200 200 200 {ANON_PAGE}")],
    "password_reset": [
        case(
            GET="200 200 200 200 200 200 200 200",
            POST=" ".join(["302>password_reset_done"] * 8),  # the same answer, known address or not
            data=lambda w: {"email": "nobody@example.org"},
        )
    ],
    "password_reset_done": [case(GET="200 200 200 200 200 200 200 200")],
    "password_reset_confirm": [
        case(
            lambda w: {"uidb64": "bWF0cml4", "token": "set-password"},  # a forged link: refused
            GET="200- 200- 200- 200- 200- 200- 200- 200-",  # "this link is not valid"
            label="forged token",
        )
    ],
    "password_reset_complete": [case(GET="200 200 200 200 200 200 200 200")],
    "set_language": [
        case(
            GET=" ".join(["302>home"] * 8),  # nothing set on a GET: back where one was
            POST=" ".join(["302>home"] * 8),
            data=lambda w: {"language": "en", "next": "/"},
        )
    ],
    # --- Studies, images ---
    "study_list": [
        case(GET=f"200 200 200 200 200 {ANON_PAGE}", shows_site_a=("tech_a", "reader", "admin")),
    ],
    "study_detail": [
        case(_queued, GET=f"200 404 200 404 200 {ANON_PAGE}", shows_site_a=("tech_a", "reader", "admin"))
    ],
    "instance_preview": [
        case(_image, GET=f"200 404 200 404 200 {ANON_PAGE}", note="archive"),
        case(_mixed, GET=f"404 404 404 404 404 {ANON_PAGE}", note="archive", label=MIXED),
    ],
    "viewer_manifest": [case(_queued, GET=f"200 404 200 404 200 {ANON_404}")],
    "viewer_rendition": [
        case(
            lambda w: {**_image(w), "name": w.rendition_name},
            GET=f"200 404 200 404 200 {ANON_404}",
        ),
        case(
            lambda w: {**_mixed(w), "name": w.rendition_name},
            GET=f"404 404 404 404 404 {ANON_404}",
            label=MIXED,
        ),
    ],
    "viewer_original": [
        case(_image, GET=f"200 404 200 404 200 {ANON_404}", note="archive"),
        case(_mixed, GET=f"404 404 404 404 404 {ANON_404}", note="archive", label=MIXED),
    ],
    "ai_heatmap": [
        case(_image, GET=f"404 404 200 404 200 {ANON_PAGE}"),
        case(_mixed, GET=f"404 404 404 404 404 {ANON_PAGE}", label=MIXED),
    ],
    # --- Sending ---
    "upload": [
        case(
            GET=f"200 200 403 403 403 {ANON_PAGE}",
            POST=f"200- 200- 403 403 403 {ANON_PAGE}",  # no files: the form and its errors
            data=lambda w: {"indication": "Toux"},
        )
    ],
    "upload_result": [case(lambda w: {"upload_id": w.submission.pk}, GET=f"200 404 404 404 200 {ANON_PAGE}")],
    "send": [case(GET=f"200 200 403 403 403 {ANON_PAGE}")],
    "tus_uploads": [
        case(
            GET="405 405 405 405 405 405 405 405",
            POST=f"201* 201* 403 403 403 {ANON_TUS}",
            OPTIONS="204 204 204 204 204 204 204 204",  # protocol discovery: no data in it
            data=lambda w: b"",
            content_type="application/octet-stream",
            headers=_tus(HTTP_UPLOAD_LENGTH="10"),
            effect=lambda w: w.transfer.__class__.objects.count() > 1,
        )
    ],
    "tus_upload": [
        case(
            lambda w: {"upload_id": w.transfer.pk},
            GET=f"200 404 404 404 200 {ANON_TUS}",
            HEAD=f"200 404 404 404 404 {ANON_TUS}",  # sending: its own site's technicians only
            PATCH=f"204 404 404 404 404 {ANON_TUS}",
            DELETE=f"204* 404 404 404 404 {ANON_TUS}",
            data=lambda w: b"D",  # one byte (the test client sends no Content-Type without a body)
            content_type="application/offset+octet-stream",
            headers=_tus(HTTP_UPLOAD_OFFSET="0"),
            effect=lambda w: w.transfer.__class__.objects.get(pk=w.transfer.pk).state == "terminated",
        ),
        case(  # a method-override header is ignored: a GET (no CSRF token needed) stays a GET
            lambda w: {"upload_id": w.transfer.pk},
            GET=f"200 404 404 404 200 {ANON_TUS}",
            headers=_tus(HTTP_X_HTTP_METHOD_OVERRIDE="DELETE"),
            effect=lambda w: w.transfer.__class__.objects.get(pk=w.transfer.pk).state == "terminated",
            label="GET, X-HTTP-Method-Override: DELETE",
        ),
    ],
    "tus_manifests": [
        case(
            GET=f"200 404 404 404 200 {ANON_TUS}",
            POST=f"201* 201* 403 403 403 {ANON_TUS}",
            query=lambda w: {"id": str(w.manifest.pk)},
            data=lambda w: b'{"files": 1, "indication": "Toux"}',
            content_type="application/json",
            effect=lambda w: w.manifest.__class__.objects.count() > 1,
        )
    ],
    # --- Reading ---
    "worklist": [case(GET=f"403 403 200 200 403 {ANON_PAGE}", shows_site_a=("reader",))],
    "worklist_rows": [case(GET=f"403 403 200 200 403 {ANON_PAGE}", shows_site_a=("reader",))],
    "claim": [
        case(
            _queued,
            GET="405 405 405 405 405 405 405 405",
            POST=f"403 403 302>read* 404 403 {ANON_PAGE}",
            effect=lambda w: _status(w, w.queued) == "in_reading",
        )
    ],
    "release": [
        case(
            _held,
            GET="405 405 405 405 405 405 405 405",
            POST=f"302>worklist 404 302>worklist* 404 302>worklist* {ANON_PAGE}",
            effect=lambda w: _status(w, w.held) == "queued",
        )
    ],
    "return_study": [
        case(
            _held,
            GET="405 405 405 405 405 405 405 405",
            POST=f"302>read 404 302>worklist* 404 302>read {ANON_PAGE}",
            data=lambda w: {"reason": "positioning"},
            effect=lambda w: _status(w, w.held) == "returned",
        )
    ],
    "read": [case(_held, GET=f"403 403 200 404 403 {ANON_PAGE}")],
    "team_load": [case(GET=f"403 403 200 200 200 {ANON_PAGE}")],
    "opinions": [case(GET=f"403 403 200 200 403 {ANON_PAGE}")],
    "opinion": [
        case(
            lambda w: {"opinion_pk": w.opinion.pk},
            GET=f"403 403 200 404 403 {ANON_PAGE}",
            POST=f"403 403 302>opinions* 404 403 {ANON_PAGE}",
            data=lambda w: {"answer": "Atélectasie probable."},
            effect=lambda w: w.opinion.__class__.objects.get(pk=w.opinion.pk).answer != "",
            note="admins may see an opinion (access.may_see_opinion) but the page is for radiologists",
        )
    ],
    "hand_over": [
        case(
            _held,
            GET="405 405 405 405 405 405 405 405",
            POST=f"403 403 302>worklist* 404 403 {ANON_PAGE}",
            data=lambda w: {"assignee": str(w.colleague.pk)},
            effect=lambda w: _holder(w, w.held) == w.colleague.pk,
        )
    ],
    "reassign": [
        case(
            _held,
            GET=f"302>study_detail- 404 302>team_load- 404 200 {ANON_PAGE}",  # with a message
            POST=f"302>study_detail 404 302>team_load 404 302>team_load* {ANON_PAGE}",
            data=lambda w: {"assignee": str(w.colleague.pk)},
            effect=lambda w: _holder(w, w.held) == w.colleague.pk,
        )
    ],
    "consult": [case(_reported, GET=f"403 403 200 404 403 {ANON_PAGE}")],
    "ask_opinion": [
        case(
            _held,
            GET="405 405 405 405 405 405 405 405",
            POST=f"403 403 302>read* 404 403 {ANON_PAGE}",
            data=lambda w: {"asked_of": str(w.colleague.pk), "question": "Pneumothorax ?"},
            effect=lambda w: w.opinion.__class__.objects.filter(study=w.held).exists(),
        )
    ],
    "judge_patient": [
        case(
            lambda w: {"pk": w.queued.pk, "other_pk": w.other_site_study.pk},
            GET="405 405 405 405 405 405 405 405",
            POST=f"403 403 302>consult* 404 403 {ANON_PAGE}",
            data=lambda w: {"same": "1"},
            effect=_linked,
            note="admins may link records (access.may_link_patients) but the page is for radiologists",
        ),
        case(  # a study the reader may not see, on the other side: nobody links it
            lambda w: {"pk": w.queued.pk, "other_pk": w.site_b_study.pk},
            POST=f"403 403 404 404 403 {ANON_PAGE}",
            data=lambda w: {"same": "1"},
            effect=_linked,
            label="other side unseen",
        ),
    ],
    # --- Reports ---
    "report": [case(_reported, GET=f"200 404 200 404 200 {ANON_PAGE}")],
    "report_edit": [
        case(
            _held,
            GET="405 405 405 405 405 405 405 405",
            POST=f"403 404 302>read* 404 403 {ANON_PAGE}",
            data=lambda w: {"findings": "matrix: poumons clairs."},
            effect=_report_changed,
        )
    ],
    "report_sign": [
        case(
            _held,
            GET=f"404 404 200 404 404 {ANON_PAGE}",
            POST=f"404 404 302>worklist* 404 404 {ANON_PAGE}",
            data=lambda w: {"confirm": "on"},
            effect=lambda w: _status(w, w.held) == "reported",
        )
    ],
    "report_amend": [
        case(
            _reported,
            GET=f"404 404 200 404 404 {ANON_PAGE}",
            POST=f"404 404 302>report* 404 404 {ANON_PAGE}",
            data=lambda w: {
                "kind": "addendum",
                "reason": "Précision",
                "addendum": "Voir aussi.",
                "confirm": "on",
            },
            effect=_amended,
        )
    ],
    "report_pdf": [case(_reported, GET=f"200 404 200 404 200 {ANON_PAGE}")],
    # --- Alerts ---
    "alerts:ack": [
        case(
            lambda w: {"token": w.extra["ack_token"]},
            GET="200 200 200 200 200 200 200 200",  # the signed link is the credential (alerts.links)
            POST="200* 200* 200* 200* 200* 200* 200* 200*",
            effect=lambda w: w.ack_alert.__class__.objects.get(pk=w.ack_alert.pk).acked_at is not None,
            label="signed link",
        ),
        case(
            lambda w: {
                "token": w.extra["ack_token"][:-1] + ("a" if w.extra["ack_token"][-1] != "a" else "b")
            },
            GET="404 404 404 404 404 404 404 404",
            POST="404 404 404 404 404 404 404 404",
            effect=lambda w: w.ack_alert.__class__.objects.get(pk=w.ack_alert.pk).acked_at is not None,
            label="forged link",
        ),
    ],
    "alerts:board": [case(GET=f"404 404 404 404 200 {ANON_PAGE}")],
    "alerts:resend": [
        case(
            lambda w: {"pk": w.failed_alert.pk},
            GET=f"405 405 405 405 405 {ANON_PAGE}",
            POST=f"404 404 404 404 302>alerts:board* {ANON_PAGE}",
            effect=lambda w: w.failed_alert.__class__.objects.get(pk=w.failed_alert.pk).status != "failed",
        )
    ],
    "alerts:duty": [case(GET=f"404 404 200 404 200 {ANON_PAGE}")],  # reader is on call
    "alerts:phone_done": [
        case(
            lambda w: {"pk": w.phone_task.pk},
            GET=f"405 405 405 405 405 {ANON_PAGE}",
            POST=f"404 404 302>alerts:duty* 404 302>alerts:duty* {ANON_PAGE}",
            effect=lambda w: w.phone_task.__class__.objects.get(pk=w.phone_task.pk).acked_at is not None,
        )
    ],
    "alerts:settings": [
        case(
            GET=f"200 200 200 200 200 {ANON_PAGE}",
            POST=f"302>alerts:settings 302>alerts:settings 302>alerts:settings 302>alerts:settings "
            f"302>alerts:settings {ANON_PAGE}",  # each person's own preferences
            data=lambda w: {"action": "settings", "language": "fr", "sms_enabled": "on"},
        )
    ],
    # Kannel's callbacks: the shared token (set for this module), never a session.
    "alerts:kannel_incoming": [
        case(
            GET="403 403 403 403 403 403 403 403",
            query=lambda w: {"from": "+22370000001", "text": "OK KAYES-1"},
            effect=lambda w: w.ack_alert.__class__.objects.get(pk=w.ack_alert.pk).acked_at is not None,
            label="without the token",
        ),
        case(
            GET="200* 200* 200* 200* 200* 200* 200* 200*",
            query=lambda w: {"from": "+22370000001", "text": "OK KAYES-1", "token": "matrix-kannel"},
            effect=lambda w: w.ack_alert.__class__.objects.get(pk=w.ack_alert.pk).acked_at is not None,
            label="with the token",
        ),
        # No token configured: the callbacks trust the loopback address, and a reverse proxy on
        # the same machine makes every visitor's request come from there (reported: production
        # settings should refuse ALERTS_SMS_BACKEND=kannel without ALERTS_CALLBACK_TOKEN).
        case(
            GET="200* 200* 200* 200* 200* 200* 200* 200*",
            query=lambda w: {"from": "+22370000001", "text": "OK KAYES-1"},
            effect=lambda w: w.ack_alert.__class__.objects.get(pk=w.ack_alert.pk).acked_at is not None,
            settings={"ALERTS_CALLBACK_TOKEN": ""},
            label="no token configured, from 127.0.0.1",
            note="a reverse proxy on the same host: anyone",
        ),
    ],
    "alerts:kannel_dlr": [
        case(GET="403 403 403 403 403 403 403 403", query=lambda w: {"type": "1", "ref": "x"}),
        case(
            GET="200 200 200 200 200 200 200 200",
            query=lambda w: {"type": "1", "ref": "x", "token": "matrix-kannel"},
            label="with the token",
        ),
    ],
    # --- Privacy (de-identified copy, patient export) ---
    "deidentify_study": [
        case(
            _queued,
            GET=f"404 404 200 404 200 {ANON_PAGE}",
            POST=f"404 404 200 404 200 {ANON_PAGE}",  # the ZIP, from the archive's image
            data=lambda w: {"confirm_burned_in": "1"},
            note="archive",
        )
    ],
    "patient_export": [
        case(
            GET=f"404 404 404 404 200 {ANON_PAGE}",
            POST=f"404 404 404 404 200 {ANON_PAGE}",  # the ZIP of everything about MTX0001
            data=lambda w: {"patient_id": w.queued.patient_id, "site": str(w.site_a.pk)},
        )
    ],
    # --- Audit trail, machine tokens ---
    "audit:events": [case(GET=f"404 404 404 404 200 {ANON_PAGE}")],
    "audit:export": [case(GET=f"404 404 404 404 200 {ANON_PAGE}")],
    # --- The coordinator's dashboard: figures, no patient data; admins only ---
    "dashboard:index": [case(GET=f"404 404 404 404 200 {ANON_PAGE}", query=lambda w: {"days": "7"})],
    "dashboard:export": [case(lambda w: {"table": "backlog"}, GET=f"404 404 404 404 200 {ANON_PAGE}")],
    "tokens:list": [case(GET=f"404 404 404 404 200 {ANON_PAGE}")],
    "tokens:issue": [
        case(
            GET=f"405 405 405 405 405 {ANON_PAGE}",
            POST=f"404 404 404 404 200* {ANON_PAGE}",  # the secret, shown once
            data=lambda w: {"user": str(w.users["tech_a"].pk), "name": "agent-2", "days": "30"},
            effect=lambda w: w.extra["live_token"].__class__.objects.filter(name="agent-2").exists(),
        )
    ],
    "tokens:revoke": [
        case(
            lambda w: {"pk": w.extra["live_token"].pk},
            GET=f"405 405 405 405 405 {ANON_PAGE}",
            POST=f"404 404 404 404 302>tokens:list* {ANON_PAGE}",
            effect=lambda w: (
                w.extra["live_token"]
                .__class__.objects.filter(pk=w.extra["live_token"].pk, revoked_at__isnull=False)
                .exists()
            ),
        )
    ],
    # --- Hardening: the browsers' CSP violation reports (no credentials; a log line, nothing else) ---
    "csp_report": [
        case(
            GET="405 405 405 405 405 405 405 405",
            POST="204 204 204 204 204 204 204 204",
            data=lambda w: b'{"csp-report": {"violated-directive": "script-src", "blocked-uri": "inline"}}',
            content_type="application/csp-report",
            settings={"CSP_REPORTS_PER_MINUTE": 10_000},  # its rate limit is tested by harden
        )
    ],
    # --- Operations: health for the machine's own checks (no login; details never through a proxy) ---
    "health_live": [case(GET="200 200 200 200 200 200 200 200")],
    "health_ready": [
        case(
            label="through the proxy",
            GET="404 404 404 404 404 404 404 404",
            headers={"HTTP_X_FORWARDED_FOR": "203.0.113.7"},
        ),
        # Asked directly from loopback: the details, 503 here (no Orthanc, no worker in this test).
        case(label="from loopback", GET="503 503 503 503 503 503 503 503"),
    ],
    "metrics": [  # Prometheus: loopback (or METRICS_TOKEN) only, never through the proxy
        case(
            label="through the proxy",
            GET="404 404 404 404 404 404 404 404",
            headers={"HTTP_X_FORWARDED_FOR": "203.0.113.7"},
        ),
        case(label="from loopback", GET="200 200 200 200 200 200 200 200"),
    ],
    # --- API ---
    "schema": [
        case(
            GET="200 200 200 200 200 401 401 401",  # for signed-in users only (issue 10, item 4)
        )
    ],
    "api_token": [
        case(
            GET="405 405 405 405 405 405 405 405",
            POST="400 400 400 400 400 400 400 400",  # a wrong password (a header's token is ignored)
            data=lambda w: {"username": "m_tech_a", "password": "wrong"},
        )
    ],
    "api_studies": [case(GET=f"200 200 200 200 200 {ANON_API}", shows_site_a=("tech_a", "reader", "admin"))],
    "api_upload": [
        case(
            GET=f"405 405 405 405 405 {ANON_API}",
            POST=f"400 400 403 403 403 {ANON_API}",  # no files: refused with a reason
            data=lambda w: {"indication": "Toux"},
        )
    ],
    "api_study": [
        case(_queued, GET=f"200 404 200 404 200 {ANON_API}", shows_site_a=("tech_a", "reader", "admin"))
    ],
    "api_claim": [
        case(
            _queued,
            GET=f"405 405 405 405 405 {ANON_API}",
            POST=f"403 404 200* 404 403 {ANON_API}",
            effect=lambda w: _status(w, w.queued) == "in_reading",
        )
    ],
    "api_release": [
        case(
            _held,
            POST=f"403 404 200* 404 200* {ANON_API}",
            effect=lambda w: _status(w, w.held) == "queued",
        )
    ],
    "api_reassign": [
        case(
            _held,
            POST=f"403 404 403 404 200* {ANON_API}",
            data=lambda w: {"assignee": w.colleague.pk},
            effect=lambda w: _holder(w, w.held) == w.colleague.pk,
        )
    ],
    "api_hand_over": [
        case(
            _held,
            POST=f"403 404 200* 404 403 {ANON_API}",
            data=lambda w: {"assignee": w.colleague.pk},
            effect=lambda w: _holder(w, w.held) == w.colleague.pk,
        )
    ],
    "api_return": [
        case(
            _held,
            POST=f"403 404 200* 404 403 {ANON_API}",
            data=lambda w: {"reason": "positioning"},
            effect=lambda w: _status(w, w.held) == "returned",
        )
    ],
    "api_report": [
        case(_reported, GET=f"200 404 200 404 200 {ANON_API}", label="signed"),
        case(
            _held,
            GET=f"404 404 200 404 200 {ANON_API}",  # a draft: radiologists and admins
            PUT=f"403 404 200* 404 403 {ANON_API}",
            data=lambda w: {"findings": "matrix: poumons clairs."},
            content_type="application/json",
            effect=_report_changed,
            label="draft",
        ),
    ],
    "api_report_pdf": [case(_reported, GET=f"200 404 200 404 200 {ANON_API}")],
    "api_preview": [
        case(_image, GET=f"200 404 200 404 200 {ANON_API}", note="archive"),
        case(_mixed, GET=f"404 404 404 404 404 {ANON_API}", note="archive", label=MIXED),
    ],
}

ARCHIVE_ROUTES = {name for name, cases in ROUTES.items() if any(c.note == "archive" for c in cases)}


# --- The walk ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pattern:
    route: str  # the full route, includes joined (regex parts as written)
    name: str | None  # namespaced name
    callback: str

    @property
    def key(self) -> str:
        return self.name or self.route


def walk(resolver: URLResolver | None = None, prefix: str = "", namespace: str = "") -> Iterator[Pattern]:
    """Every pattern under the resolver, through every include, with its namespaced name."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = namespace
            if entry.namespace:
                inner = f"{namespace}:{entry.namespace}" if namespace else entry.namespace
            yield from walk(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            name = entry.name and (f"{namespace}:{entry.name}" if namespace else entry.name)
            yield Pattern(prefix + str(entry.pattern), name, entry.lookup_str)


def is_admin(pattern: Pattern) -> bool:
    return pattern.route.startswith("admin/")


# --- Calling a route as a persona -------------------------------------------------------------
_REDIRECT = re.compile(r"^(\d{3})(?:>(\S+?))?(\*)?$")


def _url_name(location: str) -> str:
    path = location.split("?")[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
    try:
        match = resolve(path)
    except Resolver404:
        return path
    return match.view_name


def observe(response: Any, effect: bool | None) -> str:
    """The cell as observed: status, where it redirects to, and whether the effect happened."""
    cell = str(response.status_code)
    if 300 <= response.status_code < 400 and response.get("Location"):
        cell += ">" + _url_name(response["Location"])
    if effect:
        cell += "*"
    return cell


def body_of(response: Any) -> str:
    if getattr(response, "streaming", False):
        return ""
    try:
        return response.content.decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 — a body that cannot be read shows nothing
        return ""


def call(world: World, persona: str, method: str, url: str, the_case: Case) -> tuple[str, Any]:
    """One request in a savepoint rolled back afterwards: (cell observed, response or None).
    The cache is emptied first: rate limits (their own tests) must not turn one cell into
    another persona's 429, since the matrix sends thousands of requests from one address."""
    from django.core.cache import cache

    cache.clear()
    try:
        with transaction.atomic(), override_settings(**the_case.settings):
            client = world.client(persona)
            if the_case.query:
                url += "?" + urlencode(the_case.query(world))
            extra: dict[str, Any] = dict(the_case.headers)
            data = the_case.data(world) if the_case.data else None
            do = getattr(client, method.lower())
            if method in ("GET", "HEAD", "OPTIONS"):
                response = do(url, **extra)
            elif the_case.content_type:
                if data is not None and not isinstance(data, bytes | str):
                    import json

                    data = json.dumps(data)
                response = do(url, data=data or b"", content_type=the_case.content_type, **extra)
            else:
                response = do(url, data=data or {}, **extra)
            effect = the_case.effect(world) if the_case.effect else None
            transaction.set_rollback(True)
    except Exception as exc:  # noqa: BLE001 — a crash is an answer the matrix must show
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        return f"500:{type(exc).__name__}: {first_line}"[:160].replace("|", "/"), None
    return observe(response, effect), response


# Redirections that refuse: to a login page, or to enrol a phone first (the second factor).
REFUSING_REDIRECTS = ("302>login", "302>admin:login", "302>two_factor:setup")


def check_cell(expected: str, observed: str) -> str | None:
    """None when the observed cell is the expected one; else what is wrong."""
    expected = expected.rstrip("-+!")  # markers of the verdict, not of the answer
    if observed.startswith("500:"):
        observed = "500"  # the exception is in the matrix; the cell compares the status
    if "~" in expected:
        now, want = expected.split("~")
        if observed == want:
            return f"gap closed: answered {want}: make this cell {want!r}"
        expected = now
    if observed != expected:
        return f"expected {expected}, got {observed}"
    return None


SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def verdict(expected: str, observed: str, *, has_effect: bool, method: str) -> str:
    """The matrix's symbol for a cell: ✓ allowed (and done), · reached but refused on its merits
    (a form's errors, a wrong password, a 400, a move the lifecycle refuses: nothing changed),
    ✗ denied (401, 403, 404, 405, a login page), 💥 a crash; ⚠ added for a known gap."""
    gap = "⚠" if "~" in expected and observed[:3] == expected.split("~")[0][:3] else ""
    if observed.startswith("500"):
        return "💥" + gap
    status = int(observed[:3])
    if expected.endswith("+"):
        return "✓" + gap  # this redirection to the login page is the route's success (a logout)
    if expected.endswith("!"):
        return "✗" + gap  # a redirection that refuses (to a page that sends to the login page)
    if observed.startswith(REFUSING_REDIRECTS) or status in (401, 403, 404, 405):
        return "✗" + gap
    refused = expected.endswith("-") or status == 400
    if has_effect and method not in SAFE_METHODS and "*" not in observed:
        refused = True
    return ("·" if refused else "✓") + gap


# What the report shows, filled as the module runs: (route label, method) → {persona: cell}.
OBSERVED: dict[tuple[str, str], dict[str, str]] = {}


def run_case(world: World, key: str, the_case: Case) -> list[str]:
    url = reverse(key, kwargs=the_case.kwargs(world)) if not key.startswith("^") else key
    problems = []
    for method, expected_row in the_case.rows.items():
        label = key + (f" ({the_case.label})" if the_case.label else "")
        seen = OBSERVED.setdefault((label, method), {})
        for persona in PERSONAS:
            observed, response = call(world, persona, method, url, the_case)
            expected = expected_row[persona]
            symbol = verdict(expected, observed, has_effect=the_case.effect is not None, method=method)
            seen[persona] = f"{symbol} {observed}"
            if wrong := check_cell(expected, observed):
                problems.append(f"{method} {url} as {persona}: {wrong}")
            if response is not None and response.status_code == 200 and method == "GET":
                problems += leaks(persona, the_case, body_of(response), f"{method} {url}")
    return problems


def leaks(persona: str, the_case: Case, body: str, where: str) -> list[str]:
    """Site A's patients: shown to whom the entry says, never to who may not see site A."""
    shown = SITE_A_MARKER.lower() in body.lower()
    if persona in the_case.shows_site_a and not shown:
        return [f"{where} as {persona}: site A's studies are not shown (the leak check would be blind)"]
    if persona in ("tech_b", "nonreader", "anon", "revoked", "expired") and shown:
        return [f"{where} as {persona}: shows a patient of site A"]
    return []


# --- The module's world ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    """Built once, in a transaction rolled back after the module (as TestCase.setUpTestData)."""
    renditions = tmp_path_factory.mktemp("matrix-renditions")
    spool = tmp_path_factory.mktemp("matrix-spool")
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            built = build_world(renditions, spool)
        except BaseException:
            outer.__exit__(*sys.exc_info())
            raise
    built.extra.update(renditions=renditions, spool=spool)
    yield built
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)
    report = markdown()
    if path := os.environ.get("JOLIBA_ACCESS_MATRIX"):
        with open(path, "w", encoding="utf-8") as out:
            out.write(report)
    print("\n" + report)  # shown with -s


@pytest.fixture
def matrix(settings, world) -> World:
    """The world, with this module's settings for each test that calls routes."""
    settings.JOLIBA_RENDITIONS_ROOT = world.extra["renditions"]
    settings.INGEST_SPOOL_DIR = world.extra["spool"]
    settings.ALERTS_CALLBACK_TOKEN = "matrix-kannel"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return world


@pytest.fixture
def archived_image(matrix, orthanc_server):
    """The instance of the queued study, really in Orthanc (a chest radiograph of the portable set)."""
    world = matrix
    import requests

    from tests.paths import CHEST_PA_1024

    stored = requests.post(
        f"{orthanc_server.url}/instances",
        data=CHEST_PA_1024.read_bytes(),
        auth=(orthanc_server.username, orthanc_server.password),
        timeout=30,
    )
    stored.raise_for_status()
    world.instance.__class__.objects.filter(pk=world.instance.pk).update(orthanc_id=stored.json()["ID"])
    return world.instance


# --- The tests ---------------------------------------------------------------------------------
def without_entry(patterns: list[Pattern]) -> list[str]:
    return sorted({p.key for p in patterns if not is_admin(p) and p.key not in ROUTES})


def test_every_route_has_an_entry():
    """A pattern found by the walk and missing from the table fails here, by name."""
    patterns = list(walk())
    missing = without_entry(patterns)
    unknown = sorted(set(ROUTES) - {p.key for p in patterns})
    assert not missing, f"routes without an entry in ROUTES (decide who may reach them): {missing}"
    assert not unknown, f"entries of ROUTES that are no route any more: {unknown}"
    assert len(patterns) > len(ROUTES)  # the admin's are there too: test_admin_route tries them


def test_the_walk_sees_every_include_and_a_new_route_fails(settings):
    """The walk goes through includes, namespaces and unnamed patterns; a route added anywhere,
    named or not, is reported by name (or by its route) until the table has its entry."""
    keys = {p.key for p in walk()}
    assert {"alerts:ack", "tus_upload", "api_preview", "viewer_rendition", "set_language"} <= keys
    assert "admin/(?P<url>.*)$" in keys  # unnamed, admin family
    already = set(without_entry(list(walk())))  # none, unless test_every_route_has_an_entry fails
    settings.ROOT_URLCONF = "tests.access_matrix_urls"  # joliba.urls and two new routes
    from django.urls import clear_url_caches

    clear_url_caches()
    try:
        found = without_entry(list(walk(get_resolver())))
    finally:
        clear_url_caches()
    assert sorted(set(found) - already) == ["matrix_new_named", "new/<int:pk>/unnamed/"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "key",
    [pytest.param(k, marks=pytest.mark.orthanc) if k in ARCHIVE_ROUTES else k for k in ROUTES],
)
def test_route(key, matrix, request):
    world = matrix
    if key in ARCHIVE_ROUTES:
        request.getfixturevalue("archived_image")
    problems = []
    for the_case in ROUTES[key]:
        problems += run_case(world, key, the_case)
    assert not problems, "\n".join(problems)


# --- The Django admin, by family ----------------------------------------------------------------
# Every admin URL the walk finds, its parameters filled from the pattern itself: an object id
# from the model of the route (admin/<app>/<model>/...), each app label of app_list, a content
# type and object for view_on_site, a path for the catch-all. The admin persona's answer depends
# on the view (ADMIN_FOR_ADMIN, by the name's suffix or the site view's name); everyone else is
# sent to the admin's login page, whoever they are (not staff, or not signed in).
ADMIN_LOGIN = "302>admin:login"
# The admin site asks every signed-in user for a second factor first (two_factor's OTP admin
# site): a technician, who has none, is sent to enrol; then, not staff, to the login page.
ADMIN_ENROL = "302>two_factor:setup"
ADMIN_FOR_ADMIN = {
    "device_secret": "403",
    "changelist": "200",
    "add": "200",
    "change": "200",
    "history": "200",
    "delete": "200",
    "user_password": "200",
    "object": "302>{change}",  # admin/<app>/<model>/<id>/ redirects to the change page
    "index": "200",
    "app_list": "200",
    "password_change": "200",
    "password_change_done": "200",
    "jsi18n": "200",
    "autocomplete": "403",  # without its parameters: refused, never a 500
    "view_on_site": "404",  # no model here has get_absolute_url
    "catch_all": "404",
    "login": "302>admin:index",
    "logout": "405",  # GET: Django's logout is POST only
}
# The login page itself is open to all (the form); a signed-in user who is not staff sees it too.
# Since the second factor, the admin's login page is the platform's (one way in, one lockout).
ADMIN_LOGIN_ROW = f"{ADMIN_ENROL} {ADMIN_ENROL} " + " ".join(["302>login"] * 6)
# GET on the logout: Django's is POST only (405) for staff; anyone else is sent to the index
# (which sends them to the login page).
ADMIN_LOGOUT_ROW = " ".join([ADMIN_ENROL] * 2 + ["302>admin:index!"] * 2 + ["405"] + ["302>admin:index!"] * 3)


# The admin's writes are also POSTed, empty: who is not staff is sent to the login page before
# any form is read; the admin gets the form back with its errors (or the deletion's confirmation
# page: an empty POST confirms nothing), or 403 where the ModelAdmin allows no such change.
ADMIN_WRITES = ("add", "change", "delete", "user_password", "logout")
ADMIN_POST = {
    "logout": " ".join(
        [ADMIN_ENROL] * 2 + ["302>admin:index!"] * 2 + ["302>login+"] + ["302>admin:index!"] * 3
    )
}
# The admin persona's POST where the generic rule does not hold, by URL name: each says why.
ADMIN_POST_FOR_ADMIN = {
    # Every field read-only: an empty POST saves nothing and goes back to the list.
    "admin:assignment_secondopinion_change": "302>admin:assignment_secondopinion_changelist",
    # axes' failed-attempt records are read-only too: the empty POST goes back to the list.
    "admin:axes_accesslog_change": "302>admin:axes_accesslog_changelist",
}


def _admin_kind(pattern: Pattern) -> str:
    if pattern.name is None:
        if pattern.route.endswith("(?P<url>.*)$"):
            return "catch_all"
        if pattern.route.endswith("<path:object_id>/"):
            return "object"
        return "?"
    short = pattern.name.removeprefix("admin:")
    if short.endswith("_password_change") and _model_of(pattern) is not None:
        return "user_password"  # UserAdmin's "set this user's password" page
    if short.endswith(("_totpdevice_config", "_totpdevice_qrcode")):
        return "device_secret"  # a phone's TOTP key: shown to nobody (OTP_ADMIN_HIDE_SENSITIVE_DATA)
    for suffix in ("changelist", "add", "change", "history", "delete"):
        if short.endswith("_" + suffix) and _model_of(pattern) is not None:
            return suffix
    return short if short in ADMIN_FOR_ADMIN else "?"


def _model_of(pattern: Pattern) -> Any:
    parts = pattern.route.split("/")
    if len(parts) < 3:
        return None
    for model in admin.site._registry:
        if (model._meta.app_label, model._meta.model_name) == (parts[1], parts[2]):
            return model
    return None


def _admin_answer(kind: str, model: Any, obj: Any, world: World) -> str:
    """What the admin persona gets from a model's page: as its ModelAdmin's permissions say
    (records that must not change, signed report versions for one, refuse add and delete)."""
    from django.test import RequestFactory

    if kind in ("change", "history", "delete", "user_password") and obj is None:
        return "302>admin:index"  # nothing of this model in the world: "perhaps it was deleted"
    request = RequestFactory().get("/admin/")
    request.user = world.users["admin"]
    model_admin = admin.site._registry[model]
    allowed = {
        "changelist": model_admin.has_view_or_change_permission(request),
        "add": model_admin.has_add_permission(request),
        "change": model_admin.has_view_or_change_permission(request, obj),
        "history": model_admin.has_view_or_change_permission(request, obj),
        "delete": model_admin.has_delete_permission(request, obj),
        "user_password": model_admin.has_change_permission(request, obj),
    }[kind]
    return "200" if allowed else "403"


def _may_change(name: str, world: World) -> bool:
    from django.test import RequestFactory

    for model, model_admin in admin.site._registry.items():
        if name == f"admin:{model._meta.app_label}_{model._meta.model_name}_change":
            request = RequestFactory().post("/admin/")
            request.user = world.users["admin"]
            return model_admin.has_change_permission(request, model.objects.order_by("pk").first())
    return True


def admin_urls(world: World) -> Iterator[tuple[str, str, str, str]]:
    """(label, url, expected row) for every admin pattern of the walk; '?' kinds fail the test."""
    from django.contrib.contenttypes.models import ContentType

    for pattern in (p for p in walk() if is_admin(p)):
        kind = _admin_kind(pattern)
        model = _model_of(pattern)
        row_cells = " ".join([ADMIN_ENROL] * 2 + [ADMIN_LOGIN] * 2 + ["{admin}"] + [ADMIN_LOGIN] * 3)
        if kind == "login":
            row_cells = ADMIN_LOGIN_ROW
        elif kind == "logout":
            row_cells = ADMIN_LOGOUT_ROW
        for_admin = ADMIN_FOR_ADMIN.get(kind, "?")
        urls: list[tuple[str, str]] = []
        if kind in ("changelist", "add"):
            for_admin = _admin_answer(kind, model, None, world)
            urls = [(pattern.key, reverse(pattern.name))]
        elif kind in ("change", "history", "delete", "object", "user_password", "device_secret"):
            row_obj = model.objects.order_by("pk").first() if model is not None else None
            object_id = str(row_obj.pk) if row_obj is not None else "0"
            if kind not in ("object", "device_secret"):
                for_admin = _admin_answer(kind, model, row_obj, world)
            if kind == "object":
                base = "admin/" + "/".join(pattern.route.split("/")[1:3])
                urls = [(f"{base}/<id>/", f"/{base}/{object_id}/")]
                change = f"admin:{model._meta.app_label}_{model._meta.model_name}_change"
                for_admin = for_admin.replace("{change}", change)
            else:
                (param,) = re.findall(r"<(?:\w+:)?(\w+)>", pattern.route)  # object_id, or id
                urls = [(pattern.key, reverse(pattern.name, kwargs={param: object_id}))]
        elif kind == "app_list":
            labels = sorted({m._meta.app_label for m in admin.site._registry})
            urls = [
                (f"{pattern.key} ({label})", reverse(pattern.name, kwargs={"app_label": label}))
                for label in labels
            ]
        elif kind == "view_on_site":
            user_type = ContentType.objects.get_for_model(world.users["tech_a"].__class__)
            url = reverse(
                pattern.name, kwargs={"content_type_id": user_type.pk, "object_id": world.users["tech_a"].pk}
            )
            urls = [(pattern.key, url)]
        elif kind == "catch_all":
            urls = [("admin/<anything>", "/admin/no-such-page/")]
        elif kind != "?":
            urls = [(pattern.key, reverse(pattern.name))]
        if kind == "?" or not urls:
            yield (pattern.key, "", "?", kind)
            continue
        for label, url in urls:
            yield label, url, row_cells.replace("{admin}", for_admin), kind


@pytest.mark.django_db
def test_admin_route(matrix):
    """Every admin URL: who is not staff (or not signed in) goes to the admin's login page; the
    admin gets the page. An admin pattern of a kind not in ADMIN_FOR_ADMIN fails by name."""
    world = matrix
    problems = []
    tried = 0
    for label, url, cells, kind in admin_urls(world):
        if cells == "?":
            problems.append(f"{label}: an admin route of an unknown kind (add it to ADMIN_FOR_ADMIN)")
            continue
        rows = {"GET": row(cells)}
        if kind in ADMIN_WRITES:
            post = ADMIN_POST.get(kind) or cells.replace(" 200 ", " 200- ")
            if kind == "change" and " 200 " in cells and not _may_change(label, world):
                post = cells.replace(" 200 ", " 403 ")  # a view-only ModelAdmin: its form is shown, not taken
            if label in ADMIN_POST_FOR_ADMIN:
                cells_ = post.split()
                cells_[PERSONAS.index("admin")] = ADMIN_POST_FOR_ADMIN[label]
                post = " ".join(cells_)
            rows["POST"] = row(post)
        for method, expected_row in rows.items():
            seen = OBSERVED.setdefault((label, method), {})
            for persona in PERSONAS:
                observed, _response = call(world, persona, method, url, Case())
                symbol = verdict(expected_row[persona], observed, has_effect=False, method=method)
                seen[persona] = f"{symbol} {observed}"
                if wrong := check_cell(expected_row[persona], observed):
                    problems.append(f"{method} {url} as {persona}: {wrong}")
        tried += 1
    assert tried > 60, tried  # every registered model's pages and the site's own
    assert not problems, "\n".join(problems)


@pytest.mark.django_db
def test_personas_are_what_they_claim(matrix):
    """The three personas that must open nothing would pass for the wrong reason if their
    credentials never worked: the token worked before it was revoked, the session before it
    expired, and the expired session's row is in the past."""
    world = matrix
    from django.conf import settings
    from django.contrib.sessions.models import Session
    from django.test import Client
    from django.utils import timezone

    from tests.access_personas import issue_token, revoke_token

    token, secret = issue_token(world.users["tech_a"], name="agent-check", site=world.site_a)
    agent = Client(HTTP_AUTHORIZATION=f"Token {secret}")
    assert agent.get(reverse("api_studies")).status_code == 200
    revoke_token(token)
    assert agent.get(reverse("api_studies")).status_code == 401

    client = world.client("expired")
    if settings.SESSION_ENGINE in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        row_ = Session.objects.get(session_key=world.expired_session_key)
        assert row_.expire_date < timezone.now()
    assert client.cookies[settings.SESSION_COOKIE_NAME].value == world.expired_session_key
    assert client.get(reverse("study_list")).status_code == 302
    fresh = world.client("admin")
    assert fresh.get(reverse("study_list")).status_code == 200


# --- The readable matrix ------------------------------------------------------------------------
def markdown() -> str:
    """The routes × personas table as Markdown, as observed in this run."""
    head = "| route | method | " + " | ".join(PERSONAS) + " |"
    lines = [head, "|" + "---|" * (len(PERSONAS) + 2)]
    for (label, method), cells in OBSERVED.items():
        lines.append(f"| `{label}` | {method} | " + " | ".join(cells.get(p, "") for p in PERSONAS) + " |")
    legend = (
        "\n✓ allowed; · reached but refused on its merits (form errors, wrong password, 400, a move "
        "the lifecycle refuses: nothing changed); ✗ denied (401, 403, 404, 405, or a login page); "
        "💥 a crash; ⚠ a known gap (the table's note says who closes it). `302>name`: redirected to "
        "the URL named so; `*`: the route's effect happened. Personas: "
        + "; ".join(f"{p}: {d}" for p, d in DESCRIPTIONS.items())
        + ".\n"
    )
    return "\n".join(lines) + "\n" + legend
