from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_POST

from preread.models import ImageResult
from preread.selectors import current_preread, image_results_by_instance
from studies import access, lifecycle
from studies.lifecycle import Transition
from studies.models import ReturnReason

from .selectors import worklist_for


def _radiologist_only(request: HttpRequest) -> None:
    if not access.may_read_studies(request.user):
        raise PermissionDenied


@login_required
def worklist(request: HttpRequest) -> HttpResponse:
    _radiologist_only(request)
    cases = worklist_for(access.signed_in(request))
    return render(
        request,
        "worklist/worklist.html",
        {
            "cases": cases,
            "any_demo": any(c.ai and c.ai.demo for c in cases),
        },
    )


def _move(
    request: HttpRequest, pk: int, event: str, *, reason_code: str = ""
) -> lifecycle.TransitionRefused | None:
    study = access.get_study_for_user(request.user, pk)
    try:
        lifecycle.transition(study, event, actor=access.signed_in(request), reason_code=reason_code)
    except lifecycle.TransitionRefused as exc:
        messages.error(request, exc.message)
        return exc
    return None


@require_POST
@login_required
def claim(request: HttpRequest, pk: int) -> HttpResponse:
    _radiologist_only(request)
    if _move(request, pk, Transition.CLAIM):
        return redirect("worklist")
    return redirect("read", pk=pk)


@require_POST
@login_required
def release(request: HttpRequest, pk: int) -> HttpResponse:
    if not _move(request, pk, Transition.RELEASE):
        messages.success(request, _("Examen remis dans la liste de travail."))
    return redirect("worklist")


@require_POST
@login_required
def return_study(request: HttpRequest, pk: int) -> HttpResponse:
    """Not diagnostic: back to the site, with the reason, to be done again."""
    if _move(request, pk, Transition.RETURN, reason_code=request.POST.get("reason", "")):
        return redirect("read", pk=pk)
    messages.success(request, _("Examen renvoyé au site pour être refait."))
    return redirect("worklist")


@login_required
def read(request: HttpRequest, pk: int) -> HttpResponse:
    """The reading page. Each part (viewer, report editor, reading actions) is drawn by the app
    that owns it; this view only decides who may be here."""
    _radiologist_only(request)
    study = access.get_study_for_user(request.user, pk)
    if not access.may_sign_reports(request.user, study):
        messages.error(request, _("Prenez d'abord cet examen en lecture."))
        return redirect("study_detail", pk=study.pk)
    ai = current_preread(study)
    return render(
        request,
        "worklist/read.html",
        {
            "study": study,
            "instances": study.instances.all()[:24],
            "ai": ai,
            "ai_results": image_results_by_instance(ai),
            "show_ai": True,
            "return_reasons": ReturnReason.choices,
        },
    )


@require_GET
@login_required
@cache_control(private=True, max_age=86400)
def heatmap(request: HttpRequest, pk: int, instance_pk: int) -> HttpResponse:
    """The AI heatmap of one image, from the stored result (current pre-read)."""
    if not access.may_see_ai_output(request.user):
        raise Http404
    study = access.get_study_for_user(request.user, pk)
    result = get_object_or_404(
        ImageResult, preread__study=study, preread__is_current=True, instance_id=instance_pk
    )
    if not result.heatmap_png:
        raise Http404
    return HttpResponse(bytes(result.heatmap_png), content_type="image/png")
