"""Images for the pages, rendered by the platform from the archived DICOM (never Orthanc's own
preview: its windowing trusts the header window, which on some real DX files misses every pixel
and turns a film black). One display pipeline for the whole project: inference.windowing.

The viewer app stores these previews once per instance (viewer.renditions); `preview_webp` stays
here for the pages that render one on the fly (a report's key image, a study without renditions)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pydicom.dataset import Dataset

PREVIEW_SIDE = 1024  # px; a radiograph's preview at this size weighs 8–37 kB as WebP
WEBP_QUALITY = 80


def preview_frame(frames: int) -> int:
    """The frame a preview shows: the first, the middle one of a cine."""
    return frames // 2 if frames > 1 else 0


def preview_webp(dicom: bytes, *, side: int = PREVIEW_SIDE) -> bytes:
    """An 8-bit preview of the first frame (the middle one for a cine), at most `side` px."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(dicom))
    return preview_of(ds, side=side)


def preview_of(ds: Dataset, arr: NDArray[Any] | None = None, *, side: int = PREVIEW_SIDE) -> bytes:
    """The preview of an already parsed dataset; `arr` the preview frame's stored pixels when the
    caller has decoded them (else that frame alone is decoded)."""
    from inference.windowing import display_pixels

    frames = int(ds.get("NumberOfFrames") or 1)
    if arr is not None:
        pixels = display_pixels(ds, arr)
    else:
        pixels = display_pixels(ds, frame=preview_frame(frames))
    return webp_of(pixels, side=side)


def webp_of(pixels: NDArray[Any], *, side: int = PREVIEW_SIDE) -> bytes:
    """8-bit display pixels (grey or RGB) as a lossy WebP at most `side` px."""
    from PIL import Image

    image = Image.fromarray(pixels)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()
