"""The pre-read service in the test process, on real Orthanc and PostgreSQL: what it stores,
refusals, failures, history, and the pages that show it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.urls import reverse
from django.utils import translation

from preread.models import ImageResult, PreRead
from preread.services import prepare_study_for_reading
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Study
from tests.helpers import build_constant_model, send_chest, send_ct
from tests.paths import REPO

# Not transactional: nothing is enqueued, the test runs the service.
pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]


@pytest.fixture
def models_dir(settings, tmp_path):
    settings.JOLIBA_MODELS_DIR = tmp_path / "models"
    settings.JOLIBA_MODELS_DIR.mkdir()
    return settings.JOLIBA_MODELS_DIR


def test_it_scores_a_chest_radiograph_stores_the_result_and_queues_it(models_dir, tech_a, tmp_path):
    package = build_constant_model(models_dir, probabilities={"pneumothorax": 0.95, "pleural_effusion": 0.7})
    study = send_chest(tech_a, tmp_path)
    assert study.status == "received"

    prepare_study_for_reading(study.pk)

    study.refresh_from_db()
    assert study.status == "queued" and study.entered_at("queued") is not None
    run = PreRead.objects.get(study=study)
    assert run.urgency == pytest.approx(0.95, abs=1e-4) and run.critical_flags
    assert run.status == "scored" and run.is_current and run.attempts == 1
    assert (run.model_name, run.model_version, run.demo) == ("joliba-demo-cxr", "1.0.0", True)
    assert run.model_sha256 == (package / "manifest.json").read_text().split('"sha256": "')[1][:64]
    assert run.critical_flags == ["pneumothorax"]
    assert run.draft_label.startswith("Brouillon IA — modèle joliba-demo-cxr v1.0.0 — à vérifier")
    assert "Aspect évocateur de pneumothorax." in run.draft_body
    assert run.images_total == run.images_scored == 1
    image = ImageResult.objects.get(preread=run)
    assert image.outputs["pleural_effusion"] == pytest.approx(0.7, abs=1e-4)
    assert image.boxes and image.columns == 1024 and image.rows == 1024
    assert bytes(image.heatmap_png)[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(image.timings_ms) >= {"decode", "preprocess", "inference", "total"}
    assert image.model_sha256 == run.model_sha256
    assert set(image.details) >= {"warnings", "quality", "regression", "pixel_spacing_mm", "heatmap"}


def test_the_same_models_never_score_a_study_twice(models_dir, tech_a, tmp_path):
    from preread.services import preread_study

    build_constant_model(models_dir, probabilities={"nodule": 0.8})
    study = send_chest(tech_a, tmp_path)
    first = preread_study(study_id=study.pk)
    again = preread_study(study_id=study.pk)
    assert first.pk == again.pk
    assert PreRead.objects.filter(study=study).count() == 1 and ImageResult.objects.count() == 1


def test_no_model_enabled_sends_the_study_straight_to_the_queue(models_dir, tech_a, tmp_path):
    study = send_chest(tech_a, tmp_path)
    prepare_study_for_reading(study.pk)
    study.refresh_from_db()
    assert study.status == "queued" and not PreRead.objects.filter(study=study, status="scored").exists()
    assert not PreRead.objects.exists()


def test_a_ct_is_refused_with_a_reason_without_fetching_its_images(models_dir, tech_a, tmp_path):
    build_constant_model(models_dir, probabilities={"pneumothorax": 0.95})
    study = send_ct(tech_a, tmp_path)
    prepare_study_for_reading(study.pk)
    study.refresh_from_db()
    run = PreRead.objects.get(study=study)
    assert run.status == "refused" and run.reason_code == "no_model_for_study"
    assert "CT" in run.reason and run.urgency is None and run.images_total == 0
    assert study.status == "queued" and not PreRead.objects.filter(study=study, status="scored").exists()


def test_an_image_outside_the_models_scope_is_refused_not_scored(models_dir, tech_a, tmp_path):
    build_constant_model(models_dir, probabilities={"pneumothorax": 0.95})
    study = send_chest(tech_a, tmp_path, BodyPartExamined="HAND")
    prepare_study_for_reading(study.pk)
    image = ImageResult.objects.get(preread__study=study)
    assert image.status == "refused" and image.reason_code == "wrong_body_part"
    assert image.urgency is None and image.outputs == {}
    with translation.override("fr"):
        assert image.reason.startswith("Région HAND hors du champ du modèle")
    with translation.override("en"):
        assert image.reason.startswith("Body part HAND is outside the model's scope")
    run = PreRead.objects.get(study=study)
    assert run.status == "refused" and run.reason_code == "wrong_body_part"
    assert Study.objects.get(pk=study.pk).status == "queued"


def test_a_broken_image_is_refused_with_a_reason(models_dir, tech_a, tmp_path):
    """Pixels that say nothing (a blank exposure) get a refusal, not a score."""
    import numpy as np
    import pydicom

    from tests.helpers import new_chest, send_files

    path = new_chest(tmp_path, "blank")
    ds = pydicom.dcmread(path)
    ds.PixelData = np.zeros((ds.Rows, ds.Columns), dtype=ds.pixel_array.dtype).tobytes()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(path)
    build_constant_model(models_dir, probabilities={"pneumothorax": 0.95})
    study = send_files(tech_a, [path])
    prepare_study_for_reading(study.pk)
    image = ImageResult.objects.get(preread__study=study)
    assert image.status == "refused" and image.reason_code == "blank_image", image.reason
    assert not PreRead.objects.filter(study=study, status="scored").exists()


def test_a_failing_model_leaves_the_study_readable_and_says_why(
    models_dir, tech_a, radiologist, tmp_path, client
):
    from inference.demo import DEMO_LABELS

    # The manifest names an output the network does not have: the model fails on every image.
    build_constant_model(
        models_dir,
        probabilities={"pneumothorax": 0.95},
        manifest_overrides={
            "outputs": [
                {
                    "name": "missing",
                    "kind": "probabilities",
                    "activation": "sigmoid",
                    "labels": list(DEMO_LABELS),
                }
            ]
        },
    )
    study = send_chest(tech_a, tmp_path)
    prepare_study_for_reading(study.pk)
    run = PreRead.objects.get(study=study)
    assert run.status == "failed" and run.reason_code == "model_failed"
    study.refresh_from_db()
    assert study.status == "queued" and not PreRead.objects.filter(study=study, status="scored").exists()
    client.force_login(radiologist)
    page = client.get(reverse("worklist")).content.decode()
    assert "pré-lecture échouée : Le modèle n&#x27;a pas pu analyser l&#x27;image" in page


def test_a_new_model_version_adds_a_run_and_keeps_the_history(models_dir, tech_a, tmp_path):
    from preread.services import preread_study

    build_constant_model(models_dir, probabilities={"pleural_effusion": 0.9})
    study = send_chest(tech_a, tmp_path)
    prepare_study_for_reading(study.pk)
    first = PreRead.objects.get(study=study)
    assert first.model_version == "1.0.0" and not first.critical_flags

    build_constant_model(models_dir, version="2.0.0", probabilities={"pneumothorax": 0.95})
    second = preread_study(study_id=study.pk)

    assert second.pk != first.pk and second.model_version == "2.0.0"
    runs = list(PreRead.objects.filter(study=study).order_by("pk"))
    assert [(r.model_version, r.is_current) for r in runs] == [("1.0.0", False), ("2.0.0", True)]
    assert runs[0].status == "scored" and runs[0].images.count() == 1  # history intact
    study.refresh_from_db()
    current = PreRead.objects.get(study=study, is_current=True)
    assert current.critical_flags and current.urgency == pytest.approx(0.95, abs=1e-4)
    assert study.status == "queued"  # a re-run does not move the study


def test_the_read_page_offers_the_labelled_draft_and_overlays(
    models_dir, tech_a, radiologist, tmp_path, client
):
    from viewer.services import render_instance

    build_constant_model(models_dir, probabilities={"pneumothorax": 0.95})
    study = send_chest(tech_a, tmp_path)
    prepare_study_for_reading(study.pk)
    render_instance(study.instances.get().pk)  # the ingest task's work: the image's size for the boxes
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    client.force_login(radiologist)

    page = client.get(reverse("read", args=[study.pk])).content.decode()
    assert "Brouillon IA — modèle joliba-demo-cxr v1.0.0 — à vérifier" in page
    assert "modèle de démonstration, pas pour usage clinique" in page
    assert "demo model, not for clinical use" in page
    assert 'id="ai-draft-label"' in page
    textarea = page.split('name="findings"', 1)[1].split("</textarea>", 1)[0]
    assert "Aspect évocateur de pneumothorax." in textarea and "Brouillon IA" not in textarea
    assert 'type="checkbox" id="ai-overlays"' in page and 'class="ai-overlay ai-box"' in page
    instance = study.instances.get()
    heatmap_url = reverse("ai_heatmap", args=[study.pk, instance.pk])
    assert heatmap_url in page
    png = client.get(heatmap_url)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"

    # Once the radiologist has written their own findings, the AI label goes.
    client.post(
        reverse("report_edit", args=[study.pk]),
        {"findings": "Pneumothorax droit confirmé.", "conclusion": "Pneumothorax.", "save": "1"},
    )
    page = client.get(reverse("read", args=[study.pk])).content.decode()
    assert 'id="ai-draft-label"' not in page and "Pneumothorax droit confirmé." in page


def test_the_site_sees_no_unverified_ai_output(models_dir, tech_a, tech_b, tmp_path, client):
    build_constant_model(models_dir, probabilities={"pneumothorax": 0.95})
    study = send_chest(tech_a, tmp_path)
    prepare_study_for_reading(study.pk)
    instance = study.instances.get()
    client.force_login(tech_a)
    page = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "pneumothorax" not in page and "Brouillon IA" not in page
    assert client.get(reverse("ai_heatmap", args=[study.pk, instance.pk])).status_code == 404


def test_the_study_page_shows_ai_badges_to_radiologists(models_dir, tech_a, radiologist, tmp_path, client):
    build_constant_model(models_dir, probabilities={"pneumothorax": 0.95})
    study = send_chest(tech_a, tmp_path)
    prepare_study_for_reading(study.pk)
    client.force_login(radiologist)
    page = client.get(reverse("study_detail", args=[study.pk])).content.decode()
    assert "⚠ Pneumothorax" in page and "IA 0,95" in page  # the label's display name, not its code
    assert "modèle de démonstration, pas pour usage clinique" in page


def test_the_web_process_never_imports_onnxruntime():
    code = (
        "import django, sys; django.setup();"
        "import joliba.urls, worklist.views, preread.admin, preread.services, studies.services;"
        "from django.test import Client; Client().get('/worklist/');"
        "print('onnxruntime' in sys.modules, 'inference.preread' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        env={
            "PYTHONPATH": str(REPO / "platform"),
            "DJANGO_SETTINGS_MODULE": "joliba.settings",
            "PATH": "/usr/bin:/bin",
        },
    )
    assert out.stdout.split() == ["False", "False"], out.stderr
