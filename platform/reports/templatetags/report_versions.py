"""Filters for showing signed versions: people's names, durations, AI notes."""

from datetime import timedelta

from django import template

from studies.formatting import dicom_date
from studies.formatting import person_name as _person_name

from ..labels import duration as _duration
from ..models import SECTIONS, ReportVersion

register = template.Library()


@register.filter
def person_name(pn: str) -> str:
    return _person_name(pn)


@register.filter
def da_date(da: str) -> str:
    return dicom_date(da)


@register.filter
def duration(value: timedelta | None) -> str:
    return _duration(value.total_seconds()) if value else ""


@register.filter
def ai_note(version: ReportVersion, section: str) -> str:
    return version.ai_note(section)


@register.simple_tag
def version_sections(version: ReportVersion) -> list[tuple[str, str, str]]:
    return [(name, getattr(version, name), version.ai_note(name)) for name in SECTIONS]
