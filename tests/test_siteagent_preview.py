"""The site agent's preview is windowed like the pre-read (inference.windowing): a header window
that misses the pixels no longer makes an all-black preview."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

from inference.windowing import display_pixels
from siteagent.preview import PREVIEW_PX, make_preview
from tests.helpers import CXR_MONO1_10BIT
from tests.paths import required


def preview_of(ds: pydicom.Dataset, tmp_path: Path) -> np.ndarray:
    src = tmp_path / "source.dcm"
    ds.save_as(src, enforce_file_format=True)
    out = make_preview(src, tmp_path / "preview.dcm")
    preview = pydicom.dcmread(out)
    assert preview.SOPClassUID.name == "Secondary Capture Image Storage"
    assert preview.LossyImageCompression == "01"
    return preview.pixel_array


def expected_thumbnail(ds: pydicom.Dataset) -> np.ndarray:
    image = Image.fromarray(display_pixels(ds))
    image.thumbnail((PREVIEW_PX, PREVIEW_PX))
    return np.asarray(image, dtype=np.float64)


def test_a_preview_with_a_window_outside_the_pixels_is_not_black(tmp_path):
    ds = pydicom.examples.overlay  # shipped with pydicom: a real 12-bit MR
    ds.WindowCenter, ds.WindowWidth = 30000, 100
    pixels = preview_of(ds, tmp_path).astype(np.float64)
    assert pixels.std() > 30 and 20 < pixels.mean() < 200  # the old preview: all 0
    assert np.abs(pixels - expected_thumbnail(ds)).mean() < 3  # JPEG at quality 80


def test_a_real_chest_preview_keeps_its_good_window_and_survives_a_bad_one(tmp_path):
    required(CXR_MONO1_10BIT)
    ds = pydicom.dcmread(CXR_MONO1_10BIT, force=True)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID

    for name in ("good", "bad"):
        (tmp_path / name).mkdir()
    good = preview_of(ds, tmp_path / "good")
    assert good.shape == (PREVIEW_PX, PREVIEW_PX)  # 440² thumbnailed to 384²
    # The film's own window (550/1024, MONOCHROME1), not a second stretch on top of it.
    assert np.abs(good - expected_thumbnail(ds)).mean() < 3

    ds.WindowCenter, ds.WindowWidth = 40000, 400  # far above the 10-bit range
    bad = preview_of(ds, tmp_path / "bad").astype(np.float64)
    assert bad.std() > 40 and 40 < bad.mean() < 215
    assert np.corrcoef(bad.ravel(), good.astype(np.float64).ravel())[0, 1] > 0.95
