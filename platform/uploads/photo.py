"""A photo or scan of a film (JPEG/PNG) wrapped as DICOM Secondary Capture.

Many district hospitals still print on film; a phone photo of it is better than nothing,
and marked for what it is: Conversion Type "DF" (digitised film), lossy, 8-bit grey.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

MAX_PIXELS = 50_000_000  # a phone photo is ~12 MP; more is refused before decoding


class PhotoRefused(ValueError):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _clean(value: object, limit: int) -> str:
    return str(value or "").replace("\\", " ").strip()[:limit]


def wrap_photo(source: Path, facts: dict, target: Path) -> Path:
    """Write `target`, a Secondary Capture of the image in `source` with the typed facts."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(source) as img:
            if img.width * img.height > MAX_PIXELS:
                raise PhotoRefused("photo_too_large", "Photo trop grande : réduisez-la avant l'envoi.")
            grey = np.asarray(img.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError) as exc:
        raise PhotoRefused("photo_unreadable", f"Photo illisible (JPEG ou PNG attendu) : {exc}") from None

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
