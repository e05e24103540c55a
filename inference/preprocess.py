"""DICOM → model tensor: safe reading, bounded decoding, LUTs, inversion and aspect-preserving resize.

Every way an input can be unusable ends in `Refused` (a code and its parameters), raised before
any large allocation: the decoded size is checked against a limit before decoding.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.pixels.decoders.base import get_decoder
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from inference.model_spec import InputSpec
from inference.pixel_codes import PixelCode
from inference.reasons import refuse
from inference.windowing import Rendering, render

# Decoded pixels allowed before we refuse (frames × rows × columns × samples), unless the caller
# passes its own `max_pixels`. 36 M covers a 6000×6000 detector; a Rows=Columns=65535 header
# would ask for 8 GB and is refused instead.
DEFAULT_MAX_PIXELS = 36_000_000

# Fastest decoder we measured for each codec (2 cores): pyjpegls for JPEG-LS, pylibjpeg for
# JPEG 2000 (133 ms vs Pillow's 172 ms on a 1760² CR), Pillow for baseline JPEG.
PREFERRED_PLUGINS = {
    "1.2.840.10008.1.2.4.80": "pyjpegls",
    "1.2.840.10008.1.2.4.81": "pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg",
    "1.2.840.10008.1.2.4.50": "pillow",
    "1.2.840.10008.1.2.4.51": "pillow",
}
GREY = ("MONOCHROME1", "MONOCHROME2")
COLOUR = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT")


@dataclass(frozen=True)
class Geometry:
    """Maps original image pixels to model-input pixels: x_in = x * sx + ox, y_in = y * sy + oy."""

    rows: int
    columns: int
    sx: float
    sy: float
    ox: float
    oy: float

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        ox = min(max((x - self.ox) / self.sx, 0.0), float(self.columns))
        oy = min(max((y - self.oy) / self.sy, 0.0), float(self.rows))
        return ox, oy


@dataclass
class PreparedImage:
    tensor: np.ndarray  # float32, batch of one, layout as the manifest says
    stored: np.ndarray  # decoded stored values, as in the file
    display: Rendering  # .pixels: float32 0..1, full resolution, as a radiologist would see it
    geometry: Geometry
    pixel_spacing_mm: tuple[float, float] | None  # (row, column) of the original image
    decode_ms: float
    preprocess_ms: float


def read_dataset(src: str | Path | bytes | Dataset) -> Dataset:
    """Parse a DICOM file (path, bytes or an already read Dataset) or refuse it."""
    if isinstance(src, Dataset):
        return src
    try:
        fp = io.BytesIO(src) if isinstance(src, bytes | bytearray) else str(src)
        return pydicom.dcmread(fp, force=True)
    except Exception as exc:  # any parser failure on untrusted bytes (RecursionError on a deeply
        # nested sequence included) is a verdict, not a crash
        raise refuse("unreadable", error=type(exc).__name__) from None


def transfer_syntax(ds: Dataset) -> UID:
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts:
        return UID(ts)
    # No File Meta (old files, some CDs): use the encoding the parser found.
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little in (True, None) else ExplicitVRBigEndian


def check_decodable(ds: Dataset, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Refuse what cannot or must not be decoded, before allocating anything large."""
    if "PixelData" not in ds or not ds.PixelData:
        # As the ingest validator says it: an image header without pixels is an interrupted
        # image; no image header at all is not an image (a report, a plan). A dataset with no
        # element at all is a file cut short (pydicom gives up silently on a truncated
        # encapsulated image): interrupted too.
        interrupted = "Rows" in ds or "Columns" in ds or len(ds) == 0
        raise refuse(PixelCode.NO_PIXELS if interrupted else PixelCode.NOT_IMAGE)
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        bits = int(ds.BitsAllocated)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise refuse(PixelCode.BAD_PIXEL_DESCRIPTION) from None
    if rows <= 0 or cols <= 0 or bits not in (1, 8, 16, 32) or samples not in (1, 3):
        raise refuse(PixelCode.BAD_PIXEL_DESCRIPTION)
    if frames > 1:
        raise refuse(PixelCode.MULTI_FRAME, frames=frames)
    if rows * cols * frames * samples > max_pixels:
        raise refuse(PixelCode.TOO_LARGE, columns=cols, rows=rows, frames=frames, max_pixels=max_pixels)
    if not transfer_syntax(ds).is_compressed:
        expected = (rows * cols * frames * samples * bits + 7) // 8
        if len(ds.PixelData) < expected:
            raise refuse(PixelCode.TRUNCATED, actual_bytes=len(ds.PixelData), expected_bytes=expected)


def decode_pixels(ds: Dataset, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode the single frame with the fastest available plugin, or refuse."""
    check_decodable(ds, max_pixels=max_pixels)
    ts = transfer_syntax(ds)
    try:
        decoder = get_decoder(ts)
    except NotImplementedError:
        decoder = None
    if decoder is None or not decoder.is_available:
        raise refuse(PixelCode.UNSUPPORTED_CODEC, transfer_syntax=ts.name)
    plugin = PREFERRED_PLUGINS.get(str(ts), "")
    if plugin not in decoder.available_plugins:
        plugin = ""
    try:
        arr, _ = decoder.as_array(ds, decoding_plugin=plugin, index=0)
    except Exception as exc:  # codec libraries raise anything on a broken codestream
        raise refuse(PixelCode.UNDECODABLE, transfer_syntax=ts.name, error=type(exc).__name__) from None
    return arr


def display_image(ds: Dataset, arr: NDArray[Any]) -> Rendering:
    """Stored values → what a radiologist sees, float32 0..1 (1 = white), by
    `inference.windowing.render` (modality LUT, VOI LUT or header window — a window that misses
    the pixels is replaced by a percentile stretch —, MONOCHROME1 inverted). A colour image (a
    photographed film) is reduced to its luminance; anything else that is not grey is refused."""
    pi = str(ds.get("PhotometricInterpretation", "")).upper()
    if pi in COLOUR:
        if arr.ndim != 3:
            raise refuse(PixelCode.BAD_PIXEL_DESCRIPTION)
        rendering = render(ds, arr)
        rgb = rendering.pixels
        luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
        return replace(rendering, pixels=np.clip(luma, 0.0, 1.0).astype(np.float32))
    if pi not in GREY or arr.ndim != 2:
        raise refuse(PixelCode.NOT_GREYSCALE, photometric=pi)
    return render(ds, arr)


def fit_to_input(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Geometry]:
    """Resize a 0..1 image to the model input (letterbox keeps the aspect ratio, padding black),
    then normalise with the manifest's mean/std and lay out as NCHW or NHWC."""
    rows, cols = image.shape
    width, height = spec.width, spec.height
    resample = Image.Resampling.NEAREST if spec.interpolation == "nearest" else Image.Resampling.BILINEAR
    if spec.resize == "stretch":
        new_w, new_h, ox, oy = width, height, 0, 0
    else:
        scale = min(width / cols, height / rows)
        new_w, new_h = max(1, round(cols * scale)), max(1, round(rows * scale))
        ox, oy = (width - new_w) // 2, (height - new_h) // 2
    resized = np.asarray(Image.fromarray(image, mode="F").resize((new_w, new_h), resample))
    canvas = np.zeros((height, width), dtype=np.float32)
    canvas[oy : oy + new_h, ox : ox + new_w] = resized
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    stacked = (canvas[None, :, :] - mean[:, None, None]) / std[:, None, None]  # C,H,W
    tensor = stacked[None] if spec.layout == "NCHW" else stacked.transpose(1, 2, 0)[None]
    geometry = Geometry(rows, cols, new_w / cols, new_h / rows, float(ox), float(oy))
    return np.ascontiguousarray(tensor, dtype=np.float32), geometry


def pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        try:
            if value is not None and len(value) == 2 and float(value[0]) > 0:
                return float(value[0]), float(value[1])
        except (TypeError, ValueError):
            continue
    return None


def prepare(ds: Dataset, spec: InputSpec, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
    """Decode and preprocess one dataset for a model, or raise `Refused`."""
    t0 = time.perf_counter()
    arr = decode_pixels(ds, max_pixels=max_pixels)
    t1 = time.perf_counter()
    display = display_image(ds, arr)
    tensor, geometry = fit_to_input(display.pixels, spec)
    t2 = time.perf_counter()
    return PreparedImage(
        tensor=tensor,
        stored=arr,
        display=display,
        geometry=geometry,
        pixel_spacing_mm=pixel_spacing(ds),
        decode_ms=(t1 - t0) * 1000,
        preprocess_ms=(t2 - t1) * 1000,
    )
