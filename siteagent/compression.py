"""Compress DICOM before the link: lossless by default, proven pixel-identical.

Already-compressed files are sent as they are (recompressing would cost CPU for little, and
lossy ones must never be transcoded again), unless JPEG XL (siteagent/jpegxl.py) makes them
smaller: lossless pixels of any lossless syntax as JPEG XL Lossless, JPEG baseline as JPEG XL JPEG
recompression (bit-exact). JPEG XL goes only where smaller than the best of as-is, JPEG-LS and
JPEG 2000, at an effort that costs less time than it saves on the link; a site turns it off with
`SitePolicy(jpegxl=False)` (`joliba-push --no-jpegxl`). The optional irreversible mode follows the
German consensus ratios and records what it did in the header, as PS3.3 C.7.6.1.1.5 requires.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import jpegxl

if TYPE_CHECKING:
    from numpy.typing import NDArray
    from pydicom.dataset import Dataset

UNCOMPRESSED = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}

# Lossless codec per modality: "best" tries JPEG-LS and JPEG 2000 and keeps the smaller
# (J2K wins by ~2 % on some CR, JPEG-LS on DX and CT, and is 5-10x faster).
LOSSLESS_CODECS = {
    "CR": "best",
    "DX": "best",
    "MG": "best",
    "XA": "jpegls",
    "RF": "jpegls",
    "CT": "jpegls",
    "MR": "jpegls",
}
# Irreversible ratios against the stored container (German consensus, Loose et al. 2009).
LOSSY_RATIOS = {"CR": 10.0, "DX": 10.0, "MG": 15.0, "CT": 8.0, "CT_BRAIN": 5.0}


@dataclass(frozen=True)
class SitePolicy:
    mode: str = "lossless"  # or "lossy"
    # Lossy first, lossless after: "never", "urgent" (urgent and stat studies) or "always".
    lossy_first: str = "never"
    lossless_codecs: dict[str, str] = field(default_factory=lambda: dict(LOSSLESS_CODECS))
    lossy_ratios: dict[str, float] = field(default_factory=lambda: dict(LOSSY_RATIOS))
    jpegxl: bool = True  # JPEG XL on the wire where it is smaller (the centre stores JPEG-LS)
    # The link's rate (bytes/s) from the agent's last transfers (siteagent/linkrate.py); None:
    # jpegxl.DEFAULT_LINK_BYTES_PER_S. It decides the JPEG XL effort.
    link_bytes_per_s: float | None = None
    # Whether the agent encodes the next file while this one is sent: then encoding costs only
    # what it takes beyond the link's time, and higher efforts pay (jpegxl.encoding_cost).
    encode_while_sending: bool = False


@dataclass(frozen=True)
class Compressed:
    path: Path
    codec: str  # "jpegls", "j2k", "as-is", "j2k-lossy", "jpegxl", "jpegxl-jpeg"
    raw_size: int
    size: int
    sop_instance_uid: str
    lossy_ratio: float | None = None
    encode_seconds: float = 0.0  # every codec tried for this file, JPEG XL included
    effort: int | None = None  # JPEG XL Lossless effort, when that is what goes


def _write_durably(ds: Dataset, out: Path) -> None:
    tmp = out.with_suffix(".tmp")
    ds.save_as(tmp, enforce_file_format=True)
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)


def _copy_durably(src: Path, out: Path) -> None:
    tmp = out.with_suffix(".tmp")
    shutil.copyfile(src, tmp)
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)


def _encode(src: Path, codec: str, reference: NDArray[Any]) -> Dataset:
    """Encode losslessly and prove it: decoded pixels must equal the original's, bit for bit."""
    import numpy as np
    import pydicom
    from pydicom.uid import JPEG2000Lossless, JPEGLSLossless

    ds = pydicom.dcmread(src)
    uid = JPEGLSLossless if codec == "jpegls" else JPEG2000Lossless
    # Lossless transcoding keeps the instance's identity (pydicom 3 would mint a new UID).
    ds.compress(
        uid,
        reference,
        encoding_plugin="pyjpegls" if codec == "jpegls" else "pylibjpeg",
        generate_instance_uid=False,
    )
    check = pydicom.dcmread(pydicom.filebase.DicomBytesIO(_to_bytes(ds)))
    if not np.array_equal(check.pixel_array, reference):
        raise ValueError(f"{codec}: decoded pixels differ")
    return ds


def _to_bytes(ds: Dataset) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def compress_losslessly(
    src: Path,
    out: Path,
    codec: str = "best",
    *,
    use_jpegxl: bool = False,
    link_bytes_per_s: float | None = None,
    pipelined: bool = False,
) -> Compressed:
    import pydicom

    started = time.perf_counter()
    raw_size = src.stat().st_size
    head = pydicom.dcmread(src, stop_before_pixels=True)
    sop = str(head.SOPInstanceUID)
    ts = str(head.file_meta.get("TransferSyntaxUID", ""))
    has_pixels = "PixelData" in pydicom.dcmread(src, specific_tags=["PixelData"])
    name, best = "as-is", None
    if ts in UNCOMPRESSED and has_pixels:
        try:
            reference = pydicom.dcmread(src).pixel_array
            candidates = []
            for tried in ("jpegls", "j2k") if codec == "best" else (codec,):
                try:
                    candidates.append((tried, _encode(src, tried, reference)))
                except Exception:  # a codec that cannot take this image: try the next, or send as is
                    continue
            if candidates:
                name, best = min(candidates, key=lambda c: len(c[1].PixelData))
        except Exception:  # pixels pydicom cannot read: as is
            name, best = "as-is", None
    if use_jpegxl and has_pixels:
        rate = link_bytes_per_s or jpegxl.DEFAULT_LINK_BYTES_PER_S
        wire = _jpegxl_candidate(src, ts, best, rate, pipelined)
        if wire is not None:
            _write_durably(wire.dataset, out)
            kind = "jpegxl" if wire.syntax == jpegxl.JPEGXL_LOSSLESS else "jpegxl-jpeg"
            return Compressed(
                out,
                kind,
                raw_size,
                out.stat().st_size,
                sop,
                encode_seconds=time.perf_counter() - started,
                effort=wire.effort,
            )
    if best is None:
        _copy_durably(src, out)
    else:
        _write_durably(best, out)
    return Compressed(
        out, name, raw_size, out.stat().st_size, sop, encode_seconds=time.perf_counter() - started
    )


def _jpegxl_candidate(
    src: Path, ts: str, best: Dataset | None, rate: float, pipelined: bool
) -> jpegxl.Encoded | None:
    """JPEG XL of `src` if its pixel data come out smaller than the best other choice's."""
    import pydicom

    try:
        ds = pydicom.dcmread(src)
        best_bytes = len(best.PixelData) if best is not None else len(ds.PixelData)
        if ts == jpegxl.JPEG_BASELINE:
            wire = jpegxl.encode_jpeg_recompression(ds)
        elif ts in jpegxl.LOSSLESS_SOURCES:
            wire = jpegxl.encode_lossless(
                ds,
                best_bytes=best_bytes,
                link_bytes_per_s=rate,
                pipelined=pipelined,
                best_is_jpegls=best is not None,
            )
        else:
            return None  # lossy or unknown syntaxes travel as they are
    except Exception:  # whatever JPEG XL cannot take goes the usual way
        return None
    return wire if wire is not None and wire.pixel_bytes < best_bytes else None


def lossy_target(ds: Dataset, ratios: dict[str, float]) -> float | None:
    modality = str(ds.get("Modality", ""))
    if modality == "CT":
        where = " ".join(str(ds.get(k, "")) for k in ("BodyPartExamined", "StudyDescription")).upper()
        if any(w in where for w in ("HEAD", "BRAIN", "CRANE", "CRÂNE", "CEREB", "SKULL")):
            return ratios.get("CT_BRAIN")
    return ratios.get(modality)


URGENT_PRIORITIES = ("urgent", "stat")


def lossy_first_applies(policy: SitePolicy, priority: str) -> bool:
    """Whether a study of this priority goes first lossy, its lossless version after."""
    return policy.lossy_first == "always" or (
        policy.lossy_first == "urgent" and priority in URGENT_PRIORITIES
    )


def stand_in_uid(original_sop_uid: str) -> str:
    """The SOP Instance UID of the lossy stand-in sent ahead of `original_sop_uid`.

    Derived from the original alone, so the centre recognises the pair without trusting
    anything the file says: when the original arrives, it replaces the instance with this UID
    (ingest.services / studies.services do it, for the same site only)."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[original_sop_uid, "joliba-lossy-first"])


def _stand_in_ratio(src: Path, policy: SitePolicy) -> tuple[float, str] | None:
    import pydicom

    head = pydicom.dcmread(src, stop_before_pixels=True)
    if str(head.file_meta.get("TransferSyntaxUID", "")) not in UNCOMPRESSED:
        return None  # already compressed (lossy ones are never transcoded again)
    target = lossy_target(head, policy.lossy_ratios)
    return (target, str(head.SOPInstanceUID)) if target else None


def has_stand_in(src: Path, policy: SitePolicy) -> bool:
    try:
        return _stand_in_ratio(src, policy) is not None
    except Exception:  # unreadable here: it goes lossless (or is reported) as usual
        return False


def compress_stand_in(src: Path, out: Path, policy: SitePolicy) -> Compressed | None:
    """The lossy stand-in of an uncompressed image at its guideline ratio, or None when there
    is none to make (already compressed, no ratio for the modality, not encodable)."""
    found = _stand_in_ratio(src, policy)
    if found is None:
        return None
    target, sop = found
    try:
        return compress_lossy(src, out, target, sop_uid=stand_in_uid(sop))
    except Exception:  # colour, odd bits: this one goes lossless only
        return None


def compress_lossy(src: Path, out: Path, ratio: float, *, sop_uid: str | None = None) -> Compressed:
    """JPEG 2000 irreversible at `ratio` measured against the stored 16-bit container.

    pydicom's j2k_cr counts against Bits Stored, so it is scaled: 10:1 on a 10-bit image
    stored in 16 bits asks the encoder for 6.25:1. New SOP Instance UID (`sop_uid` when given):
    this is a new image.
    """
    import pydicom
    from pydicom.uid import JPEG2000, generate_uid

    raw_size = src.stat().st_size
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array
    container = arr.size * int(ds.BitsAllocated) // 8
    frames = int(ds.get("NumberOfFrames") or 1)
    cr = ratio * int(ds.BitsStored) / int(ds.BitsAllocated)
    for _attempt in range(3):
        trial = pydicom.dcmread(src)
        trial.compress(JPEG2000, arr, j2k_cr=[cr], encoding_plugin="pylibjpeg")
        measured = container / max(len(trial.PixelData) - 8 * (frames + 1), 1)
        if abs(measured - ratio) / ratio < 0.1:
            break
        cr *= ratio / measured  # the encoder misses with headers; correct once or twice
    ds = trial
    original_sop = str(ds.SOPInstanceUID)
    ds.SOPInstanceUID = sop_uid or generate_uid(entropy_srcs=[original_sop, "joliba-lossy", f"{ratio:g}"])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [f"{measured:.2f}"[:16]]
    ds.LossyImageCompressionMethod = ["ISO_15444_1"]
    image_type = list(ds.get("ImageType", ["ORIGINAL", "PRIMARY"]))
    ds.ImageType = ["DERIVED", *image_type[1:]] if image_type else ["DERIVED", "PRIMARY"]
    ds.DerivationDescription = f"Compression irréversible JPEG 2000 {measured:.1f}:1 (Joliba)"[:1024]
    _write_durably(ds, out)
    return Compressed(out, "j2k-lossy", raw_size, out.stat().st_size, str(ds.SOPInstanceUID), measured)


def compress_for_link(src: Path, out: Path, policy: SitePolicy | None = None) -> Compressed:
    """What the site sends for one file, according to its policy."""
    import pydicom

    policy = policy or SitePolicy()
    head = pydicom.dcmread(src, stop_before_pixels=True)
    modality = str(head.get("Modality", ""))
    ts = str(head.file_meta.get("TransferSyntaxUID", ""))
    if policy.mode == "lossy" and ts in UNCOMPRESSED:
        target = lossy_target(head, policy.lossy_ratios)
        if target:
            try:
                return compress_lossy(src, out, target)
            except Exception:  # not encodable lossy (colour, odd bits): lossless instead
                pass
    return compress_losslessly(
        src,
        out,
        policy.lossless_codecs.get(modality, "jpegls"),
        use_jpegxl=policy.jpegxl,
        link_bytes_per_s=policy.link_bytes_per_s,
        pipelined=policy.encode_while_sending,
    )


def image_error(original: Path, compressed: Path) -> dict[str, float]:
    """Max absolute error and PSNR (against the stored bit depth) of a transcoded image."""
    import numpy as np
    import pydicom

    a = pydicom.dcmread(original)
    b = pydicom.dcmread(compressed)
    x, y = a.pixel_array.astype(np.float64), b.pixel_array.astype(np.float64)
    err = x - y
    mse = float(np.mean(err**2))
    peak = float(2 ** int(a.BitsStored) - 1)
    psnr = float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
    return {"max_error": float(np.max(np.abs(err))), "psnr_db": round(psnr, 2)}
