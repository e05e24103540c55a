"""Technical quality checks that need no learned weights, for the upload page and the pre-read.

Severity "error" means the image should not be read as is (the pre-read refuses it); "warning"
means it can be read but the technician should look; "info" is for the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from inference.preprocess import DEFAULT_MAX_PIXELS, GREY, decode_pixels, display_image, read_dataset
from inference.reasons import Param, Reason, Refused
from inference.windowing import Rendering

MIN_MATRIX = 256  # below this a radiograph cannot show fine detail (a thumbnail, a screenshot)
BLANK_STD = 0.01  # display-scale standard deviation under which nothing is visible
CLIPPED_FRACTION = 0.05  # share of stored values at the detector's ceiling
EXPOSURE_LOW, EXPOSURE_HIGH = 0.08, 0.92  # median display value of an under/over-exposed image


@dataclass(frozen=True)
class QualityFinding:
    code: str
    severity: str  # "error" | "warning" | "info"
    params: Mapping[str, Param] = field(default_factory=dict)

    @property
    def reason(self) -> Reason:
        return Reason(self.code, self.params)

    @property
    def en(self) -> str:
        return self.reason.en

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "params": dict(self.params)}


def check_quality(
    dataset_or_path: Dataset | str | Path | bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> list[QualityFinding]:
    """Return quality findings for one image; never raises for a bad file."""
    try:
        ds = read_dataset(dataset_or_path)
        arr = decode_pixels(ds, max_pixels=max_pixels)
    except Refused as exc:
        return [QualityFinding(exc.reason.code, "error", exc.reason.params)]
    try:
        display = display_image(ds, arr)
    except Refused as exc:
        return [QualityFinding(exc.reason.code, "error", exc.reason.params)]
    return assess_image(ds, arr, display)


def assess_image(ds: Dataset, stored: np.ndarray, rendering: Rendering) -> list[QualityFinding]:
    """Checks on already decoded pixels (the pre-read decodes once and calls this)."""
    findings: list[QualityFinding] = []
    display = rendering.pixels
    rows, cols = display.shape
    pi = str(ds.get("PhotometricInterpretation", "")).upper()
    if pi not in GREY:
        findings.append(QualityFinding("colour_image", "warning", {"photometric": pi}))
    if min(rows, cols) < MIN_MATRIX:
        findings.append(QualityFinding("tiny_matrix", "warning", {"columns": cols, "rows": rows}))
    if rendering.header_voi_ignored:
        # The modality's window (or VOI LUT, then centre and width are "") misses the pixels:
        # worth telling the site, whose export settings are probably wrong.
        centre, width = rendering.window if rendering.window else ("", "")
        params: dict[str, Param] = {
            "centre": round(centre, 2) if isinstance(centre, float) else centre,
            "width": round(width, 2) if isinstance(width, float) else width,
            "coverage_percent": round(100 * (rendering.coverage or 0.0), 1),
        }
        findings.append(QualityFinding("window_ignored", "info", params))
    # Subsample large images: statistics over ~250k pixels are as good and 10× cheaper.
    step = max(1, int(np.sqrt(rows * cols / 250_000)))
    sample = display[::step, ::step]
    if float(sample.std()) < BLANK_STD:
        findings.append(QualityFinding("blank_image", "error"))
        return findings
    if pi in GREY and stored.ndim == 2:
        bits = int(ds.get("BitsStored", ds.BitsAllocated))
        ceiling = 2**bits - 1 if int(ds.get("PixelRepresentation", 0)) == 0 else 2 ** (bits - 1) - 1
        clipped = float(np.mean(stored[::step, ::step] >= ceiling))
        if clipped > CLIPPED_FRACTION:
            findings.append(QualityFinding("clipped", "warning", {"percent": round(clipped * 100)}))
    median = float(np.median(sample))
    if median < EXPOSURE_LOW:
        findings.append(QualityFinding("underexposed_or_dark", "warning"))
    elif median > EXPOSURE_HIGH:
        findings.append(QualityFinding("overexposed_or_light", "warning"))
    return findings
