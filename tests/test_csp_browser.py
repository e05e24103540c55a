"""The pages really satisfy the Content-Security-Policy (docs/security.md), in a real Chromium, while
they work: the send page sends a study over tus, the worklist refreshes itself, the reading page's
viewer draws the full rendition and the report editor autosaves, the study page shows its images,
the alerts board and the admin open. Every `securitypolicyviolation` event, every console error or
warning and every report reaching /csp-report/ is collected: there must be none. A deliberate
violation at the end proves the three listeners hear one. Then logout empties the browser's cache
(Clear-Site-Data), and a viewer bundle that fails to load gives the page its static previews back."""

from __future__ import annotations

import logging
import time

import pytest
from django.urls import reverse

from accounts.models import User
from studies.models import Study
from tests.helpers import chromium, give_totp_device, log_in, wait_for
from tests.paths import ARTIFACTS, CT_HEAD, REPO

pytestmark = [pytest.mark.browser, pytest.mark.orthanc, pytest.mark.django_db(transaction=True)]

VENDOR_JS = REPO / "platform" / "uploads" / "static" / "uploads" / "vendor" / "tus.min.js"
SHOTS = ARTIFACTS / "csp"

# Runs in every document before its own scripts (Playwright's init scripts are not subject to the
# page's CSP): each violation goes to Python through an exposed binding.
LISTEN = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolation([e.effectiveDirective, e.blockedURI, e.sourceFile + ":" + e.lineNumber,
                         location.pathname].join(" "));
});
"""
# What the page can tell about an image in its HTTP cache: `only-if-cached` never goes to the
# network (it fails instead).
IN_CACHE = """async (url) => {
  try { const r = await fetch(url, {cache: "only-if-cached", mode: "same-origin"}); return r.ok; }
  catch (e) { return false; }
}"""


# Images (previews, renditions) this document loaded: how many, and bytes over the network (a
# response from the HTTP cache has a transferSize of 0).
IMAGE_BYTES = """() => {
  const images = performance.getEntriesByType("resource").filter(e => e.name.includes("/images/"));
  return {count: images.length, bytes: images.reduce((sum, e) => sum + e.transferSize, 0)};
}"""


class Watch:
    """Violations, console errors/warnings and uncaught errors of every page of a context."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.console: list[str] = []

    def attach(self, context) -> None:
        context.expose_binding("__cspViolation", lambda _source, text: self.violations.append(text))
        context.add_init_script(LISTEN)
        context.on("page", self.page)

    def page(self, page) -> None:
        page.on("console", lambda m: self.message(m, page))
        page.on("pageerror", lambda error: self.console.append(f"pageerror: {error} {page.url}"))

    def message(self, m, page) -> None:
        source = (m.location or {}).get("url", "")
        if m.type not in ("error", "warning") or source.endswith("/favicon.ico"):  # no icon: not ours
            return
        self.console.append(f"{m.type}: {m.text} {source} (page {page.url})")

    def clean(self) -> None:
        assert not self.violations, self.violations
        assert not self.console, self.console


def _context(browser, watch: Watch, url: str, username: str):
    context = browser.new_context(locale="fr-FR", viewport={"width": 1366, "height": 900})
    watch.attach(context)
    page = context.new_page()
    log_in(page, url, username, f"pw-{username}")
    page.wait_for_selector("h1")
    return context, page


def _until(page, predicate, timeout: float = 10):
    """Poll while letting Playwright dispatch its events (the bindings, the console)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def reports(caplog):
    caplog.set_level(logging.WARNING, logger="joliba.security")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "joliba.security"]


def test_every_page_satisfies_the_csp_while_it_works(
    settings, worker_spool_dir, live_server, celery_worker, tech_a, radiologist, admin_user, reports
):
    if not VENDOR_JS.exists():
        pytest.skip("tus-js-client is not built: run `make static` (scripts/build_static.sh)")
    settings.INGEST_SPOOL_DIR = worker_spool_dir  # the worker finalises what the page sends
    settings.WORKLIST_REFRESH_SECONDS = 1  # the worklist's own refresh runs during the test
    root = User.objects.create_superuser("root_a", password="pw-root_a", role="admin")
    give_totp_device(root)  # an admin signs in with the second factor (log_in enters the code)
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = live_server.url
    watch = Watch()
    with chromium() as browser:
        # The technician sends a study from the resumable page (tus POST/PATCH with the CSRF header).
        _tech_context, tech = _context(browser, watch, url, "tech_a")
        tech.goto(f"{url}/send/")
        tech.set_input_files("#dicom-files", [str(CT_HEAD / "01.dcm")])
        tech.fill("#indication", "Chute, céphalées persistantes")
        tech.select_option("#priority", "urgent")
        tech.click("#send button[type=submit]")
        tech.wait_for_function("() => document.querySelectorAll('td.verdict').length === 1", timeout=60_000)
        assert tech.locator("td.verdict").inner_text() == "Accepté"
        tech.screenshot(path=str(SHOTS / "send.png"), full_page=True)
        study = wait_for(lambda: Study.objects.filter(status="queued").first(), timeout=90)

        # The radiologist: the worklist refreshes itself, "Lire" claims, the viewer draws in full
        # fidelity, the editor autosaves on blur.
        dr_context, dr = _context(browser, watch, url, "dr_a")
        dr.goto(f"{url}/worklist/")
        with dr.expect_response(lambda r: "/worklist/rows/" in r.url and r.status in (200, 304)):
            pass
        dr.click("tr.case button:has-text('Lire')")
        dr.wait_for_selector(".vw.vw-ready", timeout=30_000)
        dr.wait_for_function(
            "() => document.querySelector('.vw')?.dataset.source === 'full'", timeout=120_000
        )
        dr.fill("#id_findings", "Pas de lésion hémorragique intracrânienne.")
        dr.click("#id_conclusion")
        dr.wait_for_function(
            "() => document.getElementById('report-saved').textContent.startsWith('Brouillon enregistré à')"
        )
        dr.screenshot(path=str(SHOTS / "reading.png"), full_page=True)
        # The full rendition the viewer drew, kept in this browser's HTTP cache for the session.
        full = dr.evaluate(
            "() => performance.getEntriesByType('resource').map(e => e.name)"
            ".find(n => n.includes('/r/full-'))"
        )
        assert full and dr.evaluate(IN_CACHE, full), "the rendition is not in the browser's cache"
        # The same case opened again in the session: its images come from the cache, 0 bytes.
        first = dr.evaluate(IMAGE_BYTES)
        dr.goto(url + reverse("read", args=[study.pk]))
        dr.wait_for_function("() => document.querySelector('.vw')?.dataset.source === 'full'", timeout=60_000)
        again = dr.evaluate(IMAGE_BYTES)
        print(f"images of the case: first open {first}, opened again in the session {again}")
        assert first["count"] >= 2 and first["bytes"] > 0, first
        assert again["count"] >= 2 and again["bytes"] == 0, again

        # The study page with its image grid, as the site sees it.
        tech.goto(f"{url}/studies/{study.pk}/")
        tech.wait_for_function(
            "() => [...document.querySelectorAll('main img')].some(i => i.naturalWidth > 0)"
        )

        # The alerts board and the Django admin.
        _admin_context, admin = _context(browser, watch, url, "admin_a")
        admin.goto(f"{url}{reverse('alerts:board')}")
        admin.wait_for_selector("h1")
        _root_context, staff = _context(browser, watch, url, "root_a")
        for path in ("/admin/", "/admin/accounts/user/", f"/admin/accounts/user/{root.pk}/change/"):
            staff.goto(f"{url}{path}")
            staff.wait_for_selector("#content")
        staff.screenshot(path=str(SHOTS / "admin.png"), full_page=True)

        dr.wait_for_timeout(1500)  # late violations (lazy images, the next refresh) are heard too
        watch.clean()
        assert reports() == [], reports()

        # Logout clears the cache: the rendition the viewer kept is gone once the reader is out.
        dr.click("header button:has-text('Déconnexion')")
        dr.wait_for_url("**/accounts/login/**")
        log_in(dr, url, "dr_a", "pw-dr_a")
        dr.wait_for_selector("h1")
        assert not dr.evaluate(IN_CACHE, full), "logout left the study's images in the cache"

        # A viewer bundle that does not load: fallback.js gives the page its plain previews back.
        broken = dr_context.new_page()
        broken.route("**/viewer.min.js", lambda route: route.fulfill(status=503, body="down"))
        broken.goto(url + reverse("read", args=[study.pk]))
        broken.wait_for_selector(".vw:not(.vw-js)")
        assert broken.locator(".vw-static figure img").first.is_visible()
        assert not broken.locator(".vw-app").is_visible()
        assert not watch.violations, watch.violations
        broken.close()

        # The listeners work: an inline script injected into a page is refused, heard and reported.
        dr.goto(f"{url}/worklist/?q=secret")
        dr.evaluate(
            "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
            " document.body.append(s); }"
        )
        _until(dr, lambda: watch.violations and reports())
        assert dr.evaluate("() => window.ran === undefined")
        assert any(v.startswith("script-src-elem inline") for v in watch.violations), watch.violations
        assert any("Content Security Policy" in c for c in watch.console), watch.console
        logged = reports()[0]
        assert '"directive": "script-src-elem"' in logged and "/worklist/" in logged, logged
        assert "secret" not in logged, logged  # the query string stays out of the log
