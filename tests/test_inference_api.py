"""The library's public shape: module names, what importing it costs, what it no longer has."""

from __future__ import annotations

import importlib.util

from tests.inference_helpers import REPO


def test_there_is_no_int8_quantisation_path():
    # Dynamic int8 was slower than fp32 on the DenseNet and off by up to 9.2: removed, not hidden.
    assert importlib.util.find_spec("inference.quantize") is None
    assert "quantiz" not in (REPO / "inference" / "README.md").read_text(encoding="utf-8").split(
        "## No int8 path"
    )[0]


def test_the_model_package_description_is_a_model_spec_still_read_from_manifest_json():
    from inference import model_spec

    assert importlib.util.find_spec("inference.manifest") is None
    assert model_spec.SPEC_FILE == "manifest.json" and model_spec.MODEL_FILE == "model.onnx"
    assert {"ModelSpec", "ModelSpecError", "write_model_spec"} <= set(vars(model_spec))
