"""Stored pixels → rendition bytes, and the header facts the viewer needs. No Django here.

Full fidelity is lossless WebP, decoded by the browser itself (no WASM decoder to download):
- `webp16` for grey images of more than 8 bits: the stored value v (plus `offset` when signed,
  so it is 0..65535) as R = v >> 8, G = v & 0xFF, B = 0. Measured on the project's real images
  at 0.97–1.11 × the JPEG-LS size of the same pixels (docs/viewer.md, « Renditions »).
- `webp8` for 8-bit grey (R = G = B = v) and colour images (RGB as decoded).
One file per frame, each frame decoded on its own, so memory is bounded by one frame.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from inference.pixel_codes import PixelCode

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pydicom.dataset import Dataset

# libwebp effort: method 4 / quality 50 is within 0.5 % of the smallest output (method 6 /
# quality 100) on the real images measured, at a tenth of the time (20 s → 2 s on a 12-bit hand).
WEBP_METHOD = 4
WEBP_EFFORT = 50
CROSS_SECTIONAL = frozenset({"CT", "MR", "PT", "NM", "US"})
TOO_DEEP = "too_deep"  # more than 16 bits stored: no lossless WebP for it (the preview stays)
COLOUR = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"})


class Unrenderable(Exception):
    """A verdict on an image's pixels: a code and its parameters (rendered for people elsewhere)."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


@dataclass(frozen=True)
class Layout:
    """How stored values go into the full rendition's bytes."""

    format: str  # "webp16" | "webp8"
    bits: int  # bits stored (after the modality LUT when it is applied here)
    signed: bool
    offset: int  # added to a stored value to make it non-negative
    lut_applied: bool  # a Modality LUT Sequence was applied: values are its output, slope 1
    colour: bool


def frame_count(ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def check_renderable(ds: Dataset, *, max_pixels: int, max_frames: int) -> None:
    """Refuse, before decoding anything, what cannot or must not be decoded. The bound is per
    frame: frames are decoded one at a time."""
    from inference.preprocess import transfer_syntax

    if "PixelData" not in ds or not ds.PixelData:
        interrupted = "Rows" in ds or "Columns" in ds or len(ds) == 0
        raise Unrenderable(PixelCode.NO_PIXELS if interrupted else PixelCode.NOT_IMAGE)
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits = int(ds.BitsAllocated)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise Unrenderable(PixelCode.BAD_PIXEL_DESCRIPTION) from None
    frames = frame_count(ds)
    if rows <= 0 or cols <= 0 or bits not in (1, 8, 16, 32) or samples not in (1, 3):
        raise Unrenderable(PixelCode.BAD_PIXEL_DESCRIPTION)
    if rows * cols * samples > max_pixels or frames > max_frames:
        raise Unrenderable(PixelCode.TOO_LARGE, columns=cols, rows=rows, frames=frames, max_pixels=max_pixels)
    if not transfer_syntax(ds).is_compressed:
        expected = (rows * cols * frames * samples * bits + 7) // 8
        if len(ds.PixelData) < expected:
            raise Unrenderable(PixelCode.TRUNCATED, actual_bytes=len(ds.PixelData), expected_bytes=expected)


def decode_frame(ds: Dataset, index: int) -> NDArray[Any]:
    """The stored pixels of one frame (colour as RGB), or Unrenderable."""
    from pydicom.pixels.utils import pixel_array

    from inference.preprocess import transfer_syntax

    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" not in meta:  # old files without File Meta
        meta.TransferSyntaxUID = transfer_syntax(ds)
    try:
        return np.asarray(pixel_array(ds, index=index if frame_count(ds) > 1 else None))
    except Exception as exc:  # codec libraries raise anything on a broken codestream
        raise Unrenderable(
            PixelCode.UNDECODABLE, transfer_syntax=transfer_syntax(ds).name, error=type(exc).__name__
        ) from None


def layout_of(ds: Dataset) -> Layout:
    photometric = str(ds.get("PhotometricInterpretation", "") or "").upper()
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    colour = samples == 3 or photometric in COLOUR or photometric == "PALETTE COLOR"
    if colour:
        return Layout("webp8", 8, False, 0, False, True)
    lut = ds.get("ModalityLUTSequence")
    if lut:
        # The viewer knows slope/intercept only: apply the table here, losslessly (its output is
        # integer), and tell the viewer slope 1, intercept 0.
        out_bits = int(lut[0].LUTDescriptor[2])
        if out_bits > 16:
            raise Unrenderable(TOO_DEEP, bits=out_bits)
        return Layout("webp16" if out_bits > 8 else "webp8", out_bits, False, 0, True, False)
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 8)) or 8)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    if bits > 16:
        raise Unrenderable(TOO_DEEP, bits=bits)
    offset = (1 << (bits - 1)) if signed else 0
    return Layout("webp16" if bits > 8 else "webp8", bits, signed, offset, False, False)


def stored_values(ds: Dataset, arr: NDArray[Any], layout: Layout) -> NDArray[Any]:
    """One frame's values as they go into the rendition: uint16 for webp16, uint8 for webp8."""
    if layout.colour:
        return _rgb8(ds, arr)
    if layout.lut_applied:
        from pydicom.pixels.processing import apply_modality_lut

        values = np.asarray(apply_modality_lut(arr, ds))
    else:
        values = arr.astype(np.int32) + layout.offset
    top = (1 << layout.bits) - 1
    low, high = int(values.min()), int(values.max())
    if low < 0 or high > top:  # values outside Bits Stored: the header lies about the pixels
        raise Unrenderable("values_out_of_range", low=low, high=high, bits=layout.bits)
    return values.astype(np.uint16 if layout.format == "webp16" else np.uint8)


def _rgb8(ds: Dataset, arr: NDArray[Any]) -> NDArray[np.uint8]:
    photometric = str(ds.get("PhotometricInterpretation", "") or "").upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels.processing import apply_color_lut

        arr = np.asarray(apply_color_lut(arr, ds))
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.dtype != np.uint8:
        top = float(arr.max()) if arr.size else 255.0
        scale = 255.0 / (65535.0 if top > 255 else 255.0)
        arr = np.clip(arr.astype(np.float32) * scale + 0.5, 0, 255).astype(np.uint8)
    return arr


def encode_full(values: NDArray[Any], layout: Layout) -> bytes:
    """Lossless WebP of one frame's values."""
    from PIL import Image

    if layout.format == "webp16":
        v = values.astype(np.uint16, copy=False)
        rgb = np.empty((*v.shape, 3), np.uint8)
        rgb[..., 0] = v >> 8
        rgb[..., 1] = v & 0xFF
        rgb[..., 2] = 0
        image = Image.fromarray(rgb, "RGB")
    elif values.ndim == 3:
        image = Image.fromarray(values, "RGB")
    else:
        image = Image.fromarray(values, "L")
    out = io.BytesIO()
    image.save(out, format="WEBP", lossless=True, quality=WEBP_EFFORT, method=WEBP_METHOD, exact=True)
    return out.getvalue()


def decode_full(data: bytes, fmt: str) -> NDArray[Any]:
    """The values back from a full rendition (what the browser computes): for tests and checks."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        rgb = np.asarray(image.convert("RGB"))
    if fmt == "webp16":
        return (rgb[..., 0].astype(np.uint16) << 8) | rgb[..., 1].astype(np.uint16)
    return rgb


# --- Header facts --------------------------------------------------------------------------------
def header_facts(ds: Dataset, layout: Layout | None) -> dict[str, Any]:
    """The manifest's per-instance fields that come from the header (JSON-ready)."""
    photometric = str(ds.get("PhotometricInterpretation", "") or "").upper()
    if layout is not None and layout.colour:
        photometric = "RGB"  # what the rendition holds, whatever the file's colour space
    slope, intercept = _rescale(ds)
    if layout is not None and layout.lut_applied:
        slope, intercept = 1.0, 0.0
    return {
        "columns": _int(ds.get("Columns")),
        "rows": _int(ds.get("Rows")),
        "frames": frame_count(ds),
        "photometric": photometric,
        "modality_lut": {"slope": slope, "intercept": intercept},
        "stored": (
            {
                "bits": layout.bits,
                "signed": layout.signed,
                "offset": layout.offset,
                **({"lut_applied": True} if layout.lut_applied else {}),
            }
            if layout is not None
            else None
        ),
        "spacing": spacing_of(ds),
        "cine_fps": cine_fps(ds),
        "series_number": _int(ds.get("SeriesNumber")),
        "series_description": str(ds.get("SeriesDescription", "") or "")[:200],
    }


def spacing_of(ds: Dataset) -> dict[str, Any] | None:
    """Pixel Spacing (or Imager Pixel Spacing) and whether a measure in it is calibrated."""
    modality = str(ds.get("Modality", "") or "").upper()
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            row, column = float(value[0]), float(value[1])
        except (TypeError, ValueError, IndexError):
            continue
        if not (row > 0 and column > 0 and math.isfinite(row) and math.isfinite(column)):
            continue
        calibrated = keyword == "PixelSpacing" and (
            modality in CROSS_SECTIONAL
            or "PixelSpacingCalibrationType" in ds
            or "PixelSpacingCalibrationDescription" in ds
        )
        return {"row_mm": row, "column_mm": column, "source": keyword, "calibrated": calibrated}
    return None


def cine_fps(ds: Dataset) -> float | None:
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        try:
            value = float(ds.get(keyword) or 0)
        except (TypeError, ValueError):
            continue
        if value > 0 and math.isfinite(value):
            return value
    try:
        frame_time = float(ds.get("FrameTime") or 0)  # ms
    except (TypeError, ValueError):
        return None
    return round(1000.0 / frame_time, 3) if frame_time > 0 else None


def windows_and_stretch(
    ds: Dataset, arr: NDArray[Any]
) -> tuple[list[dict[str, Any]], dict[str, float] | None]:
    """The file's own windows (modality units), each flagged when it misses the pixels, and the
    0.5–99.5 percentile stretch of one frame's modality values. Colour images have neither."""
    from inference.windowing import (
        MIN_WINDOW_COVERAGE,
        SAMPLE_PIXELS,
        STRETCH_PERCENTILES,
        modality_values,
        voi_function,
        window_covers,
    )

    if arr.ndim != 2:
        return [], None
    step = max(1, int(np.sqrt(arr.size / SAMPLE_PIXELS)))
    sample = modality_values(ds, arr[::step, ::step])
    low, high = (float(v) for v in np.percentile(sample, STRETCH_PERCENTILES))
    if high <= low:
        low, high = float(sample.min()), float(sample.max())
    stretch = {"center": round((low + high) / 2, 3), "width": round(max(high - low, 1.0), 3)}
    function = voi_function(ds)
    windows = []
    for centre, width in _header_windows(ds):
        coverage = window_covers(sample, centre, width, function=function)
        windows.append(
            {
                "center": centre,
                "width": width,
                "source": "file",
                "misses": coverage < MIN_WINDOW_COVERAGE,
            }
        )
    return windows, stretch


def _header_windows(ds: Dataset) -> list[tuple[float, float]]:
    centres, widths = ds.get("WindowCenter"), ds.get("WindowWidth")
    if centres is None or widths is None or centres == "" or widths == "":
        return []
    centres = list(centres) if _multi(centres) else [centres]
    widths = list(widths) if _multi(widths) else [widths]
    found = []
    for c, w in zip(centres, widths, strict=False):
        try:
            centre, width = float(c), float(w)
        except (TypeError, ValueError):
            continue
        if math.isfinite(centre) and math.isfinite(width) and width > 0:
            found.append((centre, width))
    return found


def _multi(value: object) -> bool:
    return hasattr(value, "__len__") and not isinstance(value, str | bytes) and hasattr(value, "__iter__")


def _rescale(ds: Dataset) -> tuple[float, float]:
    try:
        return float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
    except (TypeError, ValueError):
        return 1.0, 0.0


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
