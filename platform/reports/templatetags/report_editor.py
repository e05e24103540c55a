"""The report editor on the reading page, and the report part of the site's study page."""

from typing import Any

from django import template

from accounts.models import User
from studies import access
from studies.models import Study

from ..forms import ReportForm
from ..models import SECTIONS, Provenance, Report, ReportTemplate, VersionKind
from ..services import ai_draft_of, new_draft, section_provenance

register = template.Library()


@register.inclusion_tag("reports/_editor.html", takes_context=True)
def report_editor(context: template.Context, study: Study) -> dict[str, Any]:
    user = context["request"].user
    report = Report.objects.filter(study=study).first()
    draft = report or new_draft(study, author=user if isinstance(user, User) else None)  # type: ignore[arg-type]
    ai = ai_draft_of(study)
    initial = {name: getattr(draft, name) for name in SECTIONS}
    initial.update(
        template=draft.template_id,
        language=draft.language,
        critical_category=draft.critical_category,
        abnormality=draft.abnormality,
    )
    findings_source = section_provenance(draft.findings, ai)
    return {
        "study": study,
        "form": ReportForm(initial=initial),
        "report": report,
        "template_name": draft.template.name(draft.language) if draft.template else "",
        "has_templates": ReportTemplate.objects.filter(active=True).exists(),
        "ai": ai,
        "ai_in_findings": findings_source != Provenance.RADIOLOGIST,
        "ai_unedited": findings_source.startswith(f"{Provenance.AI}:"),
        "signed_before": report is not None and report.is_signed,
        "csrf_token": context.get("csrf_token"),
    }


@register.inclusion_tag("reports/_study_report.html", takes_context=True)
def study_report(context: template.Context, study: Study) -> dict[str, Any]:
    """On the study page: whether there is a report to open, its versions and the turnaround.
    The text itself is on the report's page (opening it there is what counts as delivered)."""
    user = context["request"].user
    report = Report.objects.filter(study=study).first()
    versions = list(report.versions.order_by("number")) if report else []
    signed = bool(versions)
    visible = bool(report) and access.may_see_report(user, study, signed=signed)
    return {
        "study": study,
        "report": report if visible else None,
        "versions": versions if visible else [],
        "latest": versions[-1] if visible and versions else None,
        "first": versions[0] if visible and versions else None,
        "amended": any(v.kind != VersionKind.ORIGINAL for v in versions),
        "show_ai": access.may_see_ai_output(user),
    }
