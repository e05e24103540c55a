"""Decode every frame of a file's pixel data, to prove it decodes: runs in the checker child.

pydicom's own decoding path (its plugins, then its per-frame conversions) is what says whether a
file's pixels are readable, and it stays the judge. It is slow on the compressed syntaxes that
sites send: 0.45 s for a 3.8-megapixel JPEG-LS CR. The same codestreams go first to imagecodecs
(CharLS, OpenJPEG; already the centre's JPEG XL codec), frame by frame: JPEG-LS 4 times faster,
JPEG 2000 on two threads. A frame it decodes to the image the header describes (rows, columns,
samples, a sample wide enough for Bits Allocated) passes; anything else, a codec error included,
is handed to pydicom, whose answer is the verdict, as before.
"""

from __future__ import annotations

import os
from typing import Any

# The syntaxes imagecodecs decodes frame by frame, and the function it does it with. Not JPEG
# baseline nor lossless (…4.50, …4.57, …4.70): libjpeg-turbo decodes a stream with flipped bytes
# that pydicom's decoder refuses (tests/test_pixel_decode.py).
_FAST = {
    "1.2.840.10008.1.2.4.80": "jpegls_decode",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "jpegls_decode",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90": "jpeg2k_decode",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91": "jpeg2k_decode",  # JPEG 2000
}


# Syntaxes whose every frame is one JPEG-family codestream, closed by an end marker: EOI for JPEG
# and JPEG-LS, EOC for JPEG 2000 and HTJ2K, both FF D9. Neither code can occur inside their
# entropy-coded data, so a frame without it in its last bytes was cut short.
_END_MARKED = {
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
}
END_MARKER = b"\xff\xd9"
# Writers pad after the marker (0x00 or 0xFF to an even length) and some leave a few bytes more:
# the 96-frame XA of the test set has up to 4. Every compressed image there has it within 6.
END_MARKER_WITHIN = 16


def _threads() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _decoder(name: str) -> Any:
    import imagecodecs

    function = getattr(imagecodecs, name)
    if name == "jpeg2k_decode":
        return lambda data: function(data, numthreads=_threads())
    return function


def _fits(frame: Any, rows: int, columns: int, samples: int, bits_allocated: int) -> bool:
    expected = (rows, columns) if samples == 1 else (rows, columns, samples)
    return tuple(frame.shape) == expected and frame.dtype.itemsize * 8 >= min(bits_allocated, 16)


def fast_frames(ds: Any) -> list[Any] | None:
    """Every frame, decoded with imagecodecs to the image the header describes; or None.

    None means "not proven here" (an unknown syntax, a codec error, another shape), not
    "undecodable": the caller asks pydicom then. The frames are the codec's raw samples (no
    sign extension, no modality LUT).
    """
    from pydicom.encaps import generate_frames

    name = _FAST.get(str(ds.file_meta.get("TransferSyntaxUID", "")))
    if name is None:
        return None
    rows, columns = int(ds.Rows), int(ds.Columns)
    count = int(ds.get("NumberOfFrames") or 1)
    samples = int(ds.get("SamplesPerPixel") or 1)
    bits = int(ds.BitsAllocated)
    try:
        decode = _decoder(name)
        frames = []
        for stream in generate_frames(ds.PixelData, number_of_frames=count):
            frame = decode(stream)
            if not _fits(frame, rows, columns, samples, bits):
                return None
            frames.append(frame)
        return frames if len(frames) == count else None
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - any codec failure: pydicom decides
        return None


def decodes_fast(ds: Any) -> bool:
    """Whether every frame decodes, with imagecodecs, to the image the header describes."""
    return fast_frames(ds) is not None


def first_cut_frame(ds: Any) -> int | None:
    """The number (from 1) of the first frame whose codestream lacks its end marker, or None.

    CharLS and pydicom's JPEG decoders return an image for a codestream cut in half (OpenJPEG
    refuses one): without this, a partial image would reach the archive.
    """
    from pydicom.encaps import generate_frames

    if str(ds.file_meta.get("TransferSyntaxUID", "")) not in _END_MARKED:
        return None
    frames = int(ds.get("NumberOfFrames") or 1)
    for number, stream in enumerate(generate_frames(ds.PixelData, number_of_frames=frames), start=1):
        if END_MARKER not in stream[-END_MARKER_WITHIN:]:
            return number
    return None


def decode_all(ds: Any) -> None:
    """Decode every frame once; raises what pydicom raises for pixels it cannot read."""
    if not decodes_fast(ds):
        ds.pixel_array  # noqa: B018 - pydicom's decoding is the verdict
