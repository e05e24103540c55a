"""Preprocessing on real radiographs, checked against references computed here in plain numpy
from the raw pixel array and the header tags (not by calling the library's own LUT code)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from inference.model_spec import InputSpec
from inference.preprocess import decode_pixels, display_image, fit_to_input, prepare
from tests.helpers import (
    CT_RLE_16BIT,
    CXR_1024,
    CXR_MONO1_10BIT,
    HAND_12BIT_J2K,
    HIP_JPEGLS,
    PANORAMIC_MODALITY_LUT,
    TIBIA_J2K,
    TIBIA_UNCOMPRESSED,
)


def linear_window(x: np.ndarray, centre: float, width: float) -> np.ndarray:
    """PS3.3 C.11.2.1.2.1, written out with the standard's three cases."""
    x = x.astype(np.float64)
    low, high = centre - 0.5 - (width - 1) / 2, centre - 0.5 + (width - 1) / 2
    y = (x - (centre - 0.5)) / (width - 1) + 0.5
    return np.where(x <= low, 0.0, np.where(x > high, 1.0, y))


def library_display(path) -> tuple[pydicom.Dataset, np.ndarray]:
    ds = pydicom.dcmread(path, force=True)
    return ds, display_image(ds, decode_pixels(ds)).pixels


@pytest.mark.parametrize(
    ("path", "monochrome1"),
    [
        (CXR_MONO1_10BIT, True),  # 10-bit MONOCHROME1 chest, no File Meta
        (HIP_JPEGLS, False),  # 10-bit JPEG-LS lossless
        (TIBIA_J2K, True),  # 10-bit MONOCHROME1 JPEG 2000 lossless
        (HAND_12BIT_J2K, False),  # 12-bit JPEG 2000
    ],
)
def test_it_windows_and_inverts_like_the_standard(path, monochrome1):
    ds, got = library_display(path)
    if "TransferSyntaxUID" in ds.file_meta:
        raw = ds.pixel_array  # pydicom's default decoder, independent of our plugin choice
    else:  # no File Meta: read the little-endian words directly
        raw = np.frombuffer(ds.PixelData, "<u2").reshape(ds.Rows, ds.Columns)
    assert str(ds.PhotometricInterpretation) == ("MONOCHROME1" if monochrome1 else "MONOCHROME2")
    expected = linear_window(raw, float(ds.WindowCenter), float(ds.WindowWidth))
    if monochrome1:
        expected = 1.0 - expected
    assert got.shape == raw.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_it_decodes_j2k_lossless_to_the_uncompressed_pixels():
    _, j2k = library_display(TIBIA_J2K)
    _, plain = library_display(TIBIA_UNCOMPRESSED)
    np.testing.assert_array_equal(j2k, plain)


def test_it_uses_the_full_range_of_an_8bit_image_without_window():
    ds, got = library_display(CXR_1024)  # 8-bit JPEG baseline, no window tags
    assert "WindowCenter" not in ds
    # Lossy JPEG: two decoders may differ by one grey level (IDCT rounding), no more.
    diff = np.abs(got - ds.pixel_array / 255.0)
    assert diff.max() <= 1 / 255 + 1e-6 and diff.mean() < 1e-3


def test_it_applies_rescale_to_16bit_signed_rle_then_spans_min_to_max():
    ds, got = library_display(CT_RLE_16BIT)
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = (hu - hu.min()) / (hu.max() - hu.min())
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_it_applies_a_modality_lut_sequence():
    ds, got = library_display(PANORAMIC_MODALITY_LUT)
    item = ds.ModalityLUTSequence[0]
    entries, first, _ = (int(v) for v in item.LUTDescriptor)
    raw_lut = item.LUTData
    lut = np.frombuffer(raw_lut, "<u2") if isinstance(raw_lut, bytes) else np.asarray(raw_lut)
    lut = lut.astype(np.float64)
    assert len(lut) == (entries or 65536)
    mapped = lut[np.clip(ds.pixel_array.astype(np.int64) - first, 0, len(lut) - 1)]
    expected = 1.0 - (mapped - mapped.min()) / (mapped.max() - mapped.min())  # MONOCHROME1
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_it_letterboxes_a_portrait_radiograph_keeping_its_aspect():
    ds, display = library_display(HIP_JPEGLS)  # 2140 rows × 1760 columns
    spec = InputSpec("image", 214, 214, interpolation="nearest", mean=(0.5,), std=(0.5,))
    tensor, geometry = fit_to_input(display, spec)
    # Nearest at exactly 1/10: output pixel i samples source pixel 10·i + 5; columns 176 wide,
    # centred with 19 black columns each side.
    expected = np.zeros((214, 214))
    expected[:, 19 : 19 + 176] = display[5::10, 5::10]
    assert tensor.shape == (1, 1, 214, 214)
    np.testing.assert_allclose(tensor[0, 0], (expected - 0.5) / 0.5, atol=1e-6)
    assert geometry.to_original(19.0, 0.0) == (0.0, 0.0)
    assert geometry.to_original(19.0 + 176, 214.0) == (1760.0, 2140.0)


def test_it_lays_out_three_channels_for_a_keras_model():
    ds, display = library_display(CXR_MONO1_10BIT)
    spec = InputSpec(
        "image",
        220,
        220,
        channels=3,
        layout="NHWC",
        resize="stretch",
        interpolation="nearest",
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
    )
    tensor, _ = fit_to_input(display, spec)
    assert tensor.shape == (1, 220, 220, 3)
    expected = display[1::2, 1::2] * 2.0 - 1.0  # nearest at 1/2 samples pixel 2·i + 1
    for channel in range(3):
        np.testing.assert_allclose(tensor[0, :, :, channel], expected, atol=1e-6)


def test_bilinear_downscale_averages_rather_than_samples():
    ds, display = library_display(TIBIA_UNCOMPRESSED)  # 1760², 1/8 to 220
    spec = InputSpec("image", 220, 220, mean=(0.0,), std=(1.0,))
    tensor, _ = fit_to_input(display, spec)
    block_means = display.reshape(220, 8, 220, 8).mean(axis=(1, 3))
    assert np.abs(tensor[0, 0] - block_means).mean() < 0.01


def test_prepare_reports_spacing_and_timings():
    ds = pydicom.dcmread(HIP_JPEGLS)
    prepared = prepare(ds, InputSpec("image", 224, 224))
    assert prepared.pixel_spacing_mm == (0.2, 0.2)
    assert prepared.decode_ms > 0 and prepared.preprocess_ms > 0
    assert prepared.tensor.dtype == np.float32
