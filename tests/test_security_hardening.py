"""Hardening (docs/security.md): `check --deploy` clean with production settings, production refuses
SQLite, the security headers and the CSP, no-store on everything with patient data but the images a
reading session re-uses, the browser cache cleared at logout, method-override headers ignored, CSRF
on every state change (every URL pattern walked), the API schema for signed-in users only, the CSP
report endpoint, and templates without inline script, style or event handlers."""

from __future__ import annotations

import base64
import json
import logging
import re
import subprocess
import sys
import uuid

import pytest
from django.core.cache import cache
from django.http import HttpResponse
from django.test import Client, RequestFactory, override_settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from rest_framework.authentication import SessionAuthentication
from rest_framework.views import APIView

from joliba.security import HardeningMiddleware, cache_privately
from tests.paths import REPO
from tests.settings_child import production_env, run_python
from uploads import spool, tus
from uploads.models import Transfer

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def _sign_in(client, user) -> None:
    """With a verified second factor where the role needs one (tests.helpers.login_verified, from
    the authentication work), else a plain session."""
    from tests import helpers

    login = getattr(helpers, "login_verified", None)
    if login is not None:
        login(client, user)
    else:
        client.force_login(user)


# --- Production settings ---------------------------------------------------------------------------
def test_check_deploy_is_clean_with_production_settings():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=REPO,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = (done.stdout + done.stderr).strip()
    print(f"$ JOLIBA_ENV=production ... python manage.py check --deploy\n{output}")
    assert done.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output, output
    assert "WARNING" not in output and "ERROR" not in output, output


def test_production_sets_hsts_and_the_https_redirect_and_development_does_not():
    show = (
        "import django; django.setup(); from django.conf import settings as s; import json; print(json.dumps("
        "[s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT,"
        " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.CSRF_COOKIE_HTTPONLY]))"
    )
    prod = run_python(show, production_env())
    assert prod.returncode == 0, prod.stderr
    assert json.loads(prod.stdout.strip().splitlines()[-1]) == [31536000, True, True, True, True, True, True]
    shorter = run_python(show, production_env(SECURE_HSTS_SECONDS="3600", SECURE_SSL_REDIRECT="0"))
    assert json.loads(shorter.stdout.strip().splitlines()[-1])[:3] == [3600, True, False]
    dev = run_python(show, {**production_env(), "JOLIBA_ENV": "development"})
    assert dev.returncode == 0, dev.stderr
    hsts, _sub, redirect, *_ = json.loads(dev.stdout.strip().splitlines()[-1])
    assert hsts == 0 and redirect is False


def test_production_refuses_to_start_on_sqlite(tmp_path):
    for url in (f"sqlite:///{tmp_path / 'joliba.sqlite3'}", None):
        env = production_env(DATABASE_URL=url or "")
        if url is None:
            del env["DATABASE_URL"]  # the default is SQLite
        done = run_python("import django; django.setup()", env)
        assert done.returncode != 0
        assert "ImproperlyConfigured" in done.stderr and "PostgreSQL" in done.stderr, done.stderr
    assert run_python("import django; django.setup()", production_env()).returncode == 0


# --- Headers ----------------------------------------------------------------------------------------
def _policy(response) -> dict[str, list[str]]:
    parts = (p.strip().split() for p in response["Content-Security-Policy"].split(";") if p.strip())
    return {p[0]: p[1:] for p in parts}


@pytest.mark.django_db
def test_every_page_has_the_security_headers_and_the_csp(client):
    answer = client.get(reverse("login"))
    assert answer.status_code == 200
    assert _policy(answer) == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "worker-src": ["'none'"],
        "object-src": ["'none'"],
        "frame-src": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "report-uri": ["/csp-report/"],
    }
    assert answer["X-Frame-Options"] == "DENY"
    assert answer["Referrer-Policy"] == "same-origin"
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Cross-Origin-Opener-Policy"] == "same-origin"
    assert answer["Cross-Origin-Resource-Policy"] == "same-origin"
    assert "camera=()" in answer["Permissions-Policy"]
    assert answer["Cache-Control"] == "no-store"
    # The Django admin: same headers, never framed, never cached (its login is the platform's own,
    # with the second factor: followed there).
    admin = client.get("/admin/login/", follow=True)
    assert admin.status_code == 200 and admin["X-Frame-Options"] == "DENY"
    assert admin["Cache-Control"] == "no-store" and _policy(admin)["frame-ancestors"] == ["'none'"]


@pytest.mark.django_db
def test_https_is_enforced_except_for_kannels_local_callbacks(settings):
    with override_settings(SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=31536000):
        http = Client()
        answer = http.get("/worklist/")
        assert answer.status_code == 301 and answer["Location"] == "https://testserver/worklist/"
        assert http.get("/alerts/kannel/dlr/").status_code != 301  # refused on its token, not moved
        secure = http.get(reverse("login"), secure=True)
        assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"


# --- Caching ----------------------------------------------------------------------------------------
def test_the_middleware_makes_every_unmarked_answer_no_store_and_keeps_marked_images():
    factory = RequestFactory()

    def public(request):
        response = HttpResponse(b"patient data")
        response["Cache-Control"] = "public, max-age=86400"
        response["Expires"] = "Thu, 01 Jan 2099 00:00:00 GMT"
        return response

    answer = HardeningMiddleware(public)(factory.get("/x"))
    assert answer["Cache-Control"] == "no-store" and "Expires" not in answer
    marked = HardeningMiddleware(lambda r: cache_privately(HttpResponse(b"img"), immutable=True))
    assert marked(factory.get("/x"))["Cache-Control"] == "private, max-age=3600, immutable"
    pdf = HardeningMiddleware(lambda r: HttpResponse(b"%PDF", content_type="application/pdf"))(
        factory.get("/x")
    )
    assert pdf["Cache-Control"] == "no-store" and pdf["Content-Security-Policy"] == "frame-ancestors 'none'"


@pytest.mark.orthanc
@pytest.mark.django_db
def test_patient_data_is_no_store_and_images_are_cached_privately_for_a_reading_session(
    client, settings, tech_a, tech_b, radiologist, tmp_path
):
    from reports.services import save_report
    from studies import lifecycle
    from studies.lifecycle import Transition
    from tests.helpers import send_chest
    from viewer.services import render_instance

    settings.PRIVATE_CACHE_SECONDS = 1800
    study = send_chest(tech_a, tmp_path, BodyPartExamined="CHEST")
    instance = study.instances.get()
    render_instance(instance.pk)
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    _sign_in(client, radiologist)
    manifest = client.get(reverse("viewer_manifest", args=[study.pk]))
    assert manifest.status_code == 200 and manifest["Cache-Control"] == "no-store"
    shown = manifest.json()["series"][0]["instances"][0]
    assert "/r/preview-" in shown["preview"]["url"], shown["preview"]  # the renditions were made
    for url in (shown["preview"]["url"], *shown["full"]["frames"]):
        image = client.get(url)
        assert image.status_code == 200, url
        assert image["Cache-Control"].startswith("private, max-age=1800"), (url, image["Cache-Control"])
    preview = client.get(reverse("instance_preview", args=[study.pk, instance.pk]))
    assert preview.status_code == 200 and preview["Cache-Control"] == "private, max-age=1800"
    no_store = [
        reverse("read", args=[study.pk]),
        reverse("study_detail", args=[study.pk]),
        reverse("worklist"),
        reverse("worklist_rows"),
        reverse("viewer_original", args=[study.pk, instance.pk]),
        "/api/v1/studies/",
        f"/api/v1/studies/{study.pk}/",
    ]
    for url in no_store:
        answer = client.get(url)
        assert answer.status_code == 200, (url, answer.status_code)
        assert answer["Cache-Control"] == "no-store", (url, answer["Cache-Control"])
    save_report(study=study, author=radiologist, findings="Normal.", conclusion="Normal.", sign=True)
    pdf = client.get(reverse("report_pdf", args=[study.pk]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Cache-Control"] == "no-store"
    # A denied image is not cached either (404 for whoever may not see the study).
    _sign_in(client, tech_b)
    denied = client.get(shown["full"]["frames"][0])
    assert denied.status_code == 404 and denied["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_static_files_stay_cacheable(client):
    answer = client.get("/static/joliba/site.css")
    assert answer.status_code == 200
    assert "max-age=" in answer["Cache-Control"] and "no-store" not in answer["Cache-Control"]


@pytest.mark.django_db
def test_logout_clears_the_browsers_cache_and_storage(client, radiologist):
    _sign_in(client, radiologist)
    assert "Clear-Site-Data" not in client.get(reverse("login"))
    answer = client.post(reverse("logout"))
    assert answer.status_code in (200, 302)
    assert answer["Clear-Site-Data"] == '"cache", "storage"'


# --- Method override and CSRF -----------------------------------------------------------------------
def _meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", ["HTTP_X_HTTP_METHOD_OVERRIDE", "HTTP_X_HTTP_METHOD", "HTTP_X_METHOD_OVERRIDE"]
)
def test_a_get_with_a_method_override_header_writes_nothing_to_an_upload(header, tech_a):
    browser = Client(enforce_csrf_checks=True)
    _sign_in(browser, tech_a)
    browser.get(reverse("send"))  # the page sets the CSRF cookie
    token = browser.cookies["csrftoken"].value
    created = browser.post(  # a creation without data (as the page's client makes it)
        "/api/v1/uploads/",
        b"",
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_LENGTH="20",
        HTTP_UPLOAD_METADATA=_meta(filename="01.dcm"),
        HTTP_X_CSRFTOKEN=token,
        **TUS,
    )
    assert created.status_code == 201, created.content
    url = created["Location"]
    transfer = Transfer.objects.get()

    def patch(method: str, **extra):
        return browser.generic(
            method,
            url,
            b"0123456789",
            content_type="application/offset+octet-stream",
            HTTP_UPLOAD_OFFSET="0",
            **TUS,
            **extra,
        )

    attack = patch("GET", **{header: "PATCH"})
    assert attack.status_code in (200, 404), attack.status_code  # the GET's own answer: the status
    transfer.refresh_from_db()
    assert transfer.offset == 0 and spool.part_path(transfer.pk).stat().st_size == 0
    # Through the view alone (no middleware in front): tus reads the real method only.
    request = RequestFactory().generic(
        "GET",
        url,
        b"0123456789",
        content_type="application/offset+octet-stream",
        HTTP_UPLOAD_OFFSET="0",
        **TUS,
        **{header: "PATCH"},
    )
    request.user = tech_a
    assert tus.upload_detail(request, transfer.pk).status_code == 200
    transfer.refresh_from_db()
    assert transfer.offset == 0
    # A PATCH without the token is refused; with it, the same bytes land.
    assert patch("PATCH").status_code == 401
    transfer.refresh_from_db()
    assert transfer.offset == 0
    assert patch("PATCH", HTTP_X_CSRFTOKEN=token).status_code == 204
    transfer.refresh_from_db()
    assert transfer.offset == 10


# Views that accept a state change without the session's CSRF token, each with why that is safe.
# A new one fails test_every_state_change_with_a_session_needs_the_csrf_token until listed here.
CSRF_EXEMPT = {
    "alerts:ack": "the SMS acknowledgement link: the token in the URL is the credential, no session used",
    "csp_report": "browsers post violation reports without a token; it writes one rate-limited log line",
}
# csrf_exempt because tus carries raw bytes past Django's parsers: uploads.auth.sending_user checks
# the CSRF token itself for a session (a token-authenticated site agent needs none); refused: 401.
CHECKS_CSRF_ITSELF = {"tus_uploads", "tus_upload", "tus_manifests"}
# API views that read no session at all (DRF authentication without SessionAuthentication): a
# forged cross-site request carries no credential they accept. Each listed with why.
MACHINE_ENDPOINTS = {
    "api_token": "a site agent's technician trades a password for a machine token (no session read)",
}
# Kannel's callbacks are GET only (require_GET) and carry the shared ALERTS_CALLBACK_TOKEN.
SAMPLE = {"int": "1", "str": "x", "slug": "x", "uuid": str(uuid.uuid4()), "path": "x"}


def _routes(patterns=None, prefix: str = "", namespace: str = ""):
    """(url, name, callback) for every pattern, with sample values for its parameters."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = _example(entry.pattern)
        if isinstance(entry, URLResolver):
            space = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _routes(entry.url_patterns, prefix + route, space)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}{entry.name}" if entry.name else f"{prefix + route} (unnamed)"
            yield "/" + prefix + route, name, entry.callback


def _example(pattern) -> str:
    text = str(pattern)
    if hasattr(pattern, "converters") and "<" in text and not text.startswith("^"):
        return re.sub(r"<(?:(\w+):)?\w+>", lambda m: SAMPLE.get(m.group(1) or "str", "1"), text)
    text = text.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\/", "/")
    text = re.sub(
        r"\(\?P<\w+>([^)]*)\)", lambda m: m.group(1).split("|")[0] if "|" in m.group(1) else "1", text
    )
    return text.replace("\\", "")


def _uses_the_session(callback) -> bool:
    view = getattr(callback, "cls", None)
    if view is None or not issubclass(view, APIView):
        return True
    classes = callback.initkwargs.get("authentication_classes", view.authentication_classes)
    return any(issubclass(c, SessionAuthentication) for c in classes)


@pytest.mark.django_db
def test_every_state_change_with_a_session_needs_the_csrf_token(admin_user):
    admin_user.is_staff = admin_user.is_superuser = True  # the admin's views too
    admin_user.save()
    browser = Client(enforce_csrf_checks=True)
    _sign_in(browser, admin_user)
    checked, unresolved, exempt_seen, machine, failures = 0, [], set(), set(), []
    for url, name, callback in _routes():
        try:
            found = resolve(url)
        except Exception:
            unresolved.append((url, name))
            continue
        if found.func is not callback:
            continue  # an earlier pattern answers this sample URL: it is checked under its own name
        if name in CSRF_EXEMPT:
            exempt_seen.add(name)
            continue
        if not _uses_the_session(callback):
            machine.add(name)
            continue
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            answer = browser.generic(method, url, b"{}", content_type="application/json", **TUS)
            body = answer.content.decode("utf-8", "replace")
            refused_for_csrf = answer.status_code == 403 and "CSRF" in body
            if name in CHECKS_CSRF_ITSELF:
                refused_for_csrf = answer.status_code in (401, 405)
            if not refused_for_csrf:
                failures.append((method, url, name, answer.status_code, body[:120]))
            checked += 1
    assert not unresolved, f"no sample URL for these patterns (extend SAMPLE/_example): {unresolved}"
    assert not failures, failures
    assert machine <= set(MACHINE_ENDPOINTS), f"API views without a session, not listed: {machine}"
    assert exempt_seen == set(CSRF_EXEMPT), (
        f"listed as exempt but no longer routed: {set(CSRF_EXEMPT) - exempt_seen}"
    )
    assert checked >= 4 * 60, checked  # every route of the platform, the admin's included


def test_only_the_listed_views_are_csrf_exempt():
    exempt = set()
    for _url, name, callback in _routes():
        if getattr(callback, "csrf_exempt", False) and _uses_the_session(callback):
            if getattr(callback, "cls", None) is not None:
                continue  # DRF: SessionAuthentication enforces CSRF itself
            exempt.add(name)
    assert exempt == set(CSRF_EXEMPT) | CHECKS_CSRF_ITSELF, exempt


# --- The API schema ---------------------------------------------------------------------------------
@pytest.mark.django_db
def test_the_api_schema_is_for_signed_in_users_only(client, tech_a):
    assert client.get("/api/schema/").status_code in (401, 403)
    _sign_in(client, tech_a)
    answer = client.get("/api/schema/")
    assert answer.status_code == 200 and b"openapi" in answer.content


# --- CSP reports ------------------------------------------------------------------------------------
@pytest.fixture
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _report(client, body, content_type="application/csp-report"):
    return client.post(reverse("csp_report"), json.dumps(body), content_type=content_type)


@pytest.mark.django_db
def test_csp_reports_are_logged_without_queries_or_samples(client, caplog, fresh_cache):
    caplog.set_level(logging.WARNING, logger="joliba.security")
    report = {
        "csp-report": {
            "document-uri": "https://joliba.example.org/worklist/?q=DIARRA",
            "blocked-uri": "inline",
            "effective-directive": "script-src-elem",
            "violated-directive": "script-src-elem",
            "script-sample": "alert('DIARRA Awa')",
            "line-number": 12,
        }
    }
    assert _report(client, report).status_code == 204
    reporting_api = [
        {
            "type": "csp-violation",
            "body": {"documentURL": "https://joliba.example.org/send/#x", "effectiveDirective": "img-src"},
        }
    ]
    assert _report(client, reporting_api, "application/reports+json").status_code == 204
    logged = [r.getMessage() for r in caplog.records if r.name == "joliba.security"]
    assert len(logged) == 2
    assert '"directive": "script-src-elem"' in logged[0] and "/worklist/" in logged[0]
    assert "DIARRA" not in " ".join(logged) and "#x" not in logged[1]
    assert _report(client, {"nothing": 1}).status_code == 400
    assert (
        client.post(reverse("csp_report"), b"not json", content_type="application/csp-report").status_code
        == 400
    )
    assert client.get(reverse("csp_report")).status_code == 405
    huge = {"csp-report": {"blocked-uri": "x" * 20_000}}
    assert _report(client, huge).status_code == 413


@pytest.mark.django_db
def test_csp_reports_are_rate_limited(client, settings, fresh_cache):
    settings.CSP_REPORTS_PER_MINUTE = 3
    report = {"csp-report": {"blocked-uri": "inline", "effective-directive": "style-src-attr"}}
    answers = [_report(client, report).status_code for _ in range(5)]
    assert answers == [204, 204, 204, 429, 429]


# --- Templates --------------------------------------------------------------------------------------
INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I), "inline <script>"),
    (re.compile(r"<style[\s>]", re.I), "<style> block"),
    (re.compile(r"\sstyle\s*=", re.I), "style= attribute"),
    (re.compile(r"\son[a-z]+\s*=\s*[\"']", re.I), "inline event handler"),
    (re.compile(r"(?:href|src|action)\s*=\s*[\"']\s*javascript:", re.I), "javascript: URL"),
]


def test_templates_have_no_inline_script_style_or_event_handler():
    """The CSP (script-src/style-src 'self') would block them. Mails are not pages: their inline
    styles stay (mail clients need them)."""
    found = []
    templates = [p for p in (REPO / "platform").glob("*/templates/**/*.html") if "/email/" not in str(p)]
    assert len(templates) > 30
    for path in templates:
        text = path.read_text()
        for pattern, what in INLINE:
            for match in pattern.finditer(text):
                found.append(f"{path.relative_to(REPO)}: {what}: {match.group(0)[:60]}")
    assert not found, found
