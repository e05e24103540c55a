"""The draft text: one template per language, labels by the package's display names, no model
class names and no English in the French text. On the demo model and on the 18-label
torchxrayvision specification (constant outputs, no torch needed), with real chest films."""

from __future__ import annotations

import json
import re

import pydicom
import pytest

from inference.demo import DEMO_LABELS, build_demo_model
from inference.draft import ENGLISH, FRENCH, build_draft
from inference.export_torchxrayvision import LABELS as XRV_LABELS
from inference.export_torchxrayvision import xrv_spec
from inference.import_keras import pneumonia_manifest
from inference.model_spec import ModelSpec, ModelSpecError
from inference.preread import run_preread
from inference.registry import ModelRegistry
from tests.helpers import CXR_1024, build_constant_model, build_spec_model
from tests.paths import required

# Words that would betray English (or a raw DICOM term) inside the French draft.
ENGLISH_WORDS = re.compile(
    r"\b(the|of|and|chest|probability|finding|model|region|regions|effusion|opacity|lung|enlarged|"
    r"appearance|months|suggestive)\b",
    re.IGNORECASE,
)


@pytest.fixture
def cxr():
    return required(CXR_1024)


def body(draft: str) -> str:
    return draft.split("\n", 1)[1]  # the header names the model (an identifier), the rest is prose


def test_the_demo_draft_names_labels_as_a_radiologist_reads_them(tmp_path, cxr):
    build_constant_model(tmp_path, {"pneumothorax": 0.95, "pleural_effusion": 0.7}, regression=(0.0, 121.5))
    result = run_preread(cxr, ModelRegistry.from_directory(tmp_path))
    assert result.status == "scored", result.reason
    assert result.draft_fr.splitlines() == [
        "Brouillon IA — modèle joliba-demo-cxr v1.0.0 — à vérifier "
        "(modèle de démonstration, pas pour usage clinique)",
        "- Pneumothorax, probabilité 0,95. Aspect évocateur de pneumothorax.",
        "- Épanchement pleural, probabilité 0,70. Épanchement pleural possible.",
        "- Âge osseux estimé : 121,5 mois",
        "- Zones signalées sur l'image : 1 (calque à afficher).",
    ]
    assert result.draft_en.splitlines() == [
        "AI draft — model joliba-demo-cxr v1.0.0 — to be verified (demo model, not for clinical use)",
        "- Pneumothorax, probability 0.95. Appearance suggestive of pneumothorax.",
        "- Pleural effusion, probability 0.70. Possible pleural effusion.",
        "- Estimated bone age: 121.5 months",
        "- Regions marked on the image: 1 (toggle the overlay).",
    ]
    assert "pleural_effusion" not in result.draft_fr + result.draft_en
    assert not ENGLISH_WORDS.search(body(result.draft_fr)), result.draft_fr


def test_a_normal_demo_result_lists_what_was_looked_for_by_display_name(tmp_path, cxr):
    build_constant_model(tmp_path, {})
    result = run_preread(cxr, ModelRegistry.from_directory(tmp_path))
    assert result.draft_fr.splitlines()[1] == (
        "- Aucune anomalie retenue par le modèle parmi : Pneumothorax, Épanchement pleural, "
        "Condensation alvéolaire, Cardiomégalie, Nodule pulmonaire."
    )
    assert result.draft_en.splitlines()[1] == (
        "- No finding retained by the model among: Pneumothorax, Pleural effusion, "
        "Consolidation, Cardiomegaly, Pulmonary nodule."
    )
    for label in DEMO_LABELS:
        if label["name"] != label["display_fr"]:
            assert label["name"] not in result.draft_fr


def test_a_multilabel_draft_has_no_class_name_and_no_english_in_french(tmp_path, cxr):
    film = pydicom.dcmread(cxr)
    film.PatientAge = "062Y"  # the file says "62", not a DICOM age string: unknown to the scope check
    spec = xrv_spec("xrv-constant", version="1", labels=list(XRV_LABELS), calibrated=False, weights=None)
    positive = {
        "Effusion": 2.0,
        "Lung Opacity": 1.5,
        "Enlarged Cardiomediastinum": 1.0,
        "Pleural_Thickening": 0.5,
    }
    build_spec_model(tmp_path, spec, positive)
    result = run_preread(film, ModelRegistry.from_directory(tmp_path))
    assert result.status == "scored", result.reason
    assert result.positive_labels == [
        "Effusion",
        "Lung Opacity",
        "Enlarged Cardiomediastinum",
        "Pleural_Thickening",
    ]
    assert body(result.draft_fr).splitlines() == [
        "- Épanchement pleural, probabilité 0,88.",
        "- Opacité pulmonaire, probabilité 0,82.",
        "- Élargissement du médiastin, probabilité 0,73.",
        "- Épaississement pleural, probabilité 0,62.",
    ]
    assert body(result.draft_en).splitlines()[0] == "- Pleural effusion, probability 0.88."
    for name in positive:
        assert name not in result.draft_fr and name not in result.draft_en
    assert not ENGLISH_WORDS.search(body(result.draft_fr)), result.draft_fr
    # nothing positive: every display name, none of the class names
    build_spec_model(tmp_path / "none", dict(spec, name="xrv-none"), {})
    quiet = run_preread(film, ModelRegistry.from_directory(tmp_path / "none"))
    assert all(fr in quiet.draft_fr for fr, _ in XRV_LABELS.values())
    assert "Lung Opacity" not in quiet.draft_fr and "Pleural_Thickening" not in quiet.draft_fr
    assert not ENGLISH_WORDS.search(body(quiet.draft_fr)), quiet.draft_fr


def test_the_pneumonia_package_names_its_two_classes(tmp_path):
    data = dict(pneumonia_manifest(1e-6), sha256="0" * 64, format="joliba-model/2")
    spec = ModelSpec.from_dict(data)
    fr, en = build_draft(spec, {"NORMAL": 0.1, "PNEUMONIA": 0.9}, ["PNEUMONIA"])
    assert fr.splitlines()[1] == "- Pneumonie, probabilité 0,90. Aspect compatible avec une pneumonie."
    assert en.splitlines()[1] == "- Pneumonia, probability 0.90. Appearance compatible with pneumonia."
    assert "PNEUMONIA" not in fr.split("\n", 1)[1] and "NORMAL" not in fr


def test_both_languages_come_from_templates_of_the_same_shape():
    assert FRENCH.lang == "fr" and ENGLISH.lang == "en"
    fields = ("header", "demo", "finding", "no_finding", "measurement", "regions")
    placeholders = re.compile(r"{(\w+)}")
    for name in fields:
        assert set(placeholders.findall(getattr(FRENCH, name))) == set(
            placeholders.findall(getattr(ENGLISH, name))
        ), name


def test_a_package_without_display_names_is_refused_with_a_clear_reason(tmp_path):
    package = build_demo_model(tmp_path)
    path = package / "manifest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["outputs"][0]["labels"][1]["display_fr"]
    path.write_text(json.dumps(data), encoding="utf-8")
    registry = ModelRegistry.from_directory(tmp_path)
    (refused,) = registry.refused
    assert refused.reason.code == "invalid_manifest"
    assert "pleural_effusion" in refused.reason.params["error"]
    old = dict(data, format="joliba-model/1")
    with pytest.raises(ModelSpecError, match="importer again"):
        ModelSpec.from_dict(old)
