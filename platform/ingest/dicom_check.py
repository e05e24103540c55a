"""Check untrusted DICOM files; run as a child process under memory and CPU limits.

    python -m ingest.dicom_check OUT_DIR FILE...

Prints one JSON line per file: {"index", "ok", "code", "reason", "facts", "clean_path"}.
For an accepted file, OUT_DIR receives a clean copy: 128-byte preamble zeroed (no preamble
polyglots, CVE-2019-11687 / CVE-2023-33466), File Meta added when the file had none.
Imports nothing from Django: it starts fast and stays small.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

MAX_PIXEL_BYTES = 1_500_000_000  # decoded size guard, checked before any decoding
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
FACT_TAGS = (
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "PatientName",
    "PatientID", "PatientSex", "PatientBirthDate", "PatientAge", "AccessionNumber", "Modality",
    "BodyPartExamined", "StudyDescription", "StudyDate", "InstitutionName", "InstanceNumber",
    "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod",
)


class Refused(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _facts(ds) -> dict:
    from pydicom.multival import MultiValue

    facts = {}
    for name in FACT_TAGS:
        value = ds.get(name)
        if value is not None and value != "":
            if isinstance(value, MultiValue):
                value = "\\".join(str(v) for v in value)
            facts[name] = str(value)[:200]
    return facts


def _check_pixels(ds) -> None:
    from pydicom.uid import UID

    if "PixelData" not in ds:
        if "Rows" in ds or "Columns" in ds:
            raise Refused("no_pixels", "Image sans données de pixels (fichier tronqué ou incomplet).")
        raise Refused("not_image", "Ce fichier DICOM ne contient pas d'image à lire.")
    for tag in ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation"):
        if ds.get(tag) in (None, ""):
            raise Refused("bad_pixel_description", f"Description des pixels incomplète ({tag}).")
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames") or 1)
    samples = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.BitsAllocated)
    if rows <= 0 or cols <= 0 or frames <= 0 or bits not in (1, 8, 16, 32):
        raise Refused("bad_pixel_description", "Dimensions ou profondeur de pixels invalides.")
    expected = rows * cols * frames * samples * bits // 8
    if expected > MAX_PIXEL_BYTES:
        raise Refused(
            "too_large",
            f"Image déclarée de {rows}×{cols}×{frames} : trop grande pour être vérifiée.",
        )
    ts = UID(ds.file_meta.TransferSyntaxUID)
    if not ts.is_compressed:
        actual = len(ds.PixelData)
        if actual < expected:
            pct = 100 * actual // max(expected, 1)
            raise Refused(
                "truncated",
                f"Pixels tronqués : {pct} % des données attendues (transfert interrompu ?).",
            )
    try:
        ds.pixel_array  # noqa: B018 - decode everything once: unreadable pixels are refused here
    except MemoryError:
        raise Refused("too_large", "Image trop grande pour être décodée.") from None
    except Exception as exc:  # codec errors come as many types
        raise Refused(
            "undecodable",
            f"Pixels illisibles ({ts.name}) : {str(exc)[:160]}",
        ) from None


def check_file(path: Path, out_path: Path) -> dict:
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import ImplicitVRLittleEndian

    raw = path.read_bytes()
    if len(raw) < 132:
        raise Refused("too_small", "Fichier trop petit pour être un DICOM.")
    has_preamble = raw[128:132] == b"DICM"
    try:
        ds = pydicom.dcmread(path, force=not has_preamble)
    except RecursionError:
        raise Refused("too_deep", "Structure DICOM imbriquée trop profondément.") from None
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise Refused("unreadable", f"Fichier DICOM illisible : {str(exc)[:160]}") from None
    try:
        len(ds)  # forces parsing of deferred elements
        facts = _facts(ds)
    except RecursionError:
        raise Refused("too_deep", "Structure DICOM imbriquée trop profondément.") from None
    except Exception as exc:
        raise Refused("unreadable", f"Fichier DICOM illisible : {str(exc)[:160]}") from None
    if not has_preamble and not facts:
        raise Refused("not_dicom", "Ce fichier n'est pas un fichier DICOM.")
    for uid in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = facts.get(uid, "")
        if not UID_RE.match(value) or len(value) > 64:
            raise Refused("missing_uid", f"Identifiant {uid} absent ou invalide.")

    repaired = []
    if not has_preamble or "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        # Files straight off old modalities or CDs may lack File Meta: add it, as pydicom read it.
        ds.file_meta = pydicom.dataset.FileMetaDataset(getattr(ds, "file_meta", {}))
        ds.file_meta.TransferSyntaxUID = ds.file_meta.get("TransferSyntaxUID", ImplicitVRLittleEndian)
        ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.7")
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        repaired.append("file_meta_added")
    try:
        _check_pixels(ds)
    except RecursionError:
        raise Refused("too_deep", "Structure DICOM imbriquée trop profondément.") from None
    facts["TransferSyntaxUID"] = str(ds.file_meta.TransferSyntaxUID)

    if repaired:
        ds.preamble = b"\0" * 128
        ds.save_as(out_path, enforce_file_format=True)
    else:
        out_path.write_bytes(b"\0" * 128 + raw[128:])
    return {"facts": facts, "repaired": repaired}


def main(argv: list[str]) -> int:
    sys.setrecursionlimit(400)  # a deeply nested sequence fails fast instead of eating the stack
    out_dir = Path(argv[0])
    for index, name in enumerate(argv[1:]):
        out_path = out_dir / f"{index}.dcm"
        try:
            result = check_file(Path(name), out_path)
            line = {"index": index, "ok": True, "code": "ok", "reason": "",
                    "clean_path": str(out_path), **result}
        except Refused as exc:
            line = {"index": index, "ok": False, "code": exc.code, "reason": exc.reason}
        except RecursionError:
            line = {"index": index, "ok": False, "code": "too_deep",
                    "reason": "Structure DICOM imbriquée trop profondément."}
        except MemoryError:
            line = {"index": index, "ok": False, "code": "too_large",
                    "reason": "Fichier trop gros pour être vérifié."}
        except Exception as exc:  # any other parser failure is a verdict, not a crash
            line = {"index": index, "ok": False, "code": "unreadable",
                    "reason": f"Fichier DICOM illisible : {exc.__class__.__name__}: {str(exc)[:160]}"}
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
