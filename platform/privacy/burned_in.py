"""Whether an instance may carry text burned into its pixels (a patient's name on an ultrasound
screen, a photographed film, a screenshot): de-identification of the header cannot remove it, so
the study is flagged and a person must look before the images leave as "de-identified".

An instance may carry burned-in annotations when it says so (Burned In Annotation = YES), when its
modality is one whose images usually do (US, SC, OT, XC, ES), when its Image Type says it is a
secondary or a screen save, or when its SOP class is a secondary capture.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MODALITIES = frozenset({"US", "SC", "OT", "XC", "ES"})
IMAGE_TYPES = frozenset({"SECONDARY", "SCREEN SAVE"})
SECONDARY_CAPTURE_CLASSES = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
        "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
        "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
        "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
        "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    }
)


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip().upper() for v in value.split("\\")]
    try:
        return [str(v).strip().upper() for v in value]
    except TypeError:
        return [str(value).strip().upper()]


def may_carry_burned_in(tags: Mapping[str, Any] | Any) -> bool:
    """`tags`: a pydicom Dataset or Orthanc's simplified tags (keyword → value)."""
    get = tags.get

    def text(keyword: str) -> str:
        value = get(keyword)
        return "" if value is None else str(value).strip().upper()

    if text("BurnedInAnnotation") == "YES":
        return True
    if text("Modality") in MODALITIES:
        return True
    if IMAGE_TYPES & set(_values(get("ImageType"))):
        return True
    return text("SOPClassUID") in SECONDARY_CAPTURE_CLASSES
