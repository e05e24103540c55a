"""The report editor on the reading page: its form, filled from the saved draft or the AI draft."""

from typing import Any

from django import template

from preread.selectors import current_preread
from studies.models import Study

from ..forms import ReportForm
from ..models import Report

register = template.Library()


@register.inclusion_tag("reports/_editor.html", takes_context=True)
def report_editor(context: template.Context, study: Study) -> dict[str, Any]:
    report = Report.objects.filter(study=study).first()
    ai = current_preread(study)
    draft = ai.draft_body if ai and ai.is_scored else ""
    if report:
        initial = {"findings": report.findings, "conclusion": report.conclusion}
    else:  # the AI draft is where the radiologist starts; the label stays until they edit it
        initial = {"findings": draft} if draft else {}
    form = ReportForm(initial=initial)
    return {
        "study": study,
        "form": form,
        "report": report,
        "ai": ai,
        "ai_draft_unedited": bool(draft) and (initial.get("findings") or "").strip() == draft.strip(),
        "csrf_token": context.get("csrf_token"),
    }
