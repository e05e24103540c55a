"""A small lossy preview of a series (JPEG, ≤ 384 px): sent first so the centre can pre-read
and rank a study before its full pixels arrive. Clearly marked as derived and lossy.

It carries every header fact the pre-read's scope checks read on the original (species, breed,
modality, body part, view, laterality, age), so the centre refuses a preview of an image it
would refuse (a cat radiograph is not scored as a human chest), and names its original in a
Source Image Sequence. The centre keeps it apart from the study's images (uploads.previews).
"""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from pydicom.dataset import Dataset

PREVIEW_PX = 384

# Copied from the original as they are: who the patient is and what the image shows — what the
# study record and the pre-read's scope checks (inference/scope.py) read.
COPIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientSpeciesDescription",
    "PatientSpeciesCodeSequence",
    "PatientBreedDescription",
    "PatientBreedCodeSequence",
    "BreedRegistrationSequence",
    "PatientSexNeutered",
    "ResponsiblePerson",
    "ResponsibleOrganization",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "StudyDescription",
    "ReferringPhysicianName",
    "Modality",
    "BodyPartExamined",
    "ViewPosition",
    "ImageLaterality",
    "Laterality",
    "PatientOrientation",
    "InstitutionName",
)


def _eight_bit(ds: Dataset) -> tuple[NDArray[np.uint8], str]:
    """The middle frame as the radiologist would see it (inference.windowing: header window,
    or a percentile stretch when that window misses the pixels), 8-bit grey or RGB."""
    from inference.windowing import display_pixels  # numpy: loaded only when a preview is made

    frames = int(ds.get("NumberOfFrames") or 1)
    pixels = display_pixels(ds, frame=frames // 2)
    return pixels, ("L" if pixels.ndim == 2 else "RGB")


def preview_uid(original_sop_uid: str) -> str:
    """The SOP Instance UID of the preview made from `original_sop_uid` (the centre uses it to
    tell the preview from the study's own images)."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[original_sop_uid, "joliba-preview"])


def make_preview(src: Path, out: Path) -> Path:
    import pydicom
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

    ds = pydicom.dcmread(src)
    pixels, mode = _eight_bit(ds)
    image = Image.fromarray(pixels, mode=mode)
    image.thumbnail((PREVIEW_PX, PREVIEW_PX))
    jpeg = io.BytesIO()
    image.save(jpeg, format="JPEG", quality=80)
    data = jpeg.getvalue()

    pv = Dataset()
    for keyword in COPIED:
        if keyword in ds:
            pv[keyword] = copy.deepcopy(ds[keyword])
    source = Dataset()
    source.ReferencedSOPClassUID = ds.SOPClassUID
    source.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    pv.SourceImageSequence = [source]
    # Deterministic UIDs: queueing the same series again gives the same preview, stored once.
    pv.SeriesInstanceUID = generate_uid(entropy_srcs=[str(ds.SeriesInstanceUID), "joliba-preview"])
    pv.SOPInstanceUID = preview_uid(str(ds.SOPInstanceUID))
    pv.SOPClassUID = SecondaryCaptureImageStorage
    pv.SeriesNumber, pv.InstanceNumber = 9000, 1
    pv.SeriesDescription = "Aperçu Joliba (basse résolution, avec perte) / preview"
    pv.ConversionType = "WSD"
    pv.ImageType = ["DERIVED", "SECONDARY"]
    pv.DerivationDescription = "Aperçu JPEG réduit pour pré-lecture ; l'image originale suit."
    pv.BurnedInAnnotation = "NO"
    pv.Rows, pv.Columns = image.height, image.width
    pv.SamplesPerPixel = 1 if mode == "L" else 3
    pv.PhotometricInterpretation = "MONOCHROME2" if mode == "L" else "YBR_FULL_422"
    if mode != "L":
        pv.PlanarConfiguration = 0
    pv.BitsAllocated, pv.BitsStored, pv.HighBit, pv.PixelRepresentation = 8, 8, 7, 0
    pv.LossyImageCompression = "01"
    original = ds.Rows * ds.Columns * int(ds.get("SamplesPerPixel") or 1) * int(ds.BitsAllocated) // 8
    pv.LossyImageCompressionRatio = [f"{original / len(data):.1f}"[:16]]
    pv.LossyImageCompressionMethod = ["ISO_10918_1"]
    pv.PixelData = encapsulate([data])
    pv["PixelData"].VR = "OB"
    pv.file_meta = FileMetaDataset()
    pv.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    pv.file_meta.MediaStorageSOPClassUID = pv.SOPClassUID
    pv.file_meta.MediaStorageSOPInstanceUID = pv.SOPInstanceUID
    tmp = out.with_suffix(".tmp")
    pv.save_as(tmp, enforce_file_format=True)
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return out
