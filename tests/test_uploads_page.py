"""The technician's resumable upload page (/send/) in a real chromium, against the real tus
endpoint, worker and Orthanc: a dropped link and a page reload mid-study lose nothing."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import time

import pytest

from studies.models import Instance, Study
from tests.helpers import chromium, log_in
from tests.paths import ARTIFACTS, CT_HEAD, REPO
from tests.paths import FILM_PHOTO as FILM
from uploads.models import Transfer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VENDOR_JS = REPO / "platform" / "uploads" / "static" / "uploads" / "vendor" / "tus.min.js"
FIRST_LOAD_BUDGET = 60_000
# A slow link (bytes/s) so that "mid-upload" lasts long enough to cut it, as on a site's 3G.
SLOW_LINK = {"offline": False, "latency": 80, "downloadThroughput": 200_000, "uploadThroughput": 180_000}


@pytest.fixture(scope="session")
def tus_bundle():
    """tus-js-client is built from npm, never committed: build it if this checkout has not."""
    if not VENDOR_JS.exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is absent: cannot build tus-js-client (run scripts/build_static.sh with npm)")
        subprocess.run(["sh", str(REPO / "scripts" / "build_static.sh")], cwd=REPO, check=True, timeout=300)
    return VENDOR_JS


@pytest.fixture
def page_settings(settings, worker_spool_dir):
    settings.INGEST_SPOOL_DIR = worker_spool_dir  # the worker finalises what the page sends
    return settings


def _until(page, predicate, timeout: float = 30):
    """Poll the database while letting Playwright dispatch its events (page.on callbacks)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError(f"condition not met within {timeout}s")


def _mid_upload(filename: str):
    row = Transfer.objects.filter(filename=filename).first()
    return row if row is not None and 0 < row.offset < row.length else None


def _logged_in_page(browser, url: str, username: str):
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    log_in(page, url, username, f"pw-{username}")
    page.wait_for_selector("h1")
    return context, page


def test_it_resumes_a_study_after_a_dropped_link_and_a_reload(
    tus_bundle, page_settings, live_server, celery_worker, tech_a
):
    page_settings.UPLOADS_PAGE_CHUNK_BYTES = 65536  # small chunks: "mid-upload" lasts long enough
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = live_server.url
    files = [str(CT_HEAD / f"{i:02d}.dcm") for i in (1, 2, 3)]
    with chromium() as browser:
        context, page = _logged_in_page(browser, url, "tech_a")
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", SLOW_LINK)
        patches: list[tuple[str, int]] = []
        page.on(
            "request",
            lambda r: (
                r.method == "PATCH" and patches.append((r.url, int(r.headers.get("upload-offset", "-1"))))
            ),
        )

        page.goto(f"{url}/send/")
        assert page.locator("#fallback").is_hidden()
        page.set_input_files("#dicom-files", files)
        page.fill("#indication", "Chute, céphalées persistantes")
        page.select_option("#priority", "urgent")
        page.click("#send button[type=submit]")

        # 1. The link drops in the middle of the first file, then comes back.
        first = _until(page, lambda: _mid_upload("01.dcm"))
        cdp.send("Network.emulateNetworkConditions", {**SLOW_LINK, "offline": True})
        page.wait_for_timeout(3000)
        page.screenshot(path=str(ARTIFACTS / "send-1-link-down.png"), full_page=True)
        cdp.send("Network.emulateNetworkConditions", SLOW_LINK)

        # 2. The page is reloaded in the middle of the second file.
        second = _until(page, lambda: _mid_upload("02.dcm"))
        first.refresh_from_db()
        assert first.state != Transfer.State.RECEIVING  # file 1 finished on its first upload
        page.reload()
        page.wait_for_selector("#pending:not([hidden])")
        assert "3" in page.locator("#pending-list").inner_text()
        page.screenshot(path=str(ARTIFACTS / "send-2-after-reload.png"), full_page=True)
        page.wait_for_timeout(500)  # let the aborted request's last bytes land on the server
        second.refresh_from_db()
        kept = second.offset
        assert kept > 0
        patches.clear()
        page.set_input_files("#dicom-files", files)
        page.click("#send button[type=submit]")

        # 3. Every file gets its verdict, and the study arrives whole.
        page.wait_for_function("() => document.querySelectorAll('td.verdict').length === 3", timeout=60_000)
        page.wait_for_selector("#study-open", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "send-3-verdicts.png"), full_page=True)
        verdicts = page.locator("td.verdict").all_inner_texts()
        assert verdicts == ["Accepté"] * 3, verdicts

    # The resumed file went on from the server's offset, on the same upload: nothing restarted from 0.
    resumed = [offset for patch_url, offset in patches if str(second.pk) in patch_url]
    assert resumed and resumed[0] >= kept > 0, (resumed, kept)
    assert Transfer.objects.filter(filename="02.dcm").count() == 1
    assert Transfer.objects.count() == 3
    assert set(Transfer.objects.values_list("outcome", flat=True)) == {"stored"}
    study = Study.objects.get()
    assert Instance.objects.filter(study=study).count() == 3
    assert study.priority == "urgent" and study.received_at is not None


def test_it_sends_a_photo_of_a_film_as_a_secondary_capture(
    tus_bundle, page_settings, live_server, celery_worker, tech_a
):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        _context, page = _logged_in_page(browser, live_server.url, "tech_a")
        # As on a plain-http site address: no crypto.subtle outside a secure context.
        page.add_init_script("Object.defineProperty(window.crypto, 'subtle', {value: undefined})")
        page.goto(f"{live_server.url}/send/")
        page.check("input[name=kind][value=photo]")
        page.set_input_files("#photo-file", str(FILM))
        page.fill("#patient_name", "DIARRA^Awa")
        page.fill("#patient_id", "KY-0042")
        page.select_option("#patient_sex", "F")
        page.fill("#patient_birth_date", "2019-03-01")
        page.select_option("#modality", "CR")
        page.fill("#body_part", "CHEST")
        page.fill("#indication", "Toux fébrile")
        page.click("#send button[type=submit]")
        page.wait_for_selector("td.verdict", timeout=30_000)
        page.wait_for_selector("#study-open", timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "send-4-photo.png"), full_page=True)
        assert page.locator("td.verdict").inner_text() == "Accepté"
        assert "SHA-256 indisponible" in page.locator("#progress").inner_text()
        page.click("#study-open")
        page.wait_for_selector("h1")
        assert "DIARRA" in page.content()
    study = Study.objects.get()
    assert "DIARRA" in study.patient_name and study.patient_id == "KY-0042"
    assert study.patient_birth_date == "20190301" and study.received_at is not None
    instance = Instance.objects.get(study=study)
    assert instance.modality == "CR"
    sent = Transfer.objects.get()
    assert sent.kind == Transfer.Kind.PHOTO and sent.sha256 == ""  # sent, unhashed, still checked


def test_first_load_is_small_and_works_without_javascript(tus_bundle, live_server, tech_a):
    """HTML + CSS + JS of a first visit ≤ 60 kB as sent over the link: HTML gzipped by
    GZipMiddleware; static files as WhiteNoise serves them after collectstatic (gzip -9),
    which the test server does not do, so those are compressed here (the quickstart server
    does it too: test_quickstart_static.py)."""
    sizes: dict[str, int] = {}
    with chromium() as browser:
        _context, page = _logged_in_page(browser, live_server.url, "tech_a")

        def count(response) -> None:
            if response.request.resource_type not in ("document", "stylesheet", "script", "image", "font"):
                return
            sent = response.request.sizes()
            if response.headers.get("content-encoding") == "gzip":
                body = sent["responseBodySize"]
            else:
                body = len(gzip.compress(response.body(), 9))
            sizes[response.url] = body + sent["responseHeadersSize"]

        page.on("response", count)
        page.goto(f"{live_server.url}/send/", wait_until="load")
        page.wait_for_selector("#send:not([hidden])")
        html = [u for u in sizes if u.endswith("/send/")]
        assert html, sizes
        total = sum(sizes.values())
        print(f"first load of /send/: {total} bytes over {len(sizes)} responses {sizes}")
        assert any(u.endswith("tus.min.js") for u in sizes) and any(u.endswith("send.js") for u in sizes)
        assert total <= FIRST_LOAD_BUDGET, sizes

        plain = browser.new_context(locale="fr-FR", java_script_enabled=False).new_page()
        log_in(plain, live_server.url, "tech_a", "pw-tech_a")
        plain.wait_for_selector("h1")
        plain.goto(f"{live_server.url}/send/")
        assert plain.locator("#send").is_hidden()
        assert plain.locator("#fallback a").get_attribute("href") == "/studies/send/"


def test_only_senders_get_the_page_and_its_chunk_size_is_a_setting(client, tech_a, radiologist, settings):
    client.force_login(radiologist)
    assert client.get("/send/").status_code == 403
    client.force_login(tech_a)
    page = client.get("/send/?chunk=65536")  # no test hook in the page: the query is ignored
    assert page.status_code == 200 and 'data-chunk="1048576"' in page.content.decode()
    settings.UPLOADS_PAGE_CHUNK_BYTES = 65536
    assert 'data-chunk="65536"' in client.get("/send/").content.decode()
