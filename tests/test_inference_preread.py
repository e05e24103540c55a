"""The whole pre-read with models whose outputs the test controls (constant logits built with
the onnx helper API): urgency, critical flags, draft text, overlays, sessions."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from inference.demo import build_demo_model
from inference.model_spec import LabelSpec
from inference.preread import run_preread
from inference.registry import ModelRegistry
from inference.sessions import get_session
from inference.urgency import score_urgency
from tests.helpers import CXR_1024, CXR_MONO1_10BIT, build_constant_model


def registry_with(tmp_path, **kwargs) -> ModelRegistry:
    build_constant_model(tmp_path, **kwargs)
    registry = ModelRegistry.from_directory(tmp_path)
    assert len(registry) == 1 and not registry.refused
    return registry


def test_a_critical_finding_flags_and_tops_urgency(tmp_path):
    registry = registry_with(tmp_path, probabilities={"pneumothorax": 0.95, "pleural_effusion": 0.7})
    result = run_preread(CXR_1024, registry)
    assert result.status == "scored", result.reason
    assert result.outputs["pneumothorax"] == pytest.approx(0.95, abs=1e-5)
    assert result.critical_flags == ["pneumothorax"]
    assert result.urgency == pytest.approx(0.95, abs=1e-5)  # max(1.0 × 0.95, floor 0.9)
    assert result.positive_labels == ["pneumothorax", "pleural_effusion"]
    assert result.draft_fr.splitlines()[0] == (
        "Brouillon IA — modèle joliba-demo-cxr v1.0.0 — à vérifier "
        "(modèle de démonstration, pas pour usage clinique)"
    )
    assert result.draft_en.startswith("AI draft — model joliba-demo-cxr v1.0.0 — to be verified")
    assert "- Pneumothorax, probabilité 0,95. Aspect évocateur de pneumothorax." in result.draft_fr
    assert "- Pleural effusion, probability 0.70. Possible pleural effusion." in result.draft_en
    assert result.demo is True


def test_urgency_is_the_largest_weighted_probability_without_flags(tmp_path):
    registry = registry_with(tmp_path, probabilities={"pneumothorax": 0.3, "pleural_effusion": 0.6})
    result = run_preread(CXR_MONO1_10BIT, registry)
    assert result.critical_flags == []
    assert result.urgency == pytest.approx(0.6 * 0.6, abs=1e-5)  # effusion weight 0.6
    assert result.positive_labels == ["pleural_effusion"]


def test_a_normal_result_says_so_in_both_languages(tmp_path):
    result = run_preread(CXR_1024, registry_with(tmp_path, probabilities={}))
    assert result.urgency == pytest.approx(0.01, abs=1e-4)
    assert "Aucune anomalie retenue par le modèle" in result.draft_fr
    assert "No finding retained by the model" in result.draft_en


def test_overlays_come_back_in_original_pixels_and_as_a_small_png(tmp_path):
    # 1024² image letterboxed into 224²: scale 224/1024, no padding.
    registry = registry_with(
        tmp_path,
        probabilities={"nodule": 0.8},
        boxes=[(56.0, 112.0, 112.0, 168.0, 0.9, 4), (0.0, 0.0, 10.0, 10.0, 0.1, 0)],  # below min_score
        regression=(0.0, 121.5),
    )
    result = run_preread(CXR_1024, registry)
    assert result.boxes == [
        {
            "label": "nodule",
            "display_fr": "Nodule pulmonaire",
            "display_en": "Pulmonary nodule",
            "score": 0.9,
            "x0": 256.0,
            "y0": 512.0,
            "x1": 512.0,
            "y1": 768.0,
        }
    ]
    assert result.heatmap["width"] == 32 and result.heatmap["covers"] == [0, 0, 1024, 1024]
    png = Image.open(io.BytesIO(base64.b64decode(result.heatmap["png_base64"])))
    assert png.size == (32, 32) and png.mode == "L"
    assert np.asarray(png).std() > 5  # follows the image, not a flat square
    assert result.regression == {"age_months": {"value": pytest.approx(121.5), "unit": "mo"}}
    assert "Âge osseux estimé : 121,5 mois" in result.draft_fr
    payload = json.loads(json.dumps(result.to_dict()))
    assert set(payload["timings_ms"]) == {"decode", "preprocess", "inference", "total"}
    assert payload["model"]["sha256"] == registry.models[0].spec.sha256


def test_the_demo_model_is_deterministic_and_reacts_to_the_image(tmp_path):
    a = build_demo_model(tmp_path / "a")
    b = build_demo_model(tmp_path / "b")
    assert (a / "model.onnx").read_bytes() == (b / "model.onnx").read_bytes()
    registry = ModelRegistry.from_directory(tmp_path / "a")
    one = run_preread(CXR_1024, registry).outputs
    two = run_preread(CXR_MONO1_10BIT, registry).outputs
    assert one != two


def test_sessions_are_created_once_per_process(tmp_path):
    registry = registry_with(tmp_path, probabilities={})
    package = registry.models[0]
    first = get_session(package.model_path, package.spec.sha256)
    assert get_session(package.model_path, package.spec.sha256) is first
    assert first.get_session_options().intra_op_num_threads == 2


def test_score_urgency_is_bounded_and_explainable():
    labels = (LabelSpec("a", urgency_weight=1.0, critical_threshold=0.9), LabelSpec("b", urgency_weight=0.2))
    assert score_urgency({"a": 0.1, "b": 1.0}, labels).score == pytest.approx(0.2)
    flagged = score_urgency({"a": 0.91, "b": 0.0}, labels, critical_floor=0.95)
    assert flagged.score == pytest.approx(0.95) and flagged.critical_flags == ["a"]
