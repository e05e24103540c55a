"""The whole pre-read of one radiograph: read, check scope, decode, preprocess, infer, urgency,
draft. `run_preread` returns a value for every input; only programming errors raise."""

from __future__ import annotations

import base64
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

from inference.draft import build_draft
from inference.model_spec import ModelSpec, OutputSpec
from inference.preprocess import DEFAULT_MAX_PIXELS, Geometry, PreparedImage, prepare, read_dataset
from inference.quality import QualityFinding, assess_image
from inference.reasons import Reason, Refused
from inference.registry import ModelPackage, ModelRegistry
from inference.scope import check_scope
from inference.sessions import get_session
from inference.urgency import score_urgency


@dataclass
class PreReadResult:
    status: str  # "scored" | "refused" | "failed"
    reason: Reason | None = None
    model_name: str | None = None
    model_version: str | None = None
    model_sha256: str | None = None
    demo: bool = False
    outputs: dict[str, float] = field(default_factory=dict)  # label -> probability
    boxes: list[dict[str, Any]] = field(default_factory=list)  # original image pixels
    heatmap: dict[str, Any] | None = None  # {"width","height","png_base64","covers"}
    regression: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> value, unit
    urgency: float | None = None
    critical_flags: list[str] = field(default_factory=list)
    positive_labels: list[str] = field(default_factory=list)
    draft_fr: str = ""
    draft_en: str = ""
    quality: list[QualityFinding] = field(default_factory=list)
    warnings: list[Reason] = field(default_factory=list)
    pixel_spacing_mm: tuple[float, float] | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason.to_dict() if self.reason else None,
            "model": {"name": self.model_name, "version": self.model_version, "sha256": self.model_sha256},
            "demo": self.demo,
            "outputs": dict(self.outputs),
            "boxes": list(self.boxes),
            "heatmap": self.heatmap,
            "regression": dict(self.regression),
            "urgency": self.urgency,
            "critical_flags": list(self.critical_flags),
            "positive_labels": list(self.positive_labels),
            "draft_fr": self.draft_fr,
            "draft_en": self.draft_en,
            "quality": [f.to_dict() for f in self.quality],
            "warnings": [w.to_dict() for w in self.warnings],
            "pixel_spacing_mm": list(self.pixel_spacing_mm) if self.pixel_spacing_mm else None,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }

    def heatmap_png(self) -> bytes | None:
        return base64.b64decode(self.heatmap["png_base64"]) if self.heatmap else None


def select_model(
    ds: Dataset, registry: ModelRegistry, model_name: str | None = None
) -> tuple[ModelPackage, list[Reason]]:
    """The first enabled model whose scope accepts this image (or the named one), with warnings.
    Raises `Refused` with the first candidate's reason when none accepts it."""
    candidates = list(registry) if model_name is None else [m for m in registry if m.spec.name == model_name]
    if not candidates:
        raise Refused(Reason("no_model"))
    first: Refused | None = None
    for package in candidates:
        try:
            return package, check_scope(ds, package.spec, allow_unknown_age=package.allow_unknown_age)
        except Refused as exc:
            first = first or exc
    assert first is not None
    raise first


def run_preread(
    src: str | Path | bytes | Dataset,
    registry: ModelRegistry,
    *,
    model_name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> PreReadResult:
    """Pre-read one DICOM image (path, bytes or Dataset) with the registry's matching model.

    `max_pixels` bounds the decoded size (checked before decoding); sessions use
    `registry.threads` onnxruntime threads."""
    t0 = time.perf_counter()
    result = PreReadResult(status="refused")
    try:
        ds = read_dataset(src)
        package, result.warnings = select_model(ds, registry, model_name)
        spec = package.spec
        result.model_name, result.model_version = spec.name, spec.version
        result.model_sha256, result.demo = spec.sha256, spec.demo
        prepared = prepare(ds, spec.input, max_pixels=max_pixels)
        result.timings_ms.update(decode=prepared.decode_ms, preprocess=prepared.preprocess_ms)
        result.pixel_spacing_mm = prepared.pixel_spacing_mm
        result.quality = assess_image(ds, prepared.stored, prepared.display)
        errors = [f for f in result.quality if f.severity == "error"]
        if errors:
            raise Refused(errors[0].reason)
    except Refused as exc:
        result.reason = exc.reason
        result.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        return result

    t1 = time.perf_counter()
    try:
        session = get_session(package.model_path, spec.sha256, threads=registry.threads)
        names = [o.name for o in session.get_outputs()]
        raw = dict(zip(names, session.run(None, {spec.input.name: prepared.tensor}), strict=True))
        result.timings_ms["inference"] = (time.perf_counter() - t1) * 1000
        _read_outputs(result, spec, raw, prepared)
    except Refused as exc:
        result.status, result.reason = "failed", exc.reason
        result.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        return result
    except Exception as exc:  # a broken model must not take the worker down with it
        result.status = "failed"
        result.reason = Reason("model_failed", {"error": type(exc).__name__})
        result.timings_ms["total"] = (time.perf_counter() - t0) * 1000
        return result

    urgency = score_urgency(result.outputs, spec.labels, spec.critical_urgency_floor)
    result.urgency = urgency.score
    result.critical_flags = urgency.critical_flags
    result.positive_labels = urgency.positive_labels
    result.draft_fr, result.draft_en = build_draft(
        spec,
        result.outputs,
        urgency.positive_labels,
        regression={k: v["value"] for k, v in result.regression.items()},
        box_count=len(result.boxes),
    )
    result.status = "scored"
    result.timings_ms["total"] = (time.perf_counter() - t0) * 1000
    return result


def _read_outputs(
    result: PreReadResult,
    spec: ModelSpec,
    raw: dict[str, np.ndarray],
    prepared: PreparedImage,
) -> None:
    for out in spec.outputs:
        if out.name not in raw:
            raise ValueError(f"model has no output {out.name!r}")
        value = np.asarray(raw[out.name], dtype=np.float64)
        if out.kind == "probabilities":
            result.outputs.update(_probabilities(out, value))
        elif out.kind == "boxes":
            result.boxes.extend(_boxes(out, value, prepared.geometry))
        elif out.kind == "heatmap":
            result.heatmap = _heatmap(out, value, prepared.geometry, spec)
        else:
            result.regression[out.name] = {
                "value": float(value.ravel()[0]) * out.scale + out.offset,
                "unit": out.unit,
            }


def _probabilities(out: OutputSpec, value: np.ndarray) -> dict[str, float]:
    logits = value.ravel()
    if logits.size != len(out.labels):
        raise ValueError(f"{out.name}: {logits.size} values for {len(out.labels)} labels")
    if out.activation == "sigmoid":
        probs = 1.0 / (1.0 + np.exp(-logits))
    elif out.activation == "softmax":
        e = np.exp(logits - logits.max())
        probs = e / e.sum()
    else:
        probs = np.clip(logits, 0.0, 1.0)
    return {lab.name: float(p) for lab, p in zip(out.labels, probs, strict=True)}


def _boxes(out: OutputSpec, value: np.ndarray, geometry: Geometry) -> list[dict[str, Any]]:
    """Rows of (x0, y0, x1, y1, score, class) in model-input pixels → original image pixels."""
    boxes = []
    for x0, y0, x1, y1, score, cls in value.reshape(-1, 6):
        if score < out.min_score or not 0 <= int(cls) < len(out.labels):
            continue
        ox0, oy0 = geometry.to_original(x0, y0)
        ox1, oy1 = geometry.to_original(x1, y1)
        label = out.labels[int(cls)]
        boxes.append(
            {
                "label": label.name,
                "display_fr": label.display_fr,  # what the overlay shows, from the package
                "display_en": label.display_en,
                "score": round(float(score), 4),
                "x0": round(float(ox0), 1),
                "y0": round(float(oy0), 1),
                "x1": round(float(ox1), 1),
                "y1": round(float(oy1), 1),
            }
        )
    return boxes


def _heatmap(out: OutputSpec, value: np.ndarray, geometry: Geometry, spec: ModelSpec) -> dict[str, Any]:
    """A small greyscale PNG covering the whole original image (letterbox padding cropped)."""
    grid = value.reshape(value.shape[-2], value.shape[-1]).astype(np.float32)
    lo, hi = float(grid.min()), float(grid.max())
    if lo < 0.0 or hi > 1.0:
        grid = (grid - lo) / (hi - lo) if hi > lo else np.zeros_like(grid)
    size = (spec.input.width, spec.input.height)
    full = np.asarray(Image.fromarray(grid, mode="F").resize(size, Image.Resampling.BILINEAR))
    x0, y0 = int(geometry.ox), int(geometry.oy)
    x1 = x0 + max(1, round(geometry.columns * geometry.sx))
    y1 = y0 + max(1, round(geometry.rows * geometry.sy))
    crop = Image.fromarray(full[y0:y1, x0:x1], mode="F").resize(out.size, Image.Resampling.BILINEAR)
    pixels = np.clip(np.asarray(crop) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG", optimize=True)
    return {
        "width": out.size[0],
        "height": out.size[1],
        "png_base64": base64.b64encode(buffer.getvalue()).decode("ascii"),
        "covers": [0, 0, geometry.columns, geometry.rows],
    }
