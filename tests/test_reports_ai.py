"""The AI draft never reaches the site unmarked: signing AI text needs an explicit acceptance, the
signed version records which model wrote which part, and the site's page and PDF say so."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from pypdf import PdfReader

from inference.demo import DEMO_LABELS
from preread.services import prepare_study_for_reading
from reports.models import Report, ReportVersion
from reports.services import ai_draft_of, save_report, section_provenance
from studies import lifecycle
from studies.lifecycle import Transition
from tests.helpers import api_client, build_constant_model, send_chest

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]

SOURCE = "joliba-demo-cxr 1.0.0"


@pytest.fixture
def ai_study(settings, tmp_path, tech_a, radiologist):
    settings.JOLIBA_MODELS_DIR = tmp_path / "models"
    settings.JOLIBA_MODELS_DIR.mkdir()
    build_constant_model(
        settings.JOLIBA_MODELS_DIR, probabilities={"pneumothorax": 0.95, "pleural_effusion": 0.8}
    )
    study = send_chest(tech_a, tmp_path)
    prepare_study_for_reading(study.pk)
    return lifecycle.transition(study, Transition.CLAIM, actor=radiologist)


def _pdf_text(data: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)


def test_the_ai_text_cannot_be_signed_without_acceptance(ai_study, radiologist, client):
    study = ai_study
    client.force_login(radiologist)
    page = client.get(reverse("read", args=[study.pk])).content.decode()
    findings = page.split('name="findings"', 1)[1].split("</textarea>", 1)[0]
    assert "Aspect évocateur de pneumothorax." in findings and 'id="ai-draft-label"' in page
    assert "calque à afficher" not in findings  # the viewer's hint is not report text

    # Unedited: the confirmation page asks for the acceptance, and without it nothing is signed.
    answer = client.post(
        reverse("report_edit", args=[study.pk]), {"conclusion": "Pneumothorax.", "sign": "1"}
    )
    confirm = client.get(answer.url).content.decode()
    assert 'name="accept_ai"' in confirm and SOURCE in confirm
    refused = client.post(answer.url, {"confirm": "on"}).content.decode()
    assert "cochez" in refused and not Report.objects.get(study=study).is_signed
    # Nor through the API.
    api = api_client(radiologist).put(reverse("api_report", args=[study.pk]), {"sign": True}, format="json")
    assert api.status_code == 400 and "IA" in api.json()[0]

    signed = client.post(answer.url, {"confirm": "on", "accept_ai": "on"})
    assert signed.status_code == 302
    version = ReportVersion.objects.get(report__study=study)
    assert version.provenance["findings"] == f"ai:{SOURCE}"
    assert version.provenance["conclusion"] == "radiologist"
    assert version.ai_accepted_by == radiologist

    # The site never sees the AI's words as the radiologist's: labelled on the page and the PDF.
    client.force_login(study.uploaded_by)
    page = client.get(reverse("report", args=[study.pk])).content.decode()
    assert (
        "Texte proposé par l&#x27;IA (joliba-demo-cxr 1.0.0), non modifié — IA acceptée par Dr Dr_A" in page
    )
    text = _pdf_text(client.get(reverse("report_pdf", args=[study.pk])).content)
    assert "IA acceptée par Dr Dr_A" in text and "joliba-demo-cxr 1.0.0" in text
    # The model's class names stay in the model: the PDF has its French display names only.
    assert "Pneumothorax" in text and "Épanchement pleural" in text
    for label in DEMO_LABELS:
        if label["display_en"] != label["display_fr"]:  # "Pleural effusion", "pleural_effusion"
            assert label["display_en"] not in text and label["name"] not in text


def test_partly_edited_and_rewritten_text(ai_study, radiologist):
    study = ai_study
    ai = ai_draft_of(study)
    assert ai is not None and ai.source == SOURCE
    draft = ai.text("fr")
    first_line = draft.splitlines()[0]
    edited = f"{first_line}\nPas d'épanchement pleural visible en réalité."
    assert section_provenance(draft, ai) == f"ai:{SOURCE}"
    assert section_provenance("  " + draft.upper() + "\n", ai) == f"ai:{SOURCE}"
    assert section_provenance(edited, ai) == f"ai-edited:{SOURCE}"
    assert section_provenance("Pneumothorax droit complet, à drainer.", ai) == "radiologist"
    assert section_provenance("", ai) == "radiologist"

    with pytest.raises(ValidationError):
        save_report(study=study, author=radiologist, findings=edited, conclusion="PNO droit.", sign=True)
    assert not ReportVersion.objects.filter(report__study=study).exists()  # the refusal signed nothing
    save_report(
        study=study, author=radiologist, findings=edited, conclusion="PNO.", sign=True, accept_ai=True
    )
    version = ReportVersion.objects.get(report__study=study)
    assert version.provenance["findings"] == f"ai-edited:{SOURCE}"
    assert "modifié — IA acceptée par Dr" in version.ai_note("findings")
    assert version.ai_note("conclusion") == ""


def test_the_radiologists_own_words_need_no_acceptance(ai_study, radiologist):
    save_report(
        study=ai_study,
        author=radiologist,
        findings="Décollement pleural apical droit de 2 cm.",
        conclusion="Pneumothorax droit de faible abondance.",
        sign=True,
    )
    version = ReportVersion.objects.get(report__study=ai_study)
    assert set(version.provenance.values()) == {"radiologist"} and version.ai_accepted_by is None
