"""DICOM values written for people: a person name (PN) and a date (DA) as a report prints them.

`COULIBALY^Awa` is « COULIBALY Awa » (family name first, in capitals, as French hospital papers
write it), `20220314` is « 14/03/2022 ». A value that does not parse is returned as it came
(trimmed), never dropped: a wrong-looking date on paper is better than a missing one.
Plain Python, no Django: used by the PDF, the pages and the DICOM export alike.
"""

from __future__ import annotations

import re
from datetime import date

MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def person_name(pn: str) -> str:
    """A DICOM PN (family^given^middle^prefix^suffix, maybe with =ideographic=phonetic groups)
    as « Prefix FAMILY Given Middle, Suffix »."""
    text = (pn or "").strip()
    if not text:
        return ""
    group = text.split("=", 1)[0] or text.replace("=", " ")  # the alphabetic group
    parts = [" ".join(p.split()) for p in group.split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    words = [prefix, family.upper(), given, middle]
    name = " ".join(w for w in words if w)
    if suffix:
        name = f"{name}, {suffix}" if name else suffix
    return name or text.replace("^", " ").strip()


def parse_dicom_date(da: str) -> date | None:
    """A DICOM DA (YYYYMMDD; the old YYYY.MM.DD too) as a date, or None."""
    digits = re.sub(r"[.\-/ ]", "", (da or "").strip())
    if not re.fullmatch(r"\d{8}", digits):
        return None
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        return None


def dicom_date(da: str, language: str = "fr") -> str:
    """« 14/03/2022 » (French) or « 14 Mar 2022 » (English); unparseable values as they came."""
    day = parse_dicom_date(da)
    if day is None:
        return (da or "").strip()
    if language == "en":
        return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"
    return day.strftime("%d/%m/%Y")


def age_on(birth_da: str, on_da: str) -> int | None:
    """Age in whole years on the exam date, when both dates parse."""
    birth, on = parse_dicom_date(birth_da), parse_dicom_date(on_da)
    if birth is None or on is None or on < birth:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


SEXES = {
    "fr": {"M": "masculin", "F": "féminin", "O": "autre"},
    "en": {"M": "male", "F": "female", "O": "other"},
}


def sex_label(code: str, language: str = "fr") -> str:
    return SEXES["en" if language == "en" else "fr"].get((code or "").strip().upper(), (code or "").strip())
