"""The rendition encoders and header facts on real files, without Orthanc: window flags and
stretch, pixel spacing and whether a measure is calibrated, cine rate, colour, refusals, storage."""

from __future__ import annotations

import copy

import numpy as np
import pydicom
import pytest

from tests.paths import CT_HEAD, EDGE_CASES
from viewer import encoding, storage

CT = CT_HEAD / "01.dcm"
RGB = EDGE_CASES / "pydicom/SC_rgb_rle.dcm"


def ct() -> pydicom.Dataset:
    return pydicom.dcmread(CT)


def test_the_file_window_is_kept_and_flagged_when_it_misses_the_pixels():
    ds = ct()
    arr = ds.pixel_array
    windows, stretch = encoding.windows_and_stretch(ds, arr)
    assert windows == [
        {"center": float(ds.WindowCenter), "width": float(ds.WindowWidth), "source": "file", "misses": False}
    ]
    values = arr.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    low, high = np.percentile(values, (0.5, 99.5))
    assert stretch["center"] == pytest.approx((low + high) / 2, abs=1)
    assert stretch["width"] == pytest.approx(high - low, abs=2)
    ds.WindowCenter, ds.WindowWidth = [30000, 40], [100, 80]  # the first misses every pixel
    windows, _ = encoding.windows_and_stretch(ds, arr)
    assert [w["misses"] for w in windows] == [True, False]


def test_spacing_says_where_it_comes_from_and_whether_a_measure_is_calibrated():
    ds = ct()
    assert encoding.spacing_of(ds)["calibrated"] is True  # cross-sectional Pixel Spacing
    cr = copy.deepcopy(ds)
    cr.Modality = "CR"
    assert encoding.spacing_of(cr)["calibrated"] is False  # a radiograph's Pixel Spacing, unstated
    cr.PixelSpacingCalibrationType = "GEOMETRY"
    assert encoding.spacing_of(cr)["calibrated"] is True
    del cr.PixelSpacing
    cr.ImagerPixelSpacing = [0.143, 0.143]
    spacing = encoding.spacing_of(cr)
    assert spacing == {
        "row_mm": 0.143,
        "column_mm": 0.143,
        "source": "ImagerPixelSpacing",
        "calibrated": False,
    }
    del cr.ImagerPixelSpacing
    assert encoding.spacing_of(cr) is None  # the viewer then refuses to measure
    cr.PixelSpacing = [0, 0]
    assert encoding.spacing_of(cr) is None


def test_cine_rate_from_the_header():
    ds = ct()
    assert encoding.cine_fps(ds) is None
    ds.FrameTime = 33
    assert encoding.cine_fps(ds) == pytest.approx(30.303)
    ds.CineRate = 15
    assert encoding.cine_fps(ds) == 15.0


@pytest.mark.testdata
def test_a_colour_image_is_kept_as_rgb_bit_for_bit():
    ds = pydicom.dcmread(RGB)
    layout = encoding.layout_of(ds)
    assert layout.colour and layout.format == "webp8"
    arr = encoding.decode_frame(ds, 0)
    values = encoding.stored_values(ds, arr, layout)
    assert np.array_equal(encoding.decode_full(encoding.encode_full(values, layout), "webp8"), arr)
    assert encoding.header_facts(ds, layout)["photometric"] == "RGB"
    windows, stretch = encoding.windows_and_stretch(ds, arr)
    assert windows == [] and stretch is None


def test_more_than_16_bits_gets_no_full_rendition():
    ds = ct()
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 24, 23
    with pytest.raises(encoding.Unrenderable) as refused:
        encoding.layout_of(ds)
    assert refused.value.code == "too_deep" and refused.value.params == {"bits": 24}


def test_values_outside_bits_stored_are_a_verdict_not_a_wrapped_image():
    ds = ct()
    ds.PixelRepresentation, ds.BitsStored, ds.HighBit = 0, 10, 9  # the file says 10 bits unsigned
    layout = encoding.layout_of(ds)
    with pytest.raises(encoding.Unrenderable) as refused:
        encoding.stored_values(ds, np.asarray([[0, 4000]], np.uint16), layout)
    assert refused.value.code == "values_out_of_range"


def test_storage_is_content_addressed_and_writes_once(settings, tmp_path):
    settings.JOLIBA_RENDITIONS_ROOT = tmp_path
    first = storage.put(b"RIFF-one")
    path = storage.path_of(first)
    mtime = path.stat().st_mtime_ns
    assert storage.put(b"RIFF-one") == first and path.stat().st_mtime_ns == mtime
    assert storage.put(b"RIFF-two") != first
    assert sorted(p.name for p in tmp_path.glob("*/*")) == sorted(
        [f"{first}.webp", f"{storage.put(b'RIFF-two')}.webp"]
    )
    assert storage.exists(first, len(b"RIFF-one")) and not storage.exists(first, 3)
