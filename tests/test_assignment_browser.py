"""The reading page's assignment actions in a real chromium, on a 360 px phone: hand the case
over to a colleague, who finds it in their worklist; ask and see a second opinion."""

from __future__ import annotations

import pytest

from assignment.models import SecondOpinion
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Status, Study
from tests.helpers import chromium, log_in
from tests.paths import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 740}
FRENCH = "fr-FR"  # selectors below do not depend on the language; the screenshots do


def test_hand_over_and_second_opinion_from_the_reading_page_on_a_phone(
    live_server, site_a, radiologist, radiologist_2
):
    study = Study.objects.create(
        orthanc_id="b1", study_instance_uid="1.5.1", site=site_a, status=Status.QUEUED, modality="CR",
        description="Thorax face", patient_name="KEITA^Aminata", patient_id="K-7",
    )  # fmt: skip
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        dr = browser.new_page(viewport=PHONE, locale=FRENCH)
        log_in(dr, live_server.url, "dr_a", "pw-dr_a")
        dr.goto(f"{live_server.url}/worklist/{study.pk}/read/")
        actions = dr.locator("section.reading-actions")
        box = actions.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1
        dr.select_option("#opinion-of", str(radiologist_2.pk))
        dr.fill("#opinion-question", "Épanchement pleural droit ?")
        dr.click('form[action$="/opinion/"] button')
        assert SecondOpinion.objects.filter(study=study, asked_of=radiologist_2).exists()
        dr.screenshot(path=str(ARTIFACTS / "assignment-reading-actions-phone.png"), full_page=True)

        colleague = browser.new_page(viewport=PHONE, locale=FRENCH)
        log_in(colleague, live_server.url, "dr_b", "pw-dr_b")
        colleague.goto(f"{live_server.url}/worklist/opinions/")
        colleague.click("ul.opinions a")
        colleague.fill("#answer", "Oui, de faible abondance.")
        colleague.click("#answer ~ button")
        dr.reload()
        assert "Oui, de faible abondance." in dr.content()

        dr.select_option("#hand-over-to", str(radiologist_2.pk))
        dr.click('form[action$="/hand-over/"] button')
        dr.wait_for_url(f"{live_server.url}/worklist/")
        study.refresh_from_db()
        assert (study.status, study.assigned_to) == (Status.IN_READING, radiologist_2)
        colleague.goto(f"{live_server.url}/worklist/")
        colleague.click(f'tr[data-study="{study.pk}"] a[href$="/{study.pk}/read/"]')
        colleague.wait_for_url(f"{live_server.url}/worklist/{study.pk}/read/")
        assert "Oui, de faible abondance." in colleague.content()  # the exchange follows the case
