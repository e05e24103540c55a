from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from studies.access import get_study_for_user, signed_in

from .forms import ReportForm
from .pdf import report_pdf_response
from .services import open_report, save_report


@require_POST
@login_required
def edit_report(request: HttpRequest, pk: int) -> HttpResponse:
    """The reading page's editor posts here: save the draft, or sign it. A refused signature
    keeps the text as a draft, so nothing the radiologist typed is lost."""
    study = get_study_for_user(request.user, pk)
    form = ReportForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, str(errors[0]))
        return redirect("read", pk=study.pk)
    author = signed_in(request)
    sign = "sign" in request.POST
    try:
        save_report(study=study, author=author, sign=sign, **form.cleaned_data)
    except ValidationError as exc:
        if sign:
            save_report(study=study, author=author, sign=False, **form.cleaned_data)
        messages.error(request, exc.messages[0])
        return redirect("read", pk=study.pk)
    if sign:
        messages.success(request, _("Compte rendu signé et envoyé au site."))
        return redirect("worklist")
    messages.success(request, _("Brouillon enregistré."))
    return redirect("read", pk=study.pk)


@never_cache
@login_required
def report_page(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, pk)
    report = open_report(user=signed_in(request), study=study)
    return render(request, "reports/report.html", {"study": study, "report": report})


@never_cache
@login_required
def report_pdf_view(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, pk)
    report = open_report(user=signed_in(request), study=study)
    if not report.is_signed:
        raise Http404
    return report_pdf_response(report)
