"""Irreversible compression follows the guideline ratios, says so in the header as the standard
requires, and is shown to the radiologist."""

import numpy as np
import pydicom
import pytest
from django.urls import reverse

from siteagent.compression import LOSSY_RATIOS, compress_lossy, image_error
from studies.models import Instance, Study
from tests.helpers import api_client
from tests.paths import REAL_OTHER

TIBIA = REAL_OTHER / "CR_tibia_Fuji_WG04-RG3" / "RG3_UNCR.dcm"  # 10 bits stored in 16


def test_it_compresses_a_radiograph_at_the_cr_ratio_against_the_16_bit_container(tmp_path):
    assert LOSSY_RATIOS["CR"] == 10
    result = compress_lossy(TIBIA, tmp_path / "lossy.dcm", 10)
    original, lossy = pydicom.dcmread(TIBIA), pydicom.dcmread(result.path)
    container = original.Rows * original.Columns * 2
    assert 9.0 <= container / len(lossy.PixelData) <= 11.0
    assert lossy.LossyImageCompression == "01"
    assert float(lossy.LossyImageCompressionRatio) == pytest.approx(result.lossy_ratio, rel=0.01)
    assert lossy.LossyImageCompressionMethod == "ISO_15444_1"
    assert lossy.SOPInstanceUID != original.SOPInstanceUID  # a new image, not the original
    assert lossy.ImageType[0] == "DERIVED"
    error = image_error(TIBIA, result.path)
    assert 0 < error["max_error"] <= 32 and error["psnr_db"] > 45
    assert not np.array_equal(lossy.pixel_array, original.pixel_array)


@pytest.mark.django_db
@pytest.mark.orthanc
def test_the_radiologist_sees_that_an_image_was_compressed_with_loss(tech_a, radiologist, client, tmp_path):
    result = compress_lossy(TIBIA, tmp_path / "lossy.dcm", 10)
    with result.path.open("rb") as f:
        sent = api_client(tech_a).post(
            reverse("api_upload"), {"files": [f], "indication": "x"}, format="multipart"
        )
    assert sent.json()["verdicts"][0]["outcome"] == "stored"
    instance = Instance.objects.get()
    assert instance.lossy and float(instance.lossy_ratio) == pytest.approx(result.lossy_ratio, rel=0.01)
    client.force_login(radiologist)
    page = client.get(reverse("study_detail", args=[Study.objects.get().pk])).content.decode()
    assert "Compression avec perte" in page and instance.lossy_ratio in page
