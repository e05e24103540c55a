"""AI overlays in the manifest are in the full image's pixels, on a real non-square chest radiograph.

Why they used to be drawn 17–28 % too tall: the coordinates were right (inference maps a model's
boxes back through the letterbox to original pixels, and the pre-read records the image size they
refer to); the page placed them as percentages of a <figure> whose height also held the captions.
The manifest gives pixels of the full image (columns × rows), which the viewer maps onto its canvas.
"""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image

from preread.services import prepare_study_for_reading
from tests.helpers import build_constant_model, send_files, wrap_jpeg_as_dicom
from tests.paths import REAL_CXR
from viewer.models import Kind
from viewer.services import render_instance

pytestmark = [pytest.mark.django_db, pytest.mark.orthanc, pytest.mark.testdata]

CHEST = REAL_CXR / "png/Hannover-COVID_fff13f3a.png"  # real CR, 691 × 640: not square
SIZE = 224  # the demo model's input


def letterbox(columns: int, rows: int) -> tuple[float, float, float, float]:
    """(sx, sy, ox, oy) of the model-input frame, from the letterbox rule (scale to fit, centre)."""
    scale = min(SIZE / columns, SIZE / rows)
    new_w, new_h = max(1, round(columns * scale)), max(1, round(rows * scale))
    return new_w / columns, new_h / rows, (SIZE - new_w) // 2, (SIZE - new_h) // 2


def to_input(box: tuple[float, float, float, float], columns: int, rows: int) -> tuple[float, ...]:
    sx, sy, ox, oy = letterbox(columns, rows)
    x0, y0, x1, y1 = box
    return (x0 * sx + ox, y0 * sy + oy, x1 * sx + ox, y1 * sy + oy)


@pytest.fixture
def chest_dicom(tmp_path):
    with Image.open(CHEST) as png:
        columns, rows = png.size
        jpeg = tmp_path / "chest.jpeg"
        png.convert("L").save(jpeg, "JPEG", quality=95)
    path = tmp_path / "chest.dcm"
    path.write_bytes(wrap_jpeg_as_dicom(jpeg))
    return path, columns, rows


def test_manifest_boxes_land_on_the_image_pixels_they_were_found_on(
    chest_dicom, settings, tmp_path, tech_a, radiologist, client
):
    path, columns, rows = chest_dicom
    assert columns != rows
    whole = (0.0, 0.0, float(columns), float(rows))  # the whole image: must not come back taller
    centre = (columns / 4, rows / 4, 3 * columns / 4, 3 * rows / 4)
    settings.JOLIBA_MODELS_DIR = tmp_path / "models"
    settings.JOLIBA_RENDITIONS_ROOT = tmp_path / "renditions"
    build_constant_model(
        settings.JOLIBA_MODELS_DIR,
        probabilities={"pneumothorax": 0.95},
        boxes=[(*to_input(b, columns, rows), 0.9, 0) for b in (whole, centre)],
    )
    study = send_files(tech_a, [path])
    prepare_study_for_reading(study.pk)
    instance = study.instances.get()
    render_instance(instance.pk)

    client.force_login(radiologist)
    entry = client.get(reverse("viewer_manifest", args=[study.pk])).json()["series"][0]["instances"][0]
    assert (entry["columns"], entry["rows"]) == (columns, rows)
    full = instance.renditions.get(kind=Kind.FULL)
    assert (full.width, full.height) == (columns, rows)  # boxes and full rendition share pixels
    ai = entry["ai"]
    assert ai["demo"] is True and ai["model"] == "joliba-demo-cxr v1.0.0"
    got = [(b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]) for b in ai["boxes"]]
    for found, expected in zip(got, (whole, centre), strict=True):
        assert found == pytest.approx(expected, abs=1.0), (found, expected)
    # The heatmap covers the whole image (the viewer stretches it over columns × rows).
    assert ai["heatmap"] == reverse("ai_heatmap", args=[study.pk, instance.pk])
    assert instance.ai_results.get().details["heatmap"]["covers"] == [0, 0, columns, rows]
    heatmap = client.get(ai["heatmap"])
    assert heatmap.status_code == 200
    assert Image.open(io.BytesIO(heatmap.content)).size[0] > 0

    # A technician of the site may see the study, not unverified AI output.
    client.force_login(tech_a)
    entry = client.get(reverse("viewer_manifest", args=[study.pk])).json()["series"][0]["instances"][0]
    assert entry["ai"] is None
