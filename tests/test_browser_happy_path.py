"""The happy path in a real browser: a technician sends, a radiologist reads and signs,
the site sees the report. Screenshots are kept as test artefacts."""

import pytest

from studies.models import Study
from tests.helpers import chromium, log_in
from tests.paths import ARTIFACTS, CT_HEAD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_runs_the_happy_path_in_chromium(live_server, celery_worker, tech_a, tech_b, radiologist):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = live_server.url
    with chromium() as browser:
        tech = browser.new_page(locale="fr-FR")
        log_in(tech, url, "tech_a", "pw-tech_a")
        tech.click("text=Formulaire simple")
        tech.set_input_files("input[type=file]", [str(CT_HEAD / "01.dcm"), str(CT_HEAD / "02.dcm")])
        tech.fill("#id_indication", "Chute, céphalées persistantes")
        tech.select_option("#id_priority", "stat")
        tech.click("main button[type=submit]")
        try:
            tech.wait_for_selector("text=Résultat de l'envoi")
        finally:
            tech.screenshot(path=str(ARTIFACTS / "1-technician-upload-result.png"), full_page=True)
        assert tech.locator("tr.verdict").count() == 2
        assert "2 fichier(s) accepté(s)" in tech.content()
        study = Study.objects.get()

        dr = browser.new_context(locale="fr-FR").new_page()
        log_in(dr, url, "dr_a", "pw-dr_a")
        dr.wait_for_selector("h1:has-text('Liste de travail')")
        assert dr.locator("tr.case").count() == 1
        assert "Extrême urgence" in dr.locator("tr.case").inner_text()
        dr.click("tr.case button:has-text('Lire')")
        dr.wait_for_selector("h1:has-text('Lecture')")
        # The images come through the platform and really render: the viewer draws them in full
        # fidelity on its canvas (the plain previews are what the page shows without JavaScript).
        dr.wait_for_function("() => document.querySelector('.vw')?.dataset.source === 'full'", timeout=60_000)
        assert all(
            "/studies/" in src
            for src in dr.eval_on_selector_all(".grid img", "els => els.map(e => e.getAttribute('src'))")
        )
        dr.fill("#id_findings", "Pas de lésion hémorragique intracrânienne.")
        dr.fill("#id_conclusion", "Scanner cérébral sans anomalie.")
        dr.screenshot(path=str(ARTIFACTS / "2-radiologist-reading.png"), full_page=True)
        dr.click("button[name=sign]")
        dr.check("#id_confirm")  # the confirmation step before a signature
        dr.click("button[name=sign_confirmed]")
        dr.wait_for_selector("text=Compte rendu signé")
        study.refresh_from_db()
        assert study.status == "reported"

        tech.goto(f"{url}/studies/{study.pk}/")
        tech.click("text=Voir le compte rendu signé")
        assert "Scanner cérébral sans anomalie." in tech.locator(".report").inner_text()
        study.refresh_from_db()
        assert study.status == "delivered"  # the site opened it
        tech.screenshot(path=str(ARTIFACTS / "3-technician-report.png"), full_page=True)
        pdf = tech.request.get(f"{url}/studies/{study.pk}/report.pdf")
        assert pdf.ok and pdf.body().startswith(b"%PDF")

        other = browser.new_context().new_page()
        log_in(other, url, "tech_b", "pw-tech_b")
        other.wait_for_selector("h1")
        assert "Chute" not in other.content()
        assert other.goto(f"{url}/studies/{study.pk}/").status == 404
