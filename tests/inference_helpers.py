"""Helpers for inference tests, platform tests and the quickstart: where the shared test images
are, deterministic small ONNX model packages, and JPEG films wrapped as DICOM."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydicom
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage, generate_uid

from inference.demo import build_demo_model

REPO = Path(__file__).resolve().parent.parent
try:  # one place for the test data path: tests/paths.py when the platform adds it
    from tests.paths import TESTDATA  # type: ignore[import-not-found]
except ImportError:
    TESTDATA = Path(os.environ.get("JOLIBA_TESTDATA", REPO.parent / "shared" / "testdata"))

CXR_1024 = (
    TESTDATA / "real_cxr/CR_chest_PA_SIIM-ACR_NIH-CXR14/"
    "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
)
CXR_MONO1_10BIT = TESTDATA / "edge_cases/fo-dicom/CR-MONO1-10-chest"
HIP_JPEGLS = TESTDATA / "real_other/CR_hip_Fuji_WG04-RG2/RG2_JLSL.dcm"
TIBIA_J2K = TESTDATA / "real_other/CR_tibia_Fuji_WG04-RG3/RG3_J2KR.dcm"
TIBIA_UNCOMPRESSED = TESTDATA / "real_other/CR_tibia_Fuji_WG04-RG3/RG3_UNCR.dcm"
HAND_12BIT_J2K = TESTDATA / "real_other/CR_hand_Kodak_gdcm/NM_Kakadu44_SOTmarkerincons.dcm"
PANORAMIC_MODALITY_LUT = TESTDATA / "real_other/CR_dental-panoramic_fo-dicom/CR-ModalitySequenceLUT.dcm"
CT_RLE_16BIT = TESTDATA / "edge_cases/fo-dicom/D_CLUNIE_CT1_RLE_FRAGS.dcm"
PAEDIATRIC = TESTDATA / "real_cxr/pediatric_labelled"


def build_constant_model(directory: str | Path, probabilities: Mapping[str, float], **kwargs: Any) -> Path:
    """A demo-format package whose label probabilities are the given constants."""
    return build_demo_model(directory, probabilities=probabilities, **kwargs)


def build_spec_model(
    directory: str | Path, spec: dict[str, Any], logits: Mapping[str, float], *, default: float = -4.0
) -> Path:
    """A package with any specification whose single probabilities output returns constant
    logits (`logits` by label name, `default` for the others): a multi-label model's labels,
    display names and thresholds through the real pipeline, without its weights."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from inference.model_spec import write_model_spec

    out = next(o for o in spec["outputs"] if o["kind"] == "probabilities")
    values = np.asarray([[logits.get(lab["name"], default) for lab in out["labels"]]], np.float32)
    width, height = spec["input"]["size"]
    channels = spec["input"].get("channels", 1)
    shape = [1, channels, height, width] if spec["input"].get("layout", "NCHW") == "NCHW" else [
        1, height, width, channels]
    name = spec["input"]["name"]
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", [name], ["mean"], keepdims=0),
            helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
            helper.make_node("Add", ["values", "nothing"], [out["name"]]),
        ],
        "constant",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(out["name"], TensorProto.FLOAT, list(values.shape))],
        initializer=[
            numpy_helper.from_array(values, "values"),
            numpy_helper.from_array(np.asarray(0.0, np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    package = Path(directory) / spec["name"]
    package.mkdir(parents=True, exist_ok=True)
    (package / "model.onnx").write_bytes(model.SerializeToString())
    write_model_spec(package, spec)
    return package


def wrap_jpeg_as_dicom(jpeg: str | Path, **tags: Any) -> bytes:
    """The JPEG bytes, untouched, as a DICOM Secondary Capture (as a digitised or photographed
    film arrives from a site): JPEG Baseline transfer syntax, a chest CR by default."""
    data = Path(jpeg).read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        mode = img.mode
    if mode not in ("L", "RGB"):
        raise ValueError(f"unsupported JPEG mode {mode}")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "CR"
    ds.ConversionType = "DF"  # digitised film
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.Rows, ds.Columns = height, width
    ds.SamplesPerPixel = 1 if mode == "L" else 3
    ds.PhotometricInterpretation = "MONOCHROME2" if mode == "L" else "YBR_FULL_422"
    if mode == "RGB":
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.PixelData = encapsulate([data])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
