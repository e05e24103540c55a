"""Model specifications: what a model is for, how to feed it and how to read its outputs.

A model package is a directory holding `model.onnx` and its specification. The specification
file keeps the name `manifest.json` on disk (`SPEC_FILE`), so packages written before the rename
still have the path the registry looks for; in code it is a `ModelSpec`, to keep it apart from
the site agent's study manifest and the upload protocol's manifests.

The format is documented in inference/README.md; `ModelSpec.from_dict` validates it and reports
the first problem as a `ModelSpecError` (the registry turns that into a refusal of the package).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEC_FILE = "manifest.json"
MODEL_FILE = "model.onnx"
# /2: every label carries display names (fr, en), used by drafts and overlays instead of the raw
# class name. A /1 package is refused with a message saying to run its importer again.
FORMAT = "joliba-model/2"
OUTPUT_KINDS = ("probabilities", "boxes", "heatmap", "regression")
ACTIVATIONS = ("sigmoid", "softmax", "none")


class ModelSpecError(ValueError):
    pass


@dataclass(frozen=True)
class LabelSpec:
    name: str  # the model's class name, as trained (never shown to a person)
    display_fr: str = ""  # what a radiologist reads: « Épanchement pleural »
    display_en: str = ""
    threshold: float = 0.5
    critical_threshold: float | None = None
    urgency_weight: float = 0.0
    sentence_fr: str = ""  # optional finding sentence for the draft
    sentence_en: str = ""


@dataclass(frozen=True)
class OutputSpec:
    name: str  # the ONNX output name
    kind: str  # one of OUTPUT_KINDS
    activation: str = "none"  # probabilities only
    labels: tuple[LabelSpec, ...] = ()
    min_score: float = 0.3  # boxes below this score are dropped
    size: tuple[int, int] = (32, 32)  # heatmap (width, height) as returned to the viewer
    unit: str = ""  # regression: language-neutral unit code (UCUM, e.g. "mo", "mm")
    scale: float = 1.0
    offset: float = 0.0
    label_fr: str = ""  # regression: what is measured
    label_en: str = ""
    unit_fr: str = ""  # regression: the unit as written in each language
    unit_en: str = ""


@dataclass(frozen=True)
class InputSpec:
    name: str
    width: int
    height: int
    channels: int = 1
    layout: str = "NCHW"  # or "NHWC" (Keras)
    resize: str = "letterbox"  # or "stretch" when the model was trained on squashed images
    interpolation: str = "bilinear"  # or "nearest"
    mean: tuple[float, ...] = (0.5,)  # applied to the display image scaled to 0..1
    std: tuple[float, ...] = (0.5,)


@dataclass(frozen=True)
class Population:
    min_age_years: float | None = None
    max_age_years: float | None = None
    outside: str = "refuse"  # or "warn"
    description_fr: str = ""
    description_en: str = ""

    @property
    def restricted(self) -> bool:
        return self.min_age_years is not None or self.max_age_years is not None

    @property
    def age_range(self) -> str:
        """Language-neutral bounds for messages: "0–17", "≥ 18", "≤ 17" ("" if unrestricted)."""
        low, high = self.min_age_years, self.max_age_years
        if low is not None and high is not None:
            return f"{low:g}–{high:g}"
        if low is not None:
            return f"≥ {low:g}"
        if high is not None:
            return f"≤ {high:g}"
        return ""


@dataclass(frozen=True)
class Scope:
    modalities: tuple[str, ...] = ("CR", "DX")
    body_parts: tuple[str, ...] = ()  # empty: any body part
    views: tuple[str, ...] = ()  # empty: any view
    population: Population = field(default_factory=Population)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    sha256: str
    input: InputSpec
    outputs: tuple[OutputSpec, ...]
    scope: Scope
    intended_use_fr: str
    intended_use_en: str
    evidence_fr: str
    evidence_en: str
    demo: bool = False
    critical_urgency_floor: float = 0.9
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def labels(self) -> tuple[LabelSpec, ...]:
        return tuple(lab for out in self.outputs if out.kind == "probabilities" for lab in out.labels)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        try:
            return _parse(data)
        except ModelSpecError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelSpecError(f"invalid manifest: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelSpecError(f"unreadable manifest: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelSpecError("manifest is not a JSON object")
        return cls.from_dict(data)


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_model_spec(directory: str | Path, data: dict[str, Any]) -> Path:
    """Validate `data` (sha256 filled in from model.onnx) and write manifest.json beside it."""
    directory = Path(directory)
    data = dict(data, format=FORMAT, sha256=sha256_of(directory / "model.onnx"))
    ModelSpec.from_dict(data)  # refuse to write what the registry would refuse to load
    path = directory / "manifest.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def _bilingual(data: dict[str, Any], key: str) -> tuple[str, str]:
    value = data.get(key)
    if not isinstance(value, dict) or not value.get("fr") or not value.get("en"):
        raise ModelSpecError(f"'{key}' must give non-empty 'fr' and 'en' texts")
    return str(value["fr"]), str(value["en"])


def _floats(value: Any, n: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in (value if isinstance(value, list) else [value]))
    if len(values) == 1:
        values = values * n
    if len(values) != n:
        raise ModelSpecError(f"expected 1 or {n} values, got {len(values)}")
    return values


def _label(raw: dict[str, Any]) -> LabelSpec:
    label = LabelSpec(
        name=str(raw["name"]),
        display_fr=str(raw.get("display_fr", "")).strip(),
        display_en=str(raw.get("display_en", "")).strip(),
        threshold=float(raw.get("threshold", 0.5)),
        critical_threshold=(
            None if raw.get("critical_threshold") is None else float(raw["critical_threshold"])
        ),
        urgency_weight=float(raw.get("urgency_weight", 0.0)),
        sentence_fr=str(raw.get("sentence_fr", "")),
        sentence_en=str(raw.get("sentence_en", "")),
    )
    if not label.display_fr or not label.display_en:
        raise ModelSpecError(f"label {label.name!r} needs 'display_fr' and 'display_en'")
    if not 0.0 <= label.urgency_weight <= 1.0:
        raise ModelSpecError(f"urgency_weight of {label.name!r} must be within 0..1")
    return label


def _parse(data: dict[str, Any]) -> ModelSpec:
    if data.get("format") == "joliba-model/1":
        raise ModelSpecError(
            "format joliba-model/1 has no display names for its labels: run the model's importer "
            f"again to write {FORMAT}"
        )
    if data.get("format") != FORMAT:
        raise ModelSpecError(f"'format' must be '{FORMAT}'")
    for key in ("name", "version", "sha256"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ModelSpecError(f"'{key}' is required")
    if len(data["sha256"]) != 64:
        raise ModelSpecError("'sha256' must be 64 hex digits")

    raw_in = data["input"]
    channels = int(raw_in.get("channels", 1))
    width, height = (int(v) for v in raw_in["size"])
    inp = InputSpec(
        name=str(raw_in["name"]),
        width=width,
        height=height,
        channels=channels,
        layout=str(raw_in.get("layout", "NCHW")),
        resize=str(raw_in.get("resize", "letterbox")),
        interpolation=str(raw_in.get("interpolation", "bilinear")),
        mean=_floats(raw_in.get("mean", 0.5), channels),
        std=_floats(raw_in.get("std", 0.5), channels),
    )
    if inp.layout not in ("NCHW", "NHWC") or inp.resize not in ("letterbox", "stretch"):
        raise ModelSpecError("input layout must be NCHW|NHWC and resize letterbox|stretch")
    if inp.interpolation not in ("bilinear", "nearest") or channels not in (1, 3):
        raise ModelSpecError("input interpolation must be bilinear|nearest, channels 1|3")
    if not (8 <= width <= 2048 and 8 <= height <= 2048) or min(inp.std) <= 0:
        raise ModelSpecError("input size must be 8..2048 and std > 0")

    outputs = []
    for raw in data["outputs"]:
        kind = raw["kind"]
        if kind not in OUTPUT_KINDS:
            raise ModelSpecError(f"unknown output kind {kind!r}")
        labels = tuple(_label(lab) for lab in raw.get("labels", []))
        activation = str(raw.get("activation", "none"))
        if activation not in ACTIVATIONS:
            raise ModelSpecError(f"unknown activation {activation!r}")
        if kind in ("probabilities", "boxes") and not labels:
            raise ModelSpecError(f"output {raw['name']!r} of kind {kind} needs labels")
        if kind == "regression" and (not raw.get("label_fr") or not raw.get("label_en")):
            raise ModelSpecError(f"regression output {raw['name']!r} needs 'label_fr' and 'label_en'")
        unit = str(raw.get("unit", ""))
        size = raw.get("size", [32, 32])
        outputs.append(
            OutputSpec(
                name=str(raw["name"]),
                kind=kind,
                activation=activation,
                labels=labels,
                min_score=float(raw.get("min_score", 0.3)),
                size=(int(size[0]), int(size[1])),
                unit=unit,
                scale=float(raw.get("scale", 1.0)),
                offset=float(raw.get("offset", 0.0)),
                label_fr=str(raw.get("label_fr", "")),
                label_en=str(raw.get("label_en", "")),
                unit_fr=str(raw.get("unit_fr", unit)),
                unit_en=str(raw.get("unit_en", unit)),
            )
        )
    if not outputs:
        raise ModelSpecError("'outputs' must not be empty")

    raw_scope = data.get("scope", {})
    raw_pop = raw_scope.get("population", {})
    population = Population(
        min_age_years=None if raw_pop.get("min_age_years") is None else float(raw_pop["min_age_years"]),
        max_age_years=None if raw_pop.get("max_age_years") is None else float(raw_pop["max_age_years"]),
        outside=str(raw_pop.get("outside", "refuse")),
        description_fr=str(raw_pop.get("description_fr", "")),
        description_en=str(raw_pop.get("description_en", "")),
    )
    if population.outside not in ("refuse", "warn"):
        raise ModelSpecError("population 'outside' must be refuse|warn")
    scope = Scope(
        modalities=tuple(str(m).upper() for m in raw_scope.get("modalities", ["CR", "DX"])),
        body_parts=tuple(str(b).upper() for b in raw_scope.get("body_parts", [])),
        views=tuple(str(v).upper() for v in raw_scope.get("views", [])),
        population=population,
    )
    intended_fr, intended_en = _bilingual(data, "intended_use")
    evidence_fr, evidence_en = _bilingual(data, "evidence")
    known = {
        "format",
        "name",
        "version",
        "sha256",
        "input",
        "outputs",
        "scope",
        "intended_use",
        "evidence",
        "demo",
        "critical_urgency_floor",
    }
    return ModelSpec(
        name=data["name"],
        version=data["version"],
        sha256=data["sha256"].lower(),
        input=inp,
        outputs=tuple(outputs),
        scope=scope,
        intended_use_fr=intended_fr,
        intended_use_en=intended_en,
        evidence_fr=evidence_fr,
        evidence_en=evidence_en,
        demo=bool(data.get("demo", False)),
        critical_urgency_floor=float(data.get("critical_urgency_floor", 0.9)),
        extra={k: v for k, v in data.items() if k not in known},
    )
