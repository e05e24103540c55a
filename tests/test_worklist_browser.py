"""The worklist in a real browser: it fits a 360 px phone, it refreshes itself (304 while nothing
changes) and announces a new STAT case on screen and with a beep. Screenshots kept as artefacts."""

import pytest
from django.utils import timezone

from studies.models import Study
from tests.helpers import chromium, log_in
from tests.paths import ARTIFACTS
from tests.worklist_data import Spec, make_cases

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_fits_a_360_px_phone_and_a_desktop(live_server, radiologist, site_a):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    now = timezone.now()
    make_cases(
        [
            Spec("stat", 45, urgency=0.97, critical=True, site=site_a),
            Spec("urgent", 20, urgency=0.4, site=site_a, modality="CT"),
            Spec("routine", 3000, ai_status="refused", urgency=None, site=site_a),
        ],
        now=now,
    )
    Study.objects.update(
        description="Thorax face et profil, incidence postéro-antérieure debout",
        indication="Toux fébrile depuis dix jours, dyspnée d'effort, antécédent de tuberculose traitée",
        patient_name="COULIBALY^AWA^MARIAM^^",
    )
    with chromium() as browser:
        phone = browser.new_context(locale="fr-FR", viewport={"width": 360, "height": 740}).new_page()
        log_in(phone, live_server.url, "dr_a", "pw-dr_a")
        phone.wait_for_selector("tr.case")
        phone.screenshot(path=str(ARTIFACTS / "worklist-phone-360.png"), full_page=True)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the worklist is {width} px wide on a 360 px phone"
        assert phone.locator("tr.case").count() == 3
        assert not phone.locator("table.wl thead").is_visible()  # cards, not a squeezed table
        assert phone.locator("tr.case button:has-text('Lire')").first.bounding_box()["width"] > 250

        desk = browser.new_context(locale="fr-FR", viewport={"width": 1366, "height": 800}).new_page()
        log_in(desk, live_server.url, "dr_a", "pw-dr_a")
        desk.wait_for_selector("tr.case")
        desk.screenshot(path=str(ARTIFACTS / "worklist-desktop-1366.png"), full_page=True)
        assert desk.locator("table.wl thead").is_visible()
        assert desk.evaluate("document.documentElement.scrollWidth") <= 1366


def test_it_refreshes_itself_and_announces_a_new_stat_case(live_server, radiologist, site_a, settings):
    settings.WORKLIST_REFRESH_SECONDS = 1
    make_cases([Spec("routine", 30, site=site_a)], now=timezone.now())
    with chromium() as browser:
        page = browser.new_context(locale="fr-FR").new_page()
        answers: list[int] = []
        page.on("response", lambda r: "/worklist/rows/" in r.url and answers.append(r.status))
        log_in(page, live_server.url, "dr_a", "pw-dr_a")
        page.wait_for_selector("tr.case")
        page.mouse.click(5, 5)  # a first touch: browsers allow sound only after one
        page.wait_for_function("() => true", timeout=100)
        # Nothing changes: the refreshes answer 304 and the page stays as it is.
        deadline = 20_000
        page.wait_for_timeout(2500)
        assert 304 in answers and page.locator("#wl-notice").is_hidden()
        assert page.locator("tr.case").count() == 1

        (stat,) = make_cases([Spec("stat", 0, site=site_a)], now=timezone.now())
        page.wait_for_selector("#wl-notice:not([hidden])", timeout=deadline)
        assert f"KAYES-{stat.pk}" in page.locator("#wl-notice").inner_text()
        assert page.locator("tr.case").count() == 2 and 200 in answers
        assert page.title().startswith("(!)")
        if page.evaluate("!!(window.AudioContext || window.webkitAudioContext)"):
            assert page.locator("#wl-notice").get_attribute("data-beeps") == "1"
        page.screenshot(path=str(ARTIFACTS / "worklist-new-stat-notice.png"))
        # Announced once: the next refreshes do not beep again for the same case.
        page.wait_for_timeout(2500)
        assert page.locator("#wl-notice").get_attribute("data-beeps") in ("1", None)


def test_the_countdowns_tick_every_minute(live_server, radiologist, settings):
    settings.WORKLIST_REFRESH_SECONDS = 3600  # only the countdowns move in this test
    late, fresh = make_cases([Spec("stat", 45), Spec("urgent", 119.5)], now=timezone.now())
    with chromium() as browser:
        page = browser.new_context(locale="fr-FR").new_page()
        page.clock.install()
        log_in(page, live_server.url, "dr_a", "pw-dr_a")
        page.wait_for_selector("tr.case")
        late_sla = page.locator(f'tr[data-study="{late.pk}"] .wl-sla')
        fresh_sla = page.locator(f'tr[data-study="{fresh.pk}"] .wl-sla')
        assert late_sla.inner_text() == "en retard de 15 min"
        assert fresh_sla.inner_text() == "délai restant 0 min"
        assert "late" not in fresh_sla.get_attribute("class")
        page.clock.run_for("02:00")
        assert late_sla.inner_text() == "en retard de 17 min"
        assert fresh_sla.inner_text() == "en retard de 1 min" and "late" in fresh_sla.get_attribute("class")
        wait = page.locator(f'tr[data-study="{late.pk}"] .wl-wt').inner_text()
        assert wait == "attente 47 min"
