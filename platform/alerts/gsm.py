"""Fit a message in one SMS: GSM 03.38 (7-bit, 160 characters) where possible, UCS-2 only when needed.

French accents GSM-7 has (é è à ù ì ò É Ç) stay; those it lacks (ê â î ô û ë ï ç œ ...) become their
base letter, so a French alert costs one SMS instead of two or three UCS-2 parts (70 characters).
"""

from __future__ import annotations

import unicodedata

# The GSM 03.38 default alphabet, and its extension table (each costs two septets).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"
_BASIC = frozenset(GSM7_BASIC) - {"\x1b"}
_EXTENDED = frozenset(GSM7_EXTENDED)

# Typography a phone keyboard does not need.
_REPLACEMENTS = {
    "’": "'",
    "‘": "'",
    "«": '"',
    "»": '"',
    "“": '"',
    "”": '"',
    "–": "-",
    "—": "-",
    "…": "...",
    "\u00a0": " ",
    "\u202f": " ",
    "œ": "oe",
    "Œ": "OE",
    "ç": "c",  # GSM-7 has only the capital
    "→": "->",
    "×": "x",
}

SINGLE_GSM7 = 160
SINGLE_UCS2 = 70


def transliterate(text: str) -> str:
    """The text with every character GSM-7 lacks replaced by its closest GSM-7 spelling, where one
    exists (accents dropped); characters with no such spelling (Arabic, N'Ko...) are kept."""
    for space in (" ", "\u00a0", "\u202f"):  # French quotes keep their inner spaces: drop them too
        text = text.replace("«" + space, "«").replace(space + "»", "»")
    out = []
    for ch in text:
        if ch in _BASIC or ch in _EXTENDED:
            out.append(ch)
            continue
        ch = _REPLACEMENTS.get(ch, ch)
        if all(c in _BASIC or c in _EXTENDED for c in ch):
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        out.append(base if base and all(c in _BASIC for c in base) else ch)
    return "".join(out)


def is_gsm7(text: str) -> bool:
    return all(c in _BASIC or c in _EXTENDED for c in text)


def septets(text: str) -> int:
    """Length in GSM-7 septets (extension characters count twice)."""
    return sum(2 if c in _EXTENDED else 1 for c in text)


def encode_for_sms(text: str) -> tuple[str, str]:
    """(text, "gsm7" | "ucs2"): transliterated to GSM-7 when that loses only accents."""
    gsm = transliterate(text)
    if is_gsm7(gsm):
        return gsm, "gsm7"
    return text, "ucs2"


def segments(text: str) -> int:
    """How many SMS parts the text takes (153/67 per part once concatenated)."""
    if is_gsm7(text):
        n = septets(text)
        return 1 if n <= SINGLE_GSM7 else -(-n // 153)
    n = len(text.encode("utf-16-be")) // 2
    return 1 if n <= SINGLE_UCS2 else -(-n // 67)


def shorten_to_one_sms(text: str, keep_tail: str = "") -> str:
    """Cut `text` so that text + keep_tail fits one GSM-7 SMS (the tail: the code and the link)."""
    budget = SINGLE_GSM7 - septets(keep_tail)
    if septets(text) <= budget:
        return text + keep_tail
    out, used = [], 0
    for c in text:
        cost = 2 if c in _EXTENDED else 1
        if used + cost > budget - 1:
            break
        out.append(c)
        used += cost
    return "".join(out).rstrip() + "." + keep_tail
