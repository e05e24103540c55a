"""The platform renders previews itself with the project's one display pipeline: a header window
that misses every pixel (seen on real chest DX files) no longer turns the film black. Reference
in the same test: the platform's preview of the same image with its own header."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from PIL import Image
from pydicom import examples
from pydicom.uid import generate_uid

from studies.models import Instance
from tests.helpers import CXR_1024, api_client
from tests.paths import required

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc]


def _with_missed_window(ds: pydicom.Dataset, path) -> bytes:
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    slope, intercept = float(ds.get("RescaleSlope", 1)), float(ds.get("RescaleIntercept", 0))
    top = float(ds.pixel_array.max()) * slope + intercept
    ds.WindowCenter, ds.WindowWidth = top + 20000, 100  # every pixel far below the window
    ds.save_as(path, enforce_file_format=True)
    return path.read_bytes()


def _grey(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float32)


def _preview(tech_a, radiologist, path) -> np.ndarray:
    with path.open("rb") as f:
        sent = api_client(tech_a).post(
            reverse("api_upload"),
            {"files": [f], "indication": "Toux", "priority": "routine"},
            format="multipart",
        )
    assert sent.status_code == 201 and sent.json()["verdicts"][0]["outcome"] == "stored", sent.content
    instance = Instance.objects.get(study_id=sent.json()["verdicts"][0]["study"])
    page = api_client(radiologist).get(reverse("api_preview", args=[instance.study_id, instance.pk]))
    assert page.status_code == 200 and page["Content-Type"] == "image/webp"
    return _grey(page.content)


def _same_picture(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _as_new_study(ds: pydicom.Dataset, path):
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.save_as(path, enforce_file_format=True)


def _looks_like_an_image(pixels: np.ndarray) -> bool:
    return 30 < pixels.mean() < 225 and pixels.std() > 20


def test_a_real_chest_film_with_a_window_that_misses_its_pixels_is_shown(tech_a, radiologist, tmp_path):
    required(CXR_1024)
    _with_missed_window(pydicom.dcmread(CXR_1024), tmp_path / "cxr.dcm")
    _as_new_study(pydicom.dcmread(CXR_1024), tmp_path / "reference.dcm")
    ours = _preview(tech_a, radiologist, tmp_path / "cxr.dcm")
    reference = _preview(tech_a, radiologist, tmp_path / "reference.dcm")
    assert _looks_like_an_image(ours), (ours.mean(), ours.std())
    assert _same_picture(ours, reference) > 0.9
    assert max(ours.shape) <= 1024


def test_a_shipped_ct_slice_with_a_window_that_misses_its_pixels_is_shown(tech_a, radiologist, tmp_path):
    _with_missed_window(examples.ct.copy(), tmp_path / "ct.dcm")
    ours = _preview(tech_a, radiologist, tmp_path / "ct.dcm")
    assert _looks_like_an_image(ours), (ours.mean(), ours.std())
