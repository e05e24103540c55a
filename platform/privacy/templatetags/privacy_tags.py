from typing import Any

from django import template

from studies import access
from studies.models import Study

register = template.Library()


@register.inclusion_tag("privacy/_study_panel.html", takes_context=True)
def privacy_panel(context: dict[str, Any], study: Study) -> dict[str, Any]:
    """On the study page: the burned-in label (readers, admins) and the de-identified export link."""
    user = context["request"].user
    return {
        "study": study,
        "show_flag": access.may_see_burned_in_flag(user),
        "may_deidentify": access.may_deidentify(user, study),
    }
