"""The report editor in a real browser: the autosave script saves the draft on blur and says when."""

import pytest

from reports.models import Report
from studies import lifecycle
from studies.lifecycle import Transition
from tests.helpers import chromium, log_in, send_chest
from tests.paths import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.orthanc, pytest.mark.django_db(transaction=True)]


def test_the_draft_is_autosaved_on_blur(live_server, tech_a, radiologist, tmp_path):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    study = send_chest(tech_a, tmp_path, BodyPartExamined="CHEST")
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    with chromium() as browser:
        page = browser.new_page(locale="fr-FR", viewport={"width": 360, "height": 800})
        log_in(page, live_server.url, "dr_a", "pw-dr_a")
        page.wait_for_selector("h1")
        page.goto(f"{live_server.url}/worklist/{study.pk}/read/")
        page.fill("#id_findings", "Cul-de-sac pleural gauche émoussé.")
        assert "non enregistr" in page.inner_text("#report-saved")
        page.click("#id_conclusion")  # the findings lose focus: saved
        page.wait_for_function(
            "document.getElementById('report-saved').textContent.startsWith('Brouillon enregistré à')"
        )
        page.screenshot(path=str(ARTIFACTS / "reports-editor-phone.png"), full_page=True)
    report = Report.objects.get(study=study)
    assert report.findings == "Cul-de-sac pleural gauche émoussé." and not report.is_signed
