"""Logs without patient data: a filter on every handler, and JSON lines in production.

The platform's own log calls name primary keys, codes and sizes only (DESIGN.md). What can still
carry a patient's facts into a log line is text others wrote: a database error's DETAIL
("Key (patient_id)=(…)", "Failing row contains (…)"), a DICOM dataset or element printed in an
exception or a traceback ("(0010,0010) Patient's Name PN: 'DIARRA^AMADOU'"), a name in DICOM's
caret form, a `patient_name=…` pair in a library's message, or an `extra={…}` field. The filter
rewrites those in the message, its arguments, the traceback text and the extra fields, before any
handler formats the record. Imported by settings.py: nothing from Django here.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[masqué]"

# Field names that hold a patient's identity (DICOM keywords, the platform's columns, common spellings).
PATIENT_KEYS = (
    r"patient_?name|patient_?id|patient_?birth_?date|birth_?date|date_of_birth|dob|patient_?sex|"
    r"other_?patient_?ids|other_?patient_?names|patients?_?name|patient'?s name|patient id|"
    r"patient'?s birth date|patient_?address|patient_?telephone_?numbers|mother_?s_?birth_?name|"
    r"responsible_?person|accession_?number"
)
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # PostgreSQL's DETAIL lines carry the values of the row or the key.
    (re.compile(r"(Failing row contains )\(.*?\)(?=\.?(\s|$))", re.S), rf"\1({REDACTED})"),
    (re.compile(r"(Key \([^)]*\)=)\(.*?\)(?= )", re.S), rf"\1({REDACTED})"),
    # A DICOM element of the patient group (0010,xxxx), as pydicom prints it, to the end of the line.
    (re.compile(r"\(0010,\s*[0-9A-Fa-f]{4}\)[^\n]*"), f"(0010,xxxx) {REDACTED}"),
    # key=value / key: value / 'key': 'value' pairs naming a patient field.
    (
        re.compile(rf"""(?i)(["']?\b(?:{PATIENT_KEYS})\b["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^,;)}}\]\s]+)"""),
        rf"\1{REDACTED}",
    ),
    # A person name in DICOM's caret form (FAMILY^GIVEN^…): see _caret_name.
    (re.compile(r"[^\s=:,;()\[\]{}'\"<>]*\^[^\s,;()\[\]{}'\"<>]*"), ""),
]
_LETTER = re.compile(r"[^\W\d_]")


def _caret_name(match: re.Match[str]) -> str:
    """A name in caret form has letters; a run of carets alone is Python's traceback marker."""
    return REDACTED if _LETTER.search(match.group(0)) else match.group(0)


_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_KEY = re.compile(rf"(?i)^(?:{PATIENT_KEYS})$")


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement or _caret_name, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {k: REDACTED if _KEY.match(str(k)) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return redact(str(value))  # an object's str() might print its fields: rendered, then redacted


class RedactPatientData(logging.Filter):
    """Rewrites the record in place (message with its arguments, traceback, extra fields); never
    drops it: a log line with its values masked is still a log line an operator needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 — a bad format string: keep what there is
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info:
            # Format the traceback now (redacted), so no handler formats the raw one again.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key in set(vars(record)) - _STANDARD:
            value = getattr(record, key)
            setattr(record, key, REDACTED if _KEY.match(key) else _redact_value(value))
        return True


def logging_config(*, json_lines: bool, level: str) -> dict[str, Any]:
    """settings.LOGGING: one console handler (journald / docker logs read it), the redaction
    filter on it, JSON lines (python-json-logger) when asked for."""
    formatter: dict[str, Any] = (
        {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        }
        if json_lines
        else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_patient_data": {"()": "health.logs.RedactPatientData"}},
        "formatters": {"joliba": formatter},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["redact_patient_data"],
                "formatter": "joliba",
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "WARNING"}},
    }
