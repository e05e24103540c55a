"""The torchxrayvision exporter, with random weights (no download). Skips without torch."""

from __future__ import annotations

import pytest

from inference.preread import run_preread
from inference.registry import ModelRegistry
from tests.helpers import CXR_1024

pytest.importorskip("torch", reason="optional extra: pip install torch torchxrayvision")
pytest.importorskip("torchxrayvision", reason="optional extra: pip install torchxrayvision")


def test_it_exports_18_labels_that_the_preread_scores(tmp_path):
    from inference.export_torchxrayvision import export

    package = export(tmp_path, random_weights=True)
    registry = ModelRegistry.from_directory(tmp_path)
    assert [m.directory for m in registry] == [package]
    manifest = registry.models[0].spec
    assert len(manifest.labels) == 18 and manifest.demo
    result = run_preread(CXR_1024, registry)
    assert result.status == "scored", result.reason
    assert len(result.outputs) == 18
    assert all(0.0 <= p <= 1.0 for p in result.outputs.values())
