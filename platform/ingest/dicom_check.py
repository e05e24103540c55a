"""Check untrusted DICOM files; run as a child process under memory and CPU limits.

    python -m ingest.dicom_check OUT_DIR FILE...

Prints one JSON line per file: {"index", "ok", "code", "params", "facts", "clean_path"}, and
"restored_from" (the JPEG XL transfer syntax it arrived in) for a file the site sent as JPEG XL:
its clean copy is in a standard syntax (ingest.jpegxl_restore), the only thing the archive sees.
Codes and parameters only: the sentence a technician reads is rendered by the platform, in their
language, from ingest.verdicts. For an accepted file, OUT_DIR receives a clean copy: 128-byte
preamble zeroed (no preamble polyglots, CVE-2019-11687 / CVE-2023-33466), File Meta added when
the file had none. Imports nothing from Django (the pixel codes come from inference.pixel_codes,
standard library only): it starts fast and stays small.
"""

from __future__ import annotations

import json
import re
import resource
import struct
import sys
import warnings
from enum import StrEnum
from pathlib import Path

from inference.pixel_codes import PixelCode

from .jpegxl_restore import JPEGXL_LOSSLESS, NotVerified, is_jpegxl, restore
from .pixel_decode import decode_all, first_cut_frame

MAX_PIXEL_BYTES = 1_500_000_000  # decoded size guard, checked before any decoding
UID_RE = re.compile(r"^[0-9]+(\.[0-9]+)*$")
FACT_TAGS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "SOPClassUID",
    "PatientName",
    "PatientID",
    "PatientSex",
    "PatientBirthDate",
    "PatientAge",
    "AccessionNumber",
    "Modality",
    "BodyPartExamined",
    "StudyDescription",
    "StudyDate",
    "InstitutionName",
    "InstanceNumber",
    "LossyImageCompression",
    "LossyImageCompressionRatio",
    "LossyImageCompressionMethod",
)
# Groups a DICOM data set without preamble can plausibly start with: File Meta (0002) or the
# identifying group (0008) that old modalities and CD writers put first.
FIRST_GROUPS = (0x0002, 0x0008)
LONGEST_ELEMENT_HEADER = 12  # explicit VR with a 4-byte length
SEQUENCE_DELIMITER, SEQUENCE_DELIMITER_BE = b"\xfe\xff\xdd\xe0", b"\xff\xfe\xe0\xdd"


class FileCode(StrEnum):
    """The other verdicts of the checker."""

    OK = "ok"
    FILE_META_ADDED = "file_meta_added"  # accepted, repaired
    TOO_SMALL = "too_small"
    NOT_DICOM = "not_dicom"
    UNREADABLE = "unreadable"
    TOO_DEEP = "too_deep"
    MISSING_UID = "missing_uid"
    EXCEEDED_LIMITS = "exceeded_limits"


class Refused(Exception):
    def __init__(self, code: str, **params: object) -> None:
        super().__init__(code)
        self.code = str(code)
        self.params = params


def _detail(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {str(exc)[:160]}"


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


def plausible_start(raw: bytes) -> bool:
    """A DICOM file: "DICM" after the preamble, or a first element of a group files start with."""
    if raw[128:132] == b"DICM":
        return True
    if len(raw) < 8:
        return False
    little, big = struct.unpack("<H", raw[:2])[0], struct.unpack(">H", raw[:2])[0]
    return little in FIRST_GROUPS or big in FIRST_GROUPS


def ends_early(ds, raw: bytes, warned: list[str]) -> bool:
    """Whether the file stops before its data set does (a transfer or a copy cut short).

    pydicom reads a cut file without complaint and keeps what it got, so a file cut in its
    header looked like a file without UIDs. The signs: an undefined-length value without its
    delimiter, a last value shorter than its declared length, leftover bytes too few to be an
    element header, a sequence delimiter cut in its length, or File Meta followed by nothing.
    """
    from pydicom.dataelem import RawDataElement
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    if any(w.startswith("End of file reached before delimiter") for w in warned):
        return True
    tags = list(ds.keys())
    if not tags:
        return bool(getattr(ds, "file_meta", None))
    if ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return False  # positions are in the inflated stream, not in the file
    last = ds.get_item(max(tags))
    if not isinstance(last, RawDataElement):
        return False
    if last.length == 0xFFFFFFFF:  # ends with a sequence delimiter: tag and a 4-byte zero length
        little = ds.original_encoding[1] is not False
        tag = SEQUENCE_DELIMITER if little else SEQUENCE_DELIMITER_BE
        at = raw.rfind(tag)
        return at != -1 and len(raw) < at + 8
    if last.value is not None and len(last.value) < last.length:
        return True
    leftover = len(raw) - (last.value_tell + last.length)
    return 0 < leftover < LONGEST_ELEMENT_HEADER


def _declared_size(ds) -> tuple[dict, int]:
    """The image's declared size ({rows, columns, frames}, decoded bytes), refused when it is not
    a plausible description or too large to decode within the child's limits."""
    if "PixelData" not in ds:
        if "Rows" in ds or "Columns" in ds:
            raise Refused(PixelCode.NO_PIXELS)
        raise Refused(PixelCode.NOT_IMAGE)
    for tag in ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation"):
        if ds.get(tag) in (None, ""):
            raise Refused(PixelCode.BAD_PIXEL_DESCRIPTION, field=tag)
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames") or 1)
    samples = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.BitsAllocated)
    if rows <= 0 or cols <= 0 or frames <= 0 or bits not in (1, 8, 16, 32):
        raise Refused(PixelCode.BAD_PIXEL_DESCRIPTION, field="Rows/Columns/BitsAllocated")
    size = {"rows": rows, "columns": cols, "frames": frames}
    expected = rows * cols * frames * samples * bits // 8
    if expected > MAX_PIXEL_BYTES:
        raise Refused(PixelCode.TOO_LARGE, **size)
    return size, expected


def _restore_jpegxl(ds) -> str:
    """A file the site sent as JPEG XL, verified and put back into a standard syntax, in place;
    returns the JPEG XL syntax it came in ("" for any other file)."""
    if not is_jpegxl(str(ds.file_meta.get("TransferSyntaxUID", ""))):
        return ""
    size, _expected = _declared_size(ds)  # before any decoding
    try:
        return restore(ds)
    except NotVerified as exc:
        raise Refused(exc.code, **exc.params) from None
    except MemoryError:
        raise Refused(PixelCode.TOO_LARGE, **size) from None


def _check_pixels(ds) -> None:
    from pydicom.uid import UID

    size, expected = _declared_size(ds)
    ts = UID(ds.file_meta.TransferSyntaxUID)
    if not ts.is_compressed:
        actual = len(ds.PixelData)
        if actual < expected:
            raise Refused(PixelCode.TRUNCATED, percent=100 * actual // max(expected, 1))
    try:
        decode_all(ds)  # every frame once: unreadable pixels are refused here
    except MemoryError:
        raise Refused(PixelCode.TOO_LARGE, **size) from None
    except Exception as exc:  # codec errors come as many types
        raise Refused(PixelCode.UNDECODABLE, syntax=ts.name, detail=_detail(exc)) from None
    # Decoded is not whole: some decoders return an image for a codestream cut short.
    cut = first_cut_frame(ds)
    if cut is not None:
        raise Refused(PixelCode.TRUNCATED, frame=cut)


def _read(path: Path, raw: bytes):
    import pydicom
    from pydicom.errors import InvalidDicomError

    has_preamble = raw[128:132] == b"DICM"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(path, force=not has_preamble)
        except RecursionError:
            raise Refused(FileCode.TOO_DEEP) from None
        except (EOFError, struct.error):  # a read came back short: the file stops mid-element
            raise Refused(PixelCode.TRUNCATED) from None
        except (InvalidDicomError, OSError, ValueError, KeyError, TypeError) as exc:
            raise Refused(FileCode.UNREADABLE, detail=_detail(exc)) from None
    if ends_early(ds, raw, [str(w.message) for w in caught]):
        raise Refused(PixelCode.TRUNCATED)
    return ds, has_preamble


def check_file(path: Path, out_path: Path) -> dict:
    import pydicom
    from pydicom.uid import ImplicitVRLittleEndian

    raw = path.read_bytes()
    if len(raw) < 132:
        raise Refused(FileCode.TOO_SMALL)
    if not plausible_start(raw):
        raise Refused(FileCode.NOT_DICOM)  # text, a photo, a report: before parsing it as DICOM
    ds, has_preamble = _read(path, raw)
    try:
        len(ds)  # forces parsing of deferred elements
        facts = _facts(ds)
    except RecursionError:
        raise Refused(FileCode.TOO_DEEP) from None
    except Exception as exc:
        raise Refused(FileCode.UNREADABLE, detail=_detail(exc)) from None
    if not has_preamble and not facts:
        raise Refused(FileCode.NOT_DICOM)
    for uid in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        value = facts.get(uid, "")
        if not UID_RE.match(value) or len(value) > 64:
            raise Refused(FileCode.MISSING_UID, uid=uid)

    repaired = []
    if not has_preamble or "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        # Files straight off old modalities or CDs may lack File Meta: add it, as pydicom read it.
        ds.file_meta = pydicom.dataset.FileMetaDataset(getattr(ds, "file_meta", {}))
        ds.file_meta.TransferSyntaxUID = ds.file_meta.get("TransferSyntaxUID", ImplicitVRLittleEndian)
        ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.7")
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        repaired.append("file_meta_added")
    try:
        restored_from = _restore_jpegxl(ds)
        if restored_from != JPEGXL_LOSSLESS:  # re-encoded JPEG XL was decoded back already
            _check_pixels(ds)
    except RecursionError:
        raise Refused(FileCode.TOO_DEEP) from None
    facts["TransferSyntaxUID"] = str(ds.file_meta.TransferSyntaxUID)

    if repaired or restored_from:
        ds.preamble = b"\0" * 128
        ds.save_as(out_path, enforce_file_format=True)
    else:
        out_path.write_bytes(b"\0" * 128 + raw[128:])
    result = {"facts": facts, "repaired": repaired}
    if restored_from:
        result["restored_from"] = restored_from
    return result


def _refusal(index: int, code: str, **params: object) -> dict:
    return {"index": index, "ok": False, "code": str(code), "params": params}


def main(argv: list[str]) -> int:
    sys.setrecursionlimit(400)  # a deeply nested sequence fails fast instead of eating the stack
    out_dir = Path(argv[0])
    for index, name in enumerate(argv[1:]):
        out_path = out_dir / f"{index}.dcm"
        try:
            result = check_file(Path(name), out_path)
            code = FileCode.FILE_META_ADDED if result["repaired"] else FileCode.OK
            line = {
                "index": index,
                "ok": True,
                "code": str(code),
                "params": {},
                "clean_path": str(out_path),
                **result,
            }
        except Refused as exc:
            line = _refusal(index, exc.code, **exc.params)
        except RecursionError:
            line = _refusal(index, FileCode.TOO_DEEP)
        except MemoryError:  # parsing (not decoding) ran out of its memory limit
            line = _refusal(index, FileCode.EXCEEDED_LIMITS)
        except Exception as exc:  # any other parser failure is a verdict, not a crash
            line = _refusal(index, FileCode.UNREADABLE, detail=_detail(exc))
        # The child's own high-water mark so far (KiB on Linux): what checking costs, measured.
        line["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(line), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
