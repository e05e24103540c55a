from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from ingest.archive import get_archive
from ingest.models import Upload
from ingest.services import ingest_upload
from orthanc.client import OrthancError
from reports.pdf import signed_report_pdf_response

from .access import get_study_for_user, studies_visible_to
from .forms import UploadForm
from .models import Instance
from .services import mark_delivered
from .uploads import spooled


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_radiologist:
        return redirect("worklist")
    return redirect("study_list")


@login_required
def study_list(request: HttpRequest) -> HttpResponse:
    studies = studies_visible_to(request.user).select_related("site")[:200]
    return render(request, "studies/list.html", {"studies": studies})


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    if not request.user.is_technician:
        raise PermissionDenied
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        with spooled(form.cleaned_data["files"]) as incoming:
            sent = ingest_upload(
                site=request.user.site, user=request.user, files=incoming,
                indication=form.cleaned_data["indication"],
                priority=form.cleaned_data["priority"],
            )
        return redirect("upload_result", upload_id=sent.pk)
    return render(request, "studies/upload.html", {"form": form})


@login_required
def upload_result(request: HttpRequest, upload_id: str) -> HttpResponse:
    sent = get_object_or_404(Upload, pk=upload_id, user=request.user)
    verdicts = list(sent.verdicts.select_related("study"))
    studies = {v.study for v in verdicts if v.study}
    return render(request, "studies/upload_result.html", {
        "upload": sent, "verdicts": verdicts, "studies": sorted(studies, key=lambda s: s.pk),
        "accepted": sum(v.accepted for v in verdicts),
        "refused": sum(not v.accepted for v in verdicts),
    })


@login_required
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = get_study_for_user(request.user, pk)
    report = getattr(study, "report", None)
    if report and report.is_signed and request.user.is_technician:
        mark_delivered(study)
    return render(request, "studies/detail.html", {
        "study": study,
        "report": report if (report and (report.is_signed or request.user.is_radiologist)) else None,
        "instances": study.instances.all()[:24],
    })


@require_GET
@login_required
@cache_control(private=True, max_age=86400)
def instance_preview(request: HttpRequest, pk: int, instance_pk: int) -> HttpResponse:
    """A rendered image, fetched from the archive by the platform (never a direct Orthanc URL)."""
    study = get_study_for_user(request.user, pk)
    instance = get_object_or_404(Instance, pk=instance_pk, study=study)
    try:
        png = get_archive().instance_preview_png(instance.orthanc_id)
    except OrthancError:
        raise Http404 from None
    return HttpResponse(png, content_type="image/png")


@login_required
def report_pdf_view(request: HttpRequest, pk: int) -> HttpResponse:
    return signed_report_pdf_response(user=request.user, study=get_study_for_user(request.user, pk))


