"""The reading page's actions part, drawn with its own context (the read view stays small)."""

from __future__ import annotations

from typing import Any

from django import template

from studies import access
from studies.models import ReturnReason, Study

from .. import opinions, priors
from ..load import colleagues_for

register = template.Library()


@register.inclusion_tag("assignment/_reading_actions.html", takes_context=True)
def reading_actions(context: template.Context, study: Study) -> dict[str, Any]:
    user = context["request"].user
    holder = access.holds(user, study)
    colleagues = colleagues_for(study, besides=user) if holder else []
    return {
        "study": study,
        "holder": holder,
        "return_reasons": ReturnReason.choices,
        "colleagues": colleagues,
        "priors": priors.priors_for(study, user=user),
        "suggestions": priors.suggestions_for(study, user=user),
        "opinions": opinions.opinions_on(study, user=user),
        "csrf_token": context.get("csrf_token"),
    }


@register.simple_tag(takes_context=True)
def opinions_waiting(context: template.Context) -> int:
    """How many second opinions wait for this radiologist (the header's link)."""
    user = context["request"].user
    return opinions.waiting_for(user) if access.may_read_studies(user) else 0


@register.filter
def dicom_date(value: str) -> str:
    """A DICOM date (YYYYMMDD) as people read it (DD/MM/YYYY); anything else as it is."""
    value = (value or "").strip()
    if len(value) == 8 and value.isdigit():
        return f"{value[6:]}/{value[4:6]}/{value[:4]}"
    return value
