"""A photo or scan of a film (JPEG/PNG) wrapped as DICOM Secondary Capture.

Many district hospitals still print on film; a phone photo of it is better than nothing,
and marked for what it is: Conversion Type "DF" (digitised film), lossy, 8-bit grey.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

MAX_PIXELS = 50_000_000  # a phone photo is ~12 MP; more is refused before decoding
MAX_SIDE = 65_535  # DICOM Rows and Columns are 16-bit


class PhotoRefused(ValueError):
    """Why a photo cannot become an image: a code (ingest.verdicts says it) and its parameters."""

    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code, self.params = code, params


def _clean(value: object, limit: int) -> str:
    return str(value or "").replace("\\", " ").strip()[:limit]


def wrap_photo(source: Path, facts: dict, target: Path) -> Path:
    """Write `target`, a Secondary Capture of the image in `source` with the typed facts."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(source) as img:
            if img.width * img.height > MAX_PIXELS or max(img.width, img.height) > MAX_SIDE:
                raise PhotoRefused("photo_too_large")
            grey = np.asarray(img.convert("L"), dtype=np.uint8)
    except PhotoRefused:
        raise
    except Image.DecompressionBombError:
        raise PhotoRefused("photo_too_large") from None
    except Exception:  # noqa: BLE001 - Pillow's decoders fail in many ways on fuzzed input
        raise PhotoRefused("photo_unreadable") from None
    if grey.ndim != 2 or 0 in grey.shape:
        raise PhotoRefused("photo_unreadable")

    now = dt.datetime.now()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = _clean(facts.get("study_instance_uid"), 64) or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = _clean(facts.get("patient_name"), 64)
    ds.PatientID = _clean(facts.get("patient_id"), 64)
    ds.PatientBirthDate = _clean(facts.get("patient_birth_date"), 8)
    ds.PatientSex = _clean(facts.get("patient_sex"), 1).upper()
    ds.Modality = _clean(facts.get("modality"), 16).upper() or "OT"
    ds.BodyPartExamined = _clean(facts.get("body_part"), 16).upper()
    ds.StudyDescription = _clean(facts.get("study_description"), 64) or "Photo de film"
    ds.StudyDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.ConversionType = "DF"
    ds.BurnedInAnnotation = "YES"  # a photo of a film shows whatever was printed on it
    ds.LossyImageCompression = "01"  # the camera's JPEG already was
    ds.SeriesNumber, ds.InstanceNumber = 1, 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = grey.shape
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = grey.tobytes()
    ds.save_as(target, enforce_file_format=True)
    return target
