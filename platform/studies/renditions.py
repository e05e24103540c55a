"""Images for the pages, rendered by the platform from the archived DICOM (never Orthanc's own
preview: its windowing trusts the header window, which on some real DX files misses every pixel
and turns a film black). One display pipeline for the whole project: inference.windowing."""

from __future__ import annotations

import io

PREVIEW_SIDE = 1024  # px; a radiograph's preview at this size weighs 8–37 kB as WebP
WEBP_QUALITY = 80


def preview_webp(dicom: bytes, *, side: int = PREVIEW_SIDE) -> bytes:
    """An 8-bit preview of the first frame (the middle one for a cine), at most `side` px."""
    import pydicom
    from PIL import Image

    from inference.windowing import display_pixels

    ds = pydicom.dcmread(io.BytesIO(dicom))
    frames = int(ds.get("NumberOfFrames") or 1)
    pixels = display_pixels(ds, frame=frames // 2 if frames > 1 else 0)
    image = Image.fromarray(pixels)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()
