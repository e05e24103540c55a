from django import template

from preread.models import PreRead
from preread.selectors import current_preread, image_results_by_instance

register = template.Library()


@register.simple_tag
def current_ai(study) -> PreRead | None:
    """The study's current pre-read (views that already have it pass `ai` themselves)."""
    cached = getattr(study, "ai", None)
    return cached if cached is not None else current_preread(study)


@register.filter
def get_item(mapping: dict, key):
    return mapping.get(key) if mapping else None


@register.simple_tag
def ai_results_of(ai: PreRead | None) -> dict:
    return image_results_by_instance(ai)
