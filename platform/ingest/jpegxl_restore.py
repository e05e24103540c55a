"""JPEG XL as it arrives from a site, made into what the archive stores: runs in the checker child.

Orthanc 1.10 and today's viewers cannot decode JPEG XL, so nothing downstream ever sees it:

- JPEG XL Lossless (1.2.840.10008.1.2.4.110): every frame is decoded (its codestream header
  checked against Rows/Columns first, so a codestream declaring a larger image takes no memory
  for it), the pixels checked against the DICOM header (frames, samples, Bits Stored), and the
  whole re-encoded as JPEG-LS lossless (…4.80), or JPEG 2000 lossless (…4.90) when JPEG-LS cannot
  take it; the re-encoded pixel data is decoded again and must equal the JPEG XL's.
- JPEG XL JPEG Recompression (…4.111): every frame is restored to its original JPEG, bit for
  bit, and the file becomes JPEG baseline (…4.50) again.
- JPEG XL (…4.112, possibly lossy) is refused: the centre does not store what it cannot verify.

The wire format (offset binary for signed pixels, one codestream per frame, the SHA-256 of the
site's pixels in a private element that is removed here) is siteagent.jpegxl's, the one
definition both ends use. A file that fails any step is refused with a code of `JpegXLCode`;
nothing of it is stored. What is stored is what was verified: the JPEG-LS is decoded back here
(ingest.pixel_decode first, pydicom when that does not prove it); a restored JPEG is decoded by
the checker as every file is (dicom_check._check_pixels), since the site's JPEG itself may not
decode.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from siteagent import jpegxl
from siteagent.jpegxl import JPEGXL_LOSSLESS

from .pixel_decode import fast_frames

__all__ = ["JPEGXL_LOSSLESS", "JpegXLCode", "NotVerified", "is_jpegxl", "restore"]


class JpegXLCode(StrEnum):
    CORRUPT = "jpegxl_corrupt"  # a codestream that does not decode, or decodes to other pixels
    MISMATCH = "jpegxl_mismatch"  # decodes, but not to the image the DICOM header describes
    UNSUPPORTED = "jpegxl_unsupported"  # a kind of JPEG XL the centre does not take


class NotVerified(Exception):
    def __init__(self, code: JpegXLCode, **params: object) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


def _detail(exc: BaseException) -> str:
    return f"{exc.__class__.__name__}: {str(exc)[:160]}"


def is_jpegxl(transfer_syntax: str) -> bool:
    return transfer_syntax in jpegxl.JPEGXL_SYNTAXES


def _codestreams(ds: Any, frames: int) -> list[bytes]:
    from pydicom.encaps import generate_frames

    try:
        streams = list(generate_frames(ds.PixelData, number_of_frames=frames))
    except Exception as exc:  # a fragment table that does not add up
        raise NotVerified(JpegXLCode.CORRUPT, detail=_detail(exc)) from None
    if len(streams) != frames:
        raise NotVerified(JpegXLCode.MISMATCH, field=f"NumberOfFrames {frames} / {len(streams)}")
    return streams


def restore(ds: Any) -> str:
    """Replace `ds`'s JPEG XL pixel data by a standard syntax's, in place; returns the JPEG XL
    transfer syntax it arrived in. The declared size was checked by the caller (MAX_PIXEL_BYTES)."""
    jpegxl.register_uids()
    wire = str(ds.file_meta.TransferSyntaxUID)
    if wire == jpegxl.JPEGXL_ANY:
        raise NotVerified(JpegXLCode.UNSUPPORTED, detail="JPEG XL (1.2.840.10008.1.2.4.112)")
    digest = jpegxl.take_digest(ds)
    if not digest:  # not from a Joliba agent: nothing to verify the decoded pixels against
        raise NotVerified(JpegXLCode.UNSUPPORTED, detail="no pixel digest")
    layout = jpegxl.PixelLayout.of(ds)
    streams = _codestreams(ds, layout.frames)
    for stream in streams:  # every header before any decoding: no allocation for a lie
        try:
            width, height = jpegxl.codestream_dimensions(stream)
        except Exception as exc:
            raise NotVerified(JpegXLCode.CORRUPT, detail=_detail(exc)) from None
        if (width, height) != (layout.columns, layout.rows):
            raise NotVerified(JpegXLCode.MISMATCH, field=f"{width}x{height} / {layout.columns}x{layout.rows}")
    if wire == jpegxl.JPEGXL_JPEG_RECOMPRESSION:
        _restore_jpeg(ds, streams, layout, digest)
    else:
        _reencode_lossless(ds, streams, layout, digest)
    return wire


def _restore_jpeg(ds: Any, streams: list[bytes], layout: jpegxl.PixelLayout, digest: str) -> None:
    from pydicom.encaps import encapsulate

    try:
        jpegs = [jpegxl.restore_jpeg(s) for s in streams]
    except Exception as exc:
        raise NotVerified(JpegXLCode.CORRUPT, detail=_detail(exc)) from None
    if jpegxl.frames_digest(jpegs) != digest:
        raise NotVerified(JpegXLCode.CORRUPT, detail="JPEG frames differ from the site's (SHA-256)")
    ds.PixelData = encapsulate(jpegs, has_bot=layout.frames > 1)
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = jpegxl.JPEG_BASELINE


def _reencode_lossless(ds: Any, streams: list[bytes], layout: jpegxl.PixelLayout, digest: str) -> None:
    import numpy as np

    why = layout.unsupported(str(ds.get("PhotometricInterpretation", "")))
    if why:
        raise NotVerified(JpegXLCode.UNSUPPORTED, detail=why)
    frames = []
    for stream in streams:
        try:
            frames.append(jpegxl.decode_frame(stream, layout))
        except MemoryError:
            raise
        except ValueError as exc:  # decodes, but not to what the header says (shape, bits)
            raise NotVerified(JpegXLCode.MISMATCH, field=str(exc)[:160]) from None
        except Exception as exc:  # libjxl's own refusal
            raise NotVerified(JpegXLCode.CORRUPT, detail=_detail(exc)) from None
    pixels = frames[0] if layout.frames == 1 else np.stack(frames)
    if jpegxl.pixel_digest(pixels, layout) != digest:
        raise NotVerified(JpegXLCode.CORRUPT, detail="decoded pixels differ from the site's (SHA-256)")
    errors = []
    for name in ("jpegls", "j2k"):
        try:
            _compress(ds, pixels, name)
            return
        except Exception as exc:  # this codec cannot take the image: the next one
            errors.append(f"{name}: {_detail(exc)}")
    raise NotVerified(JpegXLCode.UNSUPPORTED, detail="; ".join(errors)[:160])


def _compress(ds: Any, pixels: Any, codec: str) -> None:
    """Re-encode `pixels` into `ds` with a standard lossless codec, proven by decoding it back."""
    import copy
    import io

    import numpy as np
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless

    trial = copy.deepcopy(ds)
    trial.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    trial.compress(
        JPEGLSLossless if codec == "jpegls" else JPEG2000Lossless,
        pixels,
        encoding_plugin="pyjpegls" if codec == "jpegls" else "pylibjpeg",
        generate_instance_uid=False,  # the same instance, only its pixel encoding changes
    )
    buffer = io.BytesIO()
    trial.save_as(buffer, enforce_file_format=True)
    stored = pydicom.dcmread(io.BytesIO(buffer.getvalue()))
    # CharLS / OpenJPEG straight on the codestreams (4 times faster on the cat DX) prove it when
    # they give these very samples; any other answer goes to pydicom's decoding.
    fast = fast_frames(stored)
    if fast is None or not _same_samples(np.stack(fast), pixels):
        if not np.array_equal(stored.pixel_array, pixels):
            raise ValueError("re-encoded pixels differ")
    ds.PixelData = trial.PixelData
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.file_meta.TransferSyntaxUID = trial.file_meta.TransferSyntaxUID
    for tag in ("PlanarConfiguration",):  # the encoder may set what the new encoding needs
        if tag in trial:
            ds[tag] = trial[tag]


def _same_samples(decoded: Any, pixels: Any) -> bool:
    """The codec's raw samples are `pixels`. Signed pixels come back as their unsigned bit
    patterns: read as signed, they match when the samples fill their words (16-bit CT); other
    signed widths do not, and pydicom (which extends the sign) decides."""
    import numpy as np

    if decoded.size != pixels.size:
        return False
    decoded = decoded.reshape(pixels.shape)
    if (
        pixels.dtype.kind == "i"
        and decoded.dtype.kind == "u"
        and decoded.dtype.itemsize == pixels.dtype.itemsize
    ):
        decoded = decoded.view(pixels.dtype)
    return bool(np.array_equal(decoded, pixels))
