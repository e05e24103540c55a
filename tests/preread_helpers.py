"""Shared by the pre-read tests: send studies through the API, build models whose outputs the
test controls (including a slow one, to kill a worker while it is inferring)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from django.urls import reverse
from pydicom.uid import generate_uid

from studies.models import Study
from tests.conftest import api_client, dicom_copy
from tests.inference_helpers import CXR_1024, build_constant_model
from tests.paths import CT_HEAD


def send_files(user, paths: list[Path], priority: str = "routine", indication: str = "Toux, fièvre") -> Study:
    files = [open(p, "rb") for p in paths]
    try:
        answer = api_client(user).post(
            reverse("api_upload"), {"files": files, "indication": indication, "priority": priority},
            format="multipart",
        )
    finally:
        for f in files:
            f.close()
    assert answer.status_code == 201, answer.content
    verdicts = answer.json()["verdicts"]
    assert all(v["outcome"] == "stored" for v in verdicts), verdicts
    return Study.objects.get(pk=verdicts[0]["study"])


def new_chest(tmp_path: Path, name: str = "cxr", **tags) -> Path:
    """A copy of the real chest radiograph as a new study (new UIDs)."""
    return dicom_copy(CXR_1024, tmp_path / f"{name}.dcm", StudyInstanceUID=generate_uid(),
                      SeriesInstanceUID=generate_uid(), SOPInstanceUID=generate_uid(), **tags)


def send_chest(user, tmp_path: Path, name: str = "cxr", priority: str = "routine", **tags) -> Study:
    return send_files(user, [new_chest(tmp_path, name, **tags)], priority=priority)


def send_ct(user, tmp_path: Path, n: int = 2, priority: str = "urgent") -> Study:
    study_uid, series_uid = generate_uid(), generate_uid()
    paths = [
        dicom_copy(CT_HEAD / f"{i:02d}.dcm", tmp_path / f"ct{i}.dcm", StudyInstanceUID=study_uid,
                   SeriesInstanceUID=series_uid, SOPInstanceUID=generate_uid())
        for i in range(1, n + 1)
    ]
    return send_files(user, paths, priority=priority, indication="Traumatisme crânien")


def clear_models(directory: Path) -> None:
    for child in Path(directory).iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def build_slow_model(directory: Path, *, matmuls: int = 400, side: int = 1024, **kwargs) -> Path:
    """A constant model that also multiplies 1024² matrices `matmuls` times (≈10 ms each on two
    cores) and discards the result: the same outputs, slowly enough to be killed mid-inference."""
    import onnx
    from onnx import helper, numpy_helper

    from inference.model_spec import write_model_spec

    package = build_constant_model(directory, size=side, **kwargs)
    path = package / "model.onnx"
    model = onnx.load(path)
    graph = model.graph
    for node in graph.node:
        if node.output[0] == "logits":
            node.output[0] = "logits_fast"
    graph.initializer.extend([
        numpy_helper.from_array(np.asarray([side, side], np.int64), "slow_shape"),
        numpy_helper.from_array(np.asarray(1.0 / side, np.float32), "slow_scale"),
        numpy_helper.from_array(np.asarray(0.0, np.float32), "slow_zero"),
    ])
    nodes = [helper.make_node("Reshape", ["image", "slow_shape"], ["x0"])]
    previous = "x0"
    for k in range(matmuls):  # tanh keeps values bounded, so 0 × mean stays 0
        nodes += [helper.make_node("MatMul", [previous, "x0"], [f"m{k}"]),
                  helper.make_node("Mul", [f"m{k}", "slow_scale"], [f"s{k}"]),
                  helper.make_node("Tanh", [f"s{k}"], [f"t{k}"])]
        previous = f"t{k}"
    nodes += [helper.make_node("ReduceMean", [previous], ["slow_mean"], keepdims=0),
              helper.make_node("Mul", ["slow_mean", "slow_zero"], ["slow_nil"]),
              helper.make_node("Add", ["logits_fast", "slow_nil"], ["logits"])]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    import json

    manifest = json.loads((package / "manifest.json").read_text())
    write_model_spec(package, manifest)  # sha256 recomputed from the new model file
    return package
