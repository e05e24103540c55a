from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET

from joliba.security import private_cache
from orthanc.client import OrthancError

from . import access
from .archive import get_archive
from .models import Instance
from .renditions import preview_webp


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if access.may_read_studies(request.user):
        return redirect("worklist")
    return redirect("study_list")


@login_required
def study_list(request: HttpRequest) -> HttpResponse:
    studies = access.studies_visible_to(request.user).select_related("site").prefetch_related("events")[:200]
    return render(
        request,
        "studies/list.html",
        {
            "studies": studies,
            "may_send": access.may_send_for_site(request.user),
        },
    )


@login_required
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    user = request.user
    study = access.get_study_for_user(user, pk)
    report = getattr(study, "report", None)
    signed = bool(report and report.is_signed)
    return render(
        request,
        "studies/detail.html",
        {
            "study": study,
            # The text of the report is on the report's own page (opening it there is what
            # counts as delivered); here only whether there is one to open.
            "report_ready": bool(report) and access.may_see_report(user, study, signed=signed),
            "report_signed": signed,
            "may_claim": access.may_claim(user, study),
            "may_read": access.holds(user, study),
            "show_ai": access.may_see_ai_output(user),
            "instances": study.instances.all()[:24],
            "events": study.history,
        },
    )


@require_GET
@login_required
@private_cache
def instance_preview(request: HttpRequest, pk: int, instance_pk: int) -> HttpResponse:
    """A preview rendered by the platform from the archived file (never a direct Orthanc URL)."""
    study = access.get_study_for_user(request.user, pk)
    instance = get_object_or_404(Instance, pk=instance_pk, study=study)
    return _preview_response(instance)


def _preview_response(instance: Instance) -> HttpResponse:
    try:
        data = get_archive().instance_file(instance.orthanc_id)
    except OrthancError:
        raise Http404 from None
    return HttpResponse(preview_webp(data), content_type="image/webp")
