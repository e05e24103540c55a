"""Refusals and warnings as values: a stable code plus language-neutral parameters.

The platform stores `Reason.to_dict()` ({"code", "params"}) and renders the sentence when it
shows it, through its own translations (the .po files are the one source of French). The
English table below is for logs, the command line and the .po msgids; `Reason.en` uses it.
Every code the library emits is a key of `MESSAGES_EN` (a test enumerates them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from inference.pixel_codes import PixelCode

Param = str | int | float

_MESSAGES: dict[str, str] = {
    # Reading the file
    "unreadable": "Unreadable DICOM file (%(error)s).",
    # Pixels (codes shared with the ingest validator: inference.pixel_codes.PixelCode)
    PixelCode.NO_PIXELS: "The file holds no image (no pixel data, or an interrupted transfer). "
    "Send the study again.",
    PixelCode.NOT_IMAGE: "This DICOM file holds no image to read.",
    PixelCode.BAD_PIXEL_DESCRIPTION: "Incomplete or invalid image description "
    "(rows, columns, bits allocated or samples per pixel).",
    PixelCode.TOO_LARGE: "Image too large (%(columns)s×%(rows)s, %(frames)s frame(s); limit "
    "%(max_pixels)s pixels): refused without decoding.",
    PixelCode.TRUNCATED: "Truncated pixel data (%(actual_bytes)s of %(expected_bytes)s bytes): "
    "interrupted transfer? Send the study again.",
    PixelCode.UNSUPPORTED_CODEC: "Unsupported compression (%(transfer_syntax)s).",
    PixelCode.UNDECODABLE: "The image could not be decoded (%(transfer_syntax)s, %(error)s): damaged file?",
    PixelCode.MULTI_FRAME: "Multi-frame image (%(frames)s frames): not a plain radiograph.",
    PixelCode.NOT_GREYSCALE: "Photometric interpretation '%(photometric)s': not a grey-level radiograph.",
    # Scope: is this image what the model was made for?
    "not_human": "Veterinary study (%(species)s): the model is meant for human patients.",
    "modality_unknown": "Modality missing from the header: the model could not check it.",
    "wrong_modality": "Modality %(modality)s is outside the model's scope (%(allowed)s).",
    "body_part_unknown": "Body part not stated in the header: check that the image is one the "
    "model is meant for (%(allowed)s).",
    "wrong_body_part": "Body part %(body_part)s is outside the model's scope (%(allowed)s).",
    "wrong_view": "View %(view)s is outside the model's scope (%(allowed)s).",
    "age_unknown": "Patient age unknown: the model %(model)s is meant for patients aged "
    "%(age_range)s years, and the image carries no age (Patient's Age, or birth and study dates).",
    "outside_population": "Patient aged %(age_years)s years, outside the intended population of "
    "the model %(model)s (aged %(age_range)s years).",
    # Technical quality (inference.quality)
    "colour_image": "Colour image (%(photometric)s): a radiograph is grey-level (a photographed film?).",
    "tiny_matrix": "Very small image (%(columns)s×%(rows)s pixels): fine detail cannot be read.",
    "blank_image": "Blank or near-uniform image: nothing to read.",
    "clipped": "%(percent)s %% of pixels saturated: burnt-out areas, detail lost.",
    "underexposed_or_dark": "Very dark image (overexposed film or unsuitable window).",
    "overexposed_or_light": "Very light image (underexposed, or inverted photometric interpretation?).",
    "window_ignored": "The window in the header (centre %(centre)s, width %(width)s) covers "
    "%(coverage_percent)s %% of the pixels: shown with a stretch of the image's own range instead.",
    # Models
    "no_model": "No AI model is enabled for this study.",
    "model_failed": "The model could not analyse the image (%(error)s).",
    "invalid_manifest": "Invalid model specification (manifest.json): %(error)s.",
    "hash_mismatch": "The model file does not match its specification (sha256 %(actual)s… instead "
    "of %(expected)s…): model refused.",
}
# Plain-string keys (a PixelCode is a str, but the table is read by code that should not care).
MESSAGES_EN: dict[str, str] = {str(code): text for code, text in _MESSAGES.items()}


@dataclass(frozen=True)
class Reason:
    """Why an input was refused, or what the radiologist should know about a scored one."""

    code: str
    params: Mapping[str, Param] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A PixelCode is stored as its plain value; params are copied so the caller's dict
        # cannot change a reason after the fact.
        object.__setattr__(self, "code", str(self.code))
        object.__setattr__(self, "params", dict(self.params))

    @property
    def en(self) -> str:
        """English sentence for logs and the command line (never stored, never shown in a page)."""
        return render_en(self.code, self.params)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "params": dict(self.params)}


def render_en(code: str, params: Mapping[str, Param]) -> str:
    template = MESSAGES_EN.get(code)
    if template is None:
        return f"{code} {dict(params)}" if params else code
    try:
        return template % dict(params)
    except (KeyError, TypeError, ValueError):  # a parameter missing: still say something useful
        return f"{template} {dict(params)}"


class Refused(Exception):
    """Raised inside the library for an input it will not score; callers get `.reason`."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(f"{reason.code}: {reason.en}")
        self.reason = reason


def refuse(code: str, **params: Param) -> Refused:
    return Refused(Reason(code, params))
