"""DICOM values on the pages written for people (studies.formatting): names, dates, sex."""

from django import template
from django.utils.translation import get_language

from studies import formatting

register = template.Library()


def _language() -> str:
    return "en" if (get_language() or "fr").startswith("en") else "fr"


@register.filter
def person_name(pn: str) -> str:
    return formatting.person_name(pn)


@register.filter
def da_date(da: str) -> str:
    return formatting.dicom_date(da, _language())


@register.filter
def sex_label(code: str) -> str:
    return formatting.sex_label(code, _language())
