"""Display pixels (inference.windowing): the header window as the standard and pydicom apply it,
and a percentile stretch when that window misses the pixels, so a real film is never shown (or
pre-read) as blank. The first tests use a file pydicom ships; the last ones real radiographs."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_voi_lut

from inference.preread import run_preread
from inference.registry import ModelRegistry
from inference.windowing import (
    MIN_WINDOW_COVERAGE,
    display_float,
    display_pixels,
    render,
    window_covers,
)
from tests.helpers import CXR_MONO1_10BIT, build_constant_model
from tests.paths import required


def overlay_mr() -> pydicom.Dataset:
    """pydicom's examples_overlay.dcm: a real 484×300 12-bit MR with a two-valued window."""
    ds = pydicom.examples.overlay
    assert list(ds.WindowCenter) == [450, 200] and list(ds.WindowWidth) == [790, 443]
    return ds


def standard_linear(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1 written out, float64."""
    x = x.astype(np.float64)
    low, high = centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2
    return np.where(x <= low, 0.0, np.where(x > high, 1.0, (x - (centre - 0.5)) / (width - 1) + 0.5))


def test_it_applies_the_first_header_window_as_the_standard_says():
    ds = overlay_mr()
    rendering = render(ds, ds.pixel_array)
    assert rendering.method == "window" and rendering.window == (450.0, 790.0)
    np.testing.assert_allclose(rendering.pixels, standard_linear(ds.pixel_array, 450, 790), atol=1e-5)
    eight = display_pixels(ds)  # decodes the frame itself
    assert eight.dtype == np.uint8 and eight.shape == (300, 484)
    assert np.abs(eight.astype(int) - np.rint(rendering.pixels * 255)).max() <= 1


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_it_matches_pydicom_for_each_voi_lut_function(function):
    ds = overlay_mr()
    ds.VOILUTFunction = function
    expected = apply_voi_lut(ds.pixel_array, ds) / (2**ds.BitsStored - 1)
    np.testing.assert_allclose(display_float(ds, ds.pixel_array), expected, atol=1e-5)


def test_a_window_far_outside_the_pixels_falls_back_to_a_percentile_stretch():
    ds = overlay_mr()
    stored = ds.pixel_array
    assert stored.max() < 1200
    ds.WindowCenter, ds.WindowWidth = 30000, 100  # what pydicom applies: every pixel below it
    assert apply_voi_lut(stored, ds).max() == 0  # faithfully applied: an all-black image
    rendering = render(ds, stored)
    assert rendering.method == "stretch" and rendering.header_voi_ignored
    assert rendering.coverage == 0.0
    lo, hi = np.percentile(stored, (0.5, 99.5))
    np.testing.assert_allclose(rendering.pixels, np.clip((stored - lo) / (hi - lo), 0, 1), atol=1e-5)
    eight = display_pixels(ds, stored)
    assert eight.min() == 0 and eight.max() == 255 and eight.std() > 30


def test_monochrome1_is_inverted_after_the_fallback_too():
    ds = overlay_mr()
    ds.WindowCenter, ds.WindowWidth = -5000, 10
    mono2 = display_float(ds, ds.pixel_array)
    ds.PhotometricInterpretation = "MONOCHROME1"
    np.testing.assert_allclose(display_float(ds, ds.pixel_array), 1.0 - mono2, atol=1e-6)


def test_coverage_counts_pixels_strictly_inside_the_window():
    values = np.arange(100, dtype=np.float32)  # 0..99
    # LINEAR centre 50.5, width 11: saturated at ≤ 45 and > 55 → 46..54 strictly inside.
    assert window_covers(values, 50.5, 11) == pytest.approx(9 / 100)
    assert window_covers(values, 50, 10, function="LINEAR_EXACT") == pytest.approx(9 / 100)
    assert window_covers(values, 5000, 100) == 0.0
    assert MIN_WINDOW_COVERAGE == 0.02


def test_the_preread_scores_a_badly_windowed_image_it_used_to_call_blank(tmp_path):
    ds = overlay_mr()
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "CR", "CHEST", "PA"
    build_constant_model(tmp_path, {"pneumothorax": 0.2})
    registry = ModelRegistry.from_directory(tmp_path)
    good = run_preread(ds, registry)
    assert good.status == "scored", good.reason
    assert "window_ignored" not in [f.code for f in good.quality]
    ds.WindowCenter, ds.WindowWidth = 30000, 100
    bad = run_preread(ds, registry)
    assert bad.status == "scored", bad.reason
    (finding,) = [f for f in bad.quality if f.code == "window_ignored"]
    assert finding.severity == "info"
    assert finding.params == {"centre": 30000.0, "width": 100.0, "coverage_percent": 0.0}


def real_chest() -> pydicom.Dataset:
    return pydicom.dcmread(required(CXR_MONO1_10BIT), force=True)


def raw_words(ds: pydicom.Dataset) -> np.ndarray:
    return np.frombuffer(ds.PixelData, "<u2").reshape(ds.Rows, ds.Columns)  # no File Meta


def test_a_real_chest_film_with_its_own_window_is_unchanged():
    ds = real_chest()  # 10-bit MONOCHROME1 CR, window 550/1024 covering its whole range
    rendering = render(ds, raw_words(ds))
    assert rendering.method == "window" and rendering.coverage > 0.9
    expected = 1.0 - standard_linear(raw_words(ds), 550, 1024)
    np.testing.assert_allclose(rendering.pixels, expected, atol=1e-5)


def test_a_real_chest_film_with_a_window_outside_its_pixels_is_not_blank(tmp_path):
    ds = real_chest()
    stored = raw_words(ds)
    assert stored.max() < 1024
    build_constant_model(tmp_path, {"pneumothorax": 0.2})
    registry = ModelRegistry.from_directory(tmp_path)
    reference = run_preread(ds, registry)
    assert reference.status == "scored"
    for centre, width in ((40000, 400), (-3000, 50)):  # far above, far below the 10-bit range
        ds.WindowCenter, ds.WindowWidth = centre, width
        result = run_preread(ds, registry)
        assert result.status == "scored", result.reason  # was refused as blank_image
        assert "window_ignored" in [f.code for f in result.quality]
        pixels = display_pixels(ds, stored)
        assert pixels.std() > 40 and 40 < pixels.mean() < 215
        # The stretch shows the same anatomy as the film's own window: strongly correlated.
        ds_good = real_chest()
        good = display_float(ds_good, stored)
        assert np.corrcoef(good.ravel(), pixels.ravel())[0, 1] > 0.95
