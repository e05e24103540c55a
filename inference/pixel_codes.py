"""The one set of pixel-refusal codes, shared by the ingest validator and the pre-read.

Deliberately free of numpy and pydicom: the platform's DICOM validator child process imports it
before it reads anything. A code is a stable string stored in the database; the sentence shown
to a person is rendered from it (and its parameters) by the platform's translations.
"""

from __future__ import annotations

from enum import StrEnum


class PixelCode(StrEnum):
    # Both sides (ingest validator, pre-read):
    NO_PIXELS = "no_pixels"  # an image header (Rows/Columns) but no pixel data
    NOT_IMAGE = "not_image"  # no pixel data and no image header: a report, a plan, a structure set
    BAD_PIXEL_DESCRIPTION = "bad_pixel_description"  # rows, columns, bits or samples missing/invalid
    TOO_LARGE = "too_large"  # the declared size exceeds the limit: refused before decoding
    TRUNCATED = "truncated"  # fewer pixel bytes than the header declares
    UNSUPPORTED_CODEC = "unsupported_codec"  # no decoder installed for the transfer syntax
    UNDECODABLE = "undecodable"  # the decoder failed on the pixel data (broken codestream)
    # Pre-read only (the archive accepts these; a radiograph model does not):
    MULTI_FRAME = "multi_frame"
    NOT_GREYSCALE = "not_greyscale"


PREREAD_ONLY: frozenset[PixelCode] = frozenset({PixelCode.MULTI_FRAME, PixelCode.NOT_GREYSCALE})
