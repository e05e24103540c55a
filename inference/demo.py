"""A small deterministic demo model package, built with the onnx helper API (no torch, no weights
to download). The quickstart ships it and tests build it; it is flagged "demo": pages show
"modèle de démonstration, pas pour usage clinique / demo model, not for clinical use".

Its outputs depend only on the image's mean brightness (or are constants when `probabilities`
is given), which is what tests need: outputs they control, through the real pipeline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inference.model_spec import write_model_spec

DEMO_LABELS: tuple[dict[str, Any], ...] = (
    {
        "name": "pneumothorax",
        "display_fr": "Pneumothorax",
        "display_en": "Pneumothorax",
        "threshold": 0.5,
        "critical_threshold": 0.8,
        "urgency_weight": 1.0,
        "sentence_fr": "Aspect évocateur de pneumothorax.",
        "sentence_en": "Appearance suggestive of pneumothorax.",
    },
    {
        "name": "pleural_effusion",
        "display_fr": "Épanchement pleural",
        "display_en": "Pleural effusion",
        "threshold": 0.5,
        "urgency_weight": 0.6,
        "sentence_fr": "Épanchement pleural possible.",
        "sentence_en": "Possible pleural effusion.",
    },
    {
        "name": "consolidation",
        "display_fr": "Condensation alvéolaire",
        "display_en": "Consolidation",
        "threshold": 0.5,
        "urgency_weight": 0.5,
        "sentence_fr": "Opacité alvéolaire (consolidation) possible.",
        "sentence_en": "Possible airspace opacity (consolidation).",
    },
    {
        "name": "cardiomegaly",
        "display_fr": "Cardiomégalie",
        "display_en": "Cardiomegaly",
        "threshold": 0.5,
        "urgency_weight": 0.3,
        "sentence_fr": "Silhouette cardiaque élargie.",
        "sentence_en": "Enlarged cardiac silhouette.",
    },
    {
        "name": "nodule",
        "display_fr": "Nodule pulmonaire",
        "display_en": "Pulmonary nodule",
        "threshold": 0.5,
        "urgency_weight": 0.4,
        "sentence_fr": "Nodule pulmonaire possible.",
        "sentence_en": "Possible pulmonary nodule.",
    },
)
# Fixed weights so the demo's answer moves with the image (brightness), reproducibly.
_DEMO_W = (1.5, -2.0, 2.5, 1.0, -1.0)
_DEMO_B = (-3.0, -1.0, -2.5, -1.5, -2.0)


def build_demo_model(
    directory: str | Path,
    *,
    name: str = "joliba-demo-cxr",
    version: str = "1.0.0",
    probabilities: Mapping[str, float] | None = None,
    boxes: list[tuple[float, float, float, float, float, int]] | None = None,
    regression: tuple[float, float] | None = None,
    size: int = 224,
    manifest_overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Write `<directory>/<name>/{model.onnx,manifest.json}` and return the package directory.

    probabilities: constant output per demo label (others 0.01); None for brightness-driven.
    boxes: constant rows (x0, y0, x1, y1, score, class) in model-input pixels; default one box.
    regression: (a, b) to add an output "age_months" = a × mean(input) + b.
    manifest_overrides: top-level manifest keys replaced (e.g. "scope").
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    n = len(DEMO_LABELS)
    if probabilities is None:
        weights = np.asarray([_DEMO_W], dtype=np.float32)
        bias = np.asarray(_DEMO_B, dtype=np.float32)
    else:
        unknown = set(probabilities) - {lab["name"] for lab in DEMO_LABELS}
        if unknown:
            raise ValueError(f"unknown demo labels: {sorted(unknown)}")
        weights = np.zeros((1, n), dtype=np.float32)
        ps = [min(max(probabilities.get(lab["name"], 0.01), 1e-6), 1 - 1e-6) for lab in DEMO_LABELS]
        bias = np.asarray([math.log(p / (1 - p)) for p in ps], dtype=np.float32)
    box_rows = np.asarray(
        boxes if boxes is not None else [(0.3 * size, 0.2 * size, 0.45 * size, 0.4 * size, 0.9, 0)],
        dtype=np.float32,
    ).reshape(1, -1, 6)
    pool = max(1, size // 16)

    nodes = [
        helper.make_node("ReduceMean", ["image"], ["mean4"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean4", "shape_1x1"], ["mean"]),
        helper.make_node("MatMul", ["mean", "W"], ["mw"]),
        helper.make_node("Add", ["mw", "B"], ["logits"]),
        helper.make_node(
            "AveragePool", ["image"], ["heatmap"], kernel_shape=[pool, pool], strides=[pool, pool]
        ),
        helper.make_node("Constant", [], ["boxes"], value=numpy_helper.from_array(box_rows)),
    ]
    initializers = [
        numpy_helper.from_array(np.asarray([1, 1], dtype=np.int64), "shape_1x1"),
        numpy_helper.from_array(weights, "W"),
        numpy_helper.from_array(bias, "B"),
    ]
    side = size // pool
    outputs = [
        helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, n]),
        helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, [1, 1, side, side]),
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, list(box_rows.shape)),
    ]
    if regression is not None:
        a, b = regression
        initializers += [
            numpy_helper.from_array(np.asarray([[a]], np.float32), "ra"),
            numpy_helper.from_array(np.asarray([b], np.float32), "rb"),
        ]
        nodes += [
            helper.make_node("MatMul", ["mean", "ra"], ["ram"]),
            helper.make_node("Add", ["ram", "rb"], ["age_months"]),
        ]
        outputs.append(helper.make_tensor_value_info("age_months", TensorProto.FLOAT, [1, 1]))
    graph = helper.make_graph(
        nodes,
        "joliba_demo",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, size, size])],
        outputs,
        initializer=initializers,
    )
    model = helper.make_model(graph, producer_name="joliba-demo", opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime we support (≥ 1.17)
    onnx.checker.check_model(model)

    package = Path(directory) / name
    package.mkdir(parents=True, exist_ok=True)
    (package / "model.onnx").write_bytes(model.SerializeToString(deterministic=True))
    manifest: dict[str, Any] = {
        "name": name,
        "version": version,
        "demo": True,
        "intended_use": {
            "fr": "Démonstration du pipeline de pré-lecture (radiographie thoracique de face). "
            "Pas pour usage clinique.",
            "en": "Demonstrates the pre-read pipeline (frontal chest radiograph). Not for clinical use.",
        },
        "evidence": {
            "fr": "Aucune : poids synthétiques, les sorties ne dépendent que de la luminosité "
            "moyenne de l'image.",
            "en": "None: synthetic weights; outputs depend only on the image's mean brightness.",
        },
        "scope": {"modalities": ["CR", "DX"], "body_parts": ["CHEST"], "views": ["PA", "AP"]},
        "input": {
            "name": "image",
            "size": [size, size],
            "channels": 1,
            "layout": "NCHW",
            "resize": "letterbox",
            "interpolation": "bilinear",
            "mean": [0.5],
            "std": [0.5],
        },
        "outputs": [
            {"name": "logits", "kind": "probabilities", "activation": "sigmoid", "labels": list(DEMO_LABELS)},
            {
                "name": "boxes",
                "kind": "boxes",
                "min_score": 0.3,
                "labels": [{k: lab[k] for k in ("name", "display_fr", "display_en")} for lab in DEMO_LABELS],
            },
            {"name": "heatmap", "kind": "heatmap", "size": [32, 32]},
        ],
    }
    if regression is not None:
        manifest["outputs"].append(
            {
                "name": "age_months",
                "kind": "regression",
                "unit": "mo",
                "unit_fr": "mois",
                "unit_en": "months",
                "label_fr": "Âge osseux estimé",
                "label_en": "Estimated bone age",
            }
        )
    manifest.update(manifest_overrides or {})
    write_model_spec(package, manifest)
    return package
