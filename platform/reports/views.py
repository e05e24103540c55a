from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from studies.access import get_study_for_user, signed_in

from .pdf import report_pdf_response
from .services import open_report


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
