from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from reports.services import save_report
from studies.access import can_read, get_study_for_user
from studies.forms import ReportForm
from studies.services import claim_study

from .selectors import worklist_for


def _radiologist_only(request: HttpRequest) -> None:
    if not can_read(request.user):
        raise PermissionDenied


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    _radiologist_only(request)
    return render(request, "worklist/worklist.html", {"studies": worklist_for(request.user)})


@require_POST
@login_required
def claim(request: HttpRequest, pk: int) -> HttpResponse:
    _radiologist_only(request)
    study = get_study_for_user(request.user, pk)
    if not claim_study(study=study, radiologist=request.user):
        messages.error(request, _("Cet examen est déjà lu par un confrère."))
        return redirect("worklist")
    return redirect("read", pk=study.pk)


@login_required
def read(request: HttpRequest, pk: int) -> HttpResponse:
    _radiologist_only(request)
    study = get_study_for_user(request.user, pk)
    report = getattr(study, "report", None)
    if study.assigned_to_id != request.user.pk:
        messages.error(request, _("Prenez d'abord cet examen en lecture."))
        return redirect("study_detail", pk=study.pk)
    initial = {"findings": report.findings, "conclusion": report.conclusion} if report else {}
    form = ReportForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        sign = "sign" in request.POST
        try:
            save_report(study=study, author=request.user, sign=sign, **form.cleaned_data)
        except ValidationError as exc:
            form.add_error(None, exc.messages[0])
        else:
            if sign:
                messages.success(request, _("Compte rendu signé et envoyé au site."))
                return redirect("worklist")
            messages.success(request, _("Brouillon enregistré."))
            return redirect("read", pk=study.pk)
    return render(request, "worklist/read.html", {
        "study": study, "form": form, "report": report, "instances": study.instances.all()[:24],
    })
