"""A photo of a film becomes a Secondary Capture that goes through the normal ingest."""

import numpy as np
import pydicom
import pytest
from PIL import Image

from ingest.validation import check_files
from tests.paths import FILM_PHOTO as FILM
from uploads.photo import PhotoRefused, wrap_photo

FACTS = {
    "patient_name": "DIARRA^Awa",
    "patient_id": "KY-0042",
    "patient_sex": "f",
    "patient_birth_date": "20190301",
    "modality": "cr",
    "body_part": "chest",
}


def test_a_film_photo_is_wrapped_with_the_typed_facts_and_the_same_pixels(tmp_path):
    out = wrap_photo(FILM, FACTS, tmp_path / "film.dcm")
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert (str(ds.PatientName), ds.PatientID, ds.PatientSex, ds.Modality) == (
        "DIARRA^Awa",
        "KY-0042",
        "F",
        "CR",
    )
    assert ds.ConversionType == "DF" and ds.LossyImageCompression == "01"
    expected = np.asarray(Image.open(FILM).convert("L"))
    assert np.array_equal(ds.pixel_array, expected)
    [verdict] = check_files([out], tmp_path / "check")
    assert verdict.ok, (verdict.code, verdict.params)


def test_a_file_that_is_not_a_picture_is_refused_with_a_reason(tmp_path):
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(b"\x00" * 2048)
    with pytest.raises(PhotoRefused) as refused:
        wrap_photo(junk, FACTS, tmp_path / "x.dcm")
    assert refused.value.code == "photo_unreadable"
