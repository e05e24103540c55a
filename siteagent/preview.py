"""A small lossy preview of a series (JPEG, ≤ 384 px): sent first so the centre can pre-read
and rank a study before its full pixels arrive. Clearly marked as derived and lossy."""

from __future__ import annotations

import io
import os
from pathlib import Path

PREVIEW_PX = 384


def _eight_bit(ds):
    import numpy as np
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames") or 1)
    if frames > 1:
        arr = arr[frames // 2]
    if int(ds.get("SamplesPerPixel") or 1) == 1:
        arr = apply_modality_lut(arr, ds)
        if "WindowCenter" in ds or "VOILUTSequence" in ds:
            arr = apply_voi_lut(arr, ds)
        arr = arr.astype(np.float64)
        lo, hi = np.percentile(arr, (0.5, 99.5))
        arr = np.clip((arr - lo) / max(hi - lo, 1e-6) * 255, 0, 255)
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            arr = 255 - arr
        return arr.astype(np.uint8), "L"
    return arr.astype(np.uint8), "RGB"


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
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
                    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
                    "StudyDescription", "ReferringPhysicianName", "Modality", "BodyPartExamined",
                    "InstitutionName"):
        if keyword in ds:
            setattr(pv, keyword, ds.data_element(keyword).value)
    # Deterministic UIDs: queueing the same series again gives the same preview, stored once.
    pv.SeriesInstanceUID = generate_uid(entropy_srcs=[str(ds.SeriesInstanceUID), "joliba-preview"])
    pv.SOPInstanceUID = generate_uid(entropy_srcs=[str(ds.SOPInstanceUID), "joliba-preview"])
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
