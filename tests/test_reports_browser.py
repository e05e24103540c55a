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
            "() => document.getElementById('report-saved').textContent.startsWith('Brouillon enregistré à')"
        )
        page.screenshot(path=str(ARTIFACTS / "reports-editor-phone.png"), full_page=True)
    report = Report.objects.get(study=study)
    assert report.findings == "Cul-de-sac pleural gauche émoussé." and not report.is_signed


def test_the_site_reads_the_latest_version_with_its_history_on_a_phone(
    live_server, settings, tech_a, radiologist, tmp_path
):
    from preread.services import prepare_study_for_reading
    from reports.services import amend_report, save_report
    from tests.helpers import build_constant_model

    settings.JOLIBA_MODELS_DIR = tmp_path / "models"
    settings.JOLIBA_MODELS_DIR.mkdir()
    build_constant_model(settings.JOLIBA_MODELS_DIR, probabilities={"pleural_effusion": 0.9})
    study = send_chest(tech_a, tmp_path, PatientName="COULIBALY^Awa")
    prepare_study_for_reading(study.pk)
    study = lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    save_report(study=study, author=radiologist, conclusion="Pleurésie gauche.", sign=True, accept_ai=True)
    amend_report(
        study=study,
        author=radiologist,
        kind="addendum",
        reason="Avis pneumologue",
        addendum="Ponction conseillée.",
    )
    with chromium() as browser:
        page = browser.new_page(locale="fr-FR", viewport={"width": 360, "height": 800})
        log_in(page, live_server.url, "tech_a", "pw-tech_a")
        page.wait_for_selector("h1")
        page.goto(f"{live_server.url}/studies/{study.pk}/report/")
        text = page.inner_text("main")
        page.screenshot(path=str(ARTIFACTS / "reports-site-report-phone.png"), full_page=True)
        assert "COULIBALY Awa" in text and "Ponction conseillée." in text
        assert "IA acceptée par Dr Dr_A" in text and "Versions précédentes" in text
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, width  # no sideways scrolling on a phone
