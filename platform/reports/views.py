from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from studies import access
from studies.access import get_study_for_user, signed_in
from studies.models import Study

from .forms import AmendForm, ReportForm, SignForm
from .models import SECTIONS, Report, VersionKind
from .pdf import report_pdf
from .services import (
    ai_draft_of,
    amend_report,
    change_template,
    needs_ai_acceptance,
    new_draft,
    open_report,
    provenance_of,
    save_report,
)

AUTOSAVE_HEADER = "HTTP_X_JOLIBA_AUTOSAVE"


def _draft_fields(form: ReportForm, post: Any) -> dict[str, Any]:
    """Only the fields the post carried: one left out leaves that part of the draft as it was."""
    fields = {
        name: form.cleaned_data[name]
        for name in (*SECTIONS, "language", "critical_category", "abnormality")
        if name in post
    }
    if not fields.get("language"):
        fields.pop("language", None)
    if form.cleaned_data.get("template") is not None:
        fields["template"] = form.cleaned_data["template"]
    return fields


@require_POST
@login_required
def edit_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The reading page's editor posts here: save the draft (also the autosave script), switch
    template, or ask to sign (which leads to the confirmation page). Nothing typed is lost."""
    study = get_study_for_user(request.user, pk)
    author = signed_in(request)
    autosave = AUTOSAVE_HEADER in request.META
    form = ReportForm(request.POST)
    if not form.is_valid():
        errors = [str(e[0]) for e in form.errors.values()]
        if autosave:
            return JsonResponse({"saved": False, "message": errors[0]}, status=400)
        for error in errors:
            messages.error(request, error)
        return redirect("read", pk=study.pk)
    fields = _draft_fields(form, request.POST)
    try:
        if "apply_template" in request.POST and fields.get("template") is not None:
            template = fields.pop("template")
            saved = save_report(study=study, author=author, **fields)
            change_template(study=study, author=author, template=template, language=saved.language)
            messages.success(request, _("Modèle appliqué."))
            return redirect("read", pk=study.pk)
        report = save_report(study=study, author=author, **fields)
    except PermissionDenied as exc:
        if autosave:
            return JsonResponse({"saved": False, "message": str(exc)}, status=403)
        raise
    except ValidationError as exc:
        if autosave:
            return JsonResponse({"saved": False, "message": exc.messages[0]}, status=400)
        messages.error(request, exc.messages[0])
        return redirect("read", pk=study.pk)
    saved_at = timezone.localtime(report.updated_at).strftime("%H:%M:%S")
    if autosave:
        return JsonResponse(
            {"saved": True, "message": _("Brouillon enregistré à %(time)s") % {"time": saved_at}}
        )
    if "sign" in request.POST:
        return redirect("report_sign", pk=study.pk)
    messages.success(request, _("Brouillon enregistré."))
    return redirect("read", pk=study.pk)


def _held_report(request: HttpRequest, pk: int) -> tuple[Study, Report]:
    study = get_study_for_user(request.user, pk)
    if not access.may_sign_reports(request.user, study):
        raise Http404
    report = Report.objects.filter(study=study).first() or new_draft(study, author=signed_in(request))
    return study, report


@never_cache
@login_required
def sign_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The confirmation step: what will be signed, where each part came from, the checkboxes."""
    study, report = _held_report(request, pk)
    ai = ai_draft_of(study)
    provenance = provenance_of({name: getattr(report, name) for name in SECTIONS}, ai)
    signed_before = bool(report.pk) and report.is_signed
    form = SignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            save_report(
                study=study,
                author=signed_in(request),
                sign=True,
                accept_ai=form.cleaned_data["accept_ai"],
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages[0])
        else:
            messages.success(request, _("Compte rendu signé et envoyé au site."))
            return redirect("worklist")
    return render(
        request,
        "reports/sign.html",
        {
            "study": study,
            "report": report,
            "form": form,
            "sections": [(name, getattr(report, name), provenance[name]) for name in SECTIONS],
            "needs_ai": needs_ai_acceptance(provenance),
            "ai": ai,
            "signed_before": signed_before,
        },
    )


@never_cache
@login_required
def amend(request: HttpRequest, pk: int) -> HttpResponse:
    """A new signed version of a signed report: an amendment or an addendum, with its reason."""
    study = get_study_for_user(request.user, pk)
    if not access.may_amend_report(request.user, study):
        raise Http404
    report = Report.objects.filter(study=study).first()
    latest = report.latest if report else None
    if latest is None:
        raise Http404
    initial = {name: getattr(latest, name) for name in SECTIONS}
    initial.update(kind=VersionKind.ADDENDUM, critical_category=latest.critical_category)
    form = AmendForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            amend_report(
                study=study,
                author=signed_in(request),
                kind=data["kind"],
                reason=data["reason"],
                sections={name: data[name] for name in SECTIONS if name in request.POST},
                addendum=data["addendum"],
                critical_category=data["critical_category"],
                accept_ai=data["accept_ai"],
            )
        except (ValidationError, PermissionDenied) as exc:
            form.add_error(None, exc.messages[0] if isinstance(exc, ValidationError) else str(exc))
        else:
            messages.success(request, _("Nouvelle version signée et envoyée au site."))
            return redirect("report", pk=study.pk)
    return render(
        request, "reports/amend.html", {"study": study, "report": report, "latest": latest, "form": form}
    )


@never_cache
@login_required
def report_page(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, pk)
    report = open_report(user=signed_in(request), study=study)
    versions = list(report.versions.select_related("author").order_by("number"))
    latest = versions[-1] if versions else None
    return render(
        request,
        "reports/report.html",
        {
            "study": study,
            "report": report,
            "latest": latest,
            "sections": [(n, getattr(latest, n), latest.ai_note(n)) for n in SECTIONS] if latest else [],
            "addenda": [v for v in versions if v.kind == VersionKind.ADDENDUM],
            "earlier": versions[:-1][::-1],
            "may_amend": bool(latest) and access.may_amend_report(request.user, study),
        },
    )


@never_cache
@login_required
def report_pdf_view(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, pk)
    report = open_report(user=signed_in(request), study=study)
    if not report.is_signed:
        raise Http404
    return pdf_response(report, request.GET.get("version"))


def pdf_response(report: Report, number: str | None = None) -> HttpResponse:
    """The PDF of the latest version, or of `number` (an earlier one, for the history)."""
    version = report.latest
    if number:
        version = report.versions.filter(number=number).first() if number.isdigit() else None
    if version is None:
        raise Http404
    response = HttpResponse(report_pdf(report, version), content_type="application/pdf")
    response["Content-Disposition"] = (
        f'inline; filename="compte-rendu-{report.study_id}-v{version.number}.pdf"'
    )
    response["Cache-Control"] = "no-store"
    return response
