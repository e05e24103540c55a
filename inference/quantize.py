"""Optional int8 dynamic quantisation of a model package, with its accuracy delta measured."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.model_spec import ModelSpec, write_model_spec


@dataclass(frozen=True)
class QuantisationReport:
    max_abs_delta: float  # largest difference of any output value over the sample inputs
    mean_abs_delta: float
    samples: int


def quantize_package(
    source: str | Path, destination: str | Path, sample_inputs: list[np.ndarray]
) -> QuantisationReport:
    """Write an int8 copy of a package (weights quantised, activations float) to `destination`
    and record in its manifest how far its outputs moved from fp32 on `sample_inputs`."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source, destination = Path(source), Path(destination)
    manifest = ModelSpec.load(source / "manifest.json")
    destination.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(source / "model.onnx", destination / "model.onnx", weight_type=QuantType.QInt8)
    fp32 = ort.InferenceSession(str(source / "model.onnx"), providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(str(destination / "model.onnx"), providers=["CPUExecutionProvider"])
    deltas = []
    for tensor in sample_inputs:
        feed = {manifest.input.name: tensor}
        for a, b in zip(fp32.run(None, feed), int8.run(None, feed), strict=True):
            deltas.append(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).ravel())
    flat = np.concatenate(deltas) if deltas else np.zeros(1)
    report = QuantisationReport(float(flat.max()), float(flat.mean()), len(sample_inputs))
    data = json.loads((source / "manifest.json").read_text(encoding="utf-8"))
    data["version"] = f"{manifest.version}+int8"
    data["quantisation"] = {
        "kind": "onnxruntime quantize_dynamic int8",
        "source_sha256": manifest.sha256,
        "max_abs_delta": report.max_abs_delta,
        "mean_abs_delta": report.mean_abs_delta,
        "samples": report.samples,
    }
    write_model_spec(destination, data)
    for extra in source.iterdir():
        if extra.name not in ("model.onnx", "manifest.json") and extra.is_file():
            shutil.copy2(extra, destination / extra.name)
    return report
