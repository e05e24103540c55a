import hashlib
import json
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Site
from assignment.load import team_load
from joliba.security import private_cache
from preread.models import ImageResult
from preread.selectors import current_preread, image_results_by_instance
from studies import access, lifecycle
from studies.lifecycle import Transition
from studies.models import ReturnReason

from .forms import WorklistFilters
from .rows import rows
from .selectors import WorklistPage, open_studies, worklist_page


def _radiologist_only(request: HttpRequest) -> None:
    if not access.may_read_studies(request.user):
        raise PermissionDenied


def _page_number(request: HttpRequest) -> int:
    try:
        return int(request.GET.get("page", "1"))
    except ValueError:
        return 1


def _list(request: HttpRequest) -> tuple[WorklistFilters, WorklistPage, dict[str, Any]]:
    """The filtered, ranked page and what _list.html needs to draw it (page and fragment alike)."""
    user = access.signed_in(request)
    filters = WorklistFilters(request.GET)
    studies = filters.apply(open_studies(user), user)
    page = worklist_page(user, studies, page=_page_number(request), claims_matter=filters.follows_claims)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "filters": filters,
        "page": page,
        "rows": rows(page.cases),
        "query": query.urlencode(),
        "now_epoch": int(timezone.now().timestamp()),
        "any_demo": any(c.ai and c.ai.demo for c in page.cases),
    }
    return filters, page, context


def _etag(request: HttpRequest, page: WorklistPage) -> str:
    """What the list shows, except the minutes (worklist.js counts those down): the same ETag
    means the same cases in the same order, in the same states, for the same reader."""
    state = [
        request.user.pk,
        get_language(),
        request.GET.urlencode(),
        page.number,
        page.pages,
        page.total,
        [
            (
                c.pk,
                c.study.status,
                c.study.assigned_to_id,
                c.study.priority,
                c.ai and (c.ai.pk, c.ai.status),
                c.study.ai_urgency,
                c.provisional and c.provisional.pk,
                c.arrival and (c.arrival.bytes_received, c.arrival.bytes_total),
                c.may_claim,
                c.held,
            )
            for c in page.cases
        ],
        [s.pk for s in page.alerts],
        LIST_VERSION,
    ]
    return '"' + hashlib.sha256(json.dumps(state, default=str).encode()).hexdigest()[:32] + '"'


# Bumped when _list.html changes, so a browser holding an old fragment gets the new one.
LIST_VERSION = 2


def _matches(request: HttpRequest, etag: str) -> bool:
    # GZipMiddleware weakens the ETag it sends (W/"..."): compare weakly.
    sent = request.headers.get("If-None-Match", "")
    return any(tag.strip().removeprefix("W/") == etag for tag in sent.split(","))


@login_required
@require_GET
def worklist(request: HttpRequest) -> HttpResponse:
    _radiologist_only(request)
    _, page, context = _list(request)
    context["load"] = sorted(team_load(), key=lambda row: -row.in_hand)  # one count, the team page's
    # The filter form is drawn from a cache (its widgets cost more than the list): keyed by the
    # query, the language and the sites there are.
    context["sites_key"] = "{n}-{last}".format(**Site.objects.aggregate(n=Count("pk"), last=Max("pk")))
    context["refresh_seconds"] = settings.WORKLIST_REFRESH_SECONDS
    context["etag"] = _etag(request, page)
    return render(request, "worklist/worklist.html", context)


@login_required
@require_GET
def worklist_rows(request: HttpRequest) -> HttpResponse:
    """The list alone (same filters and page), for worklist.js to swap in every ~30 s; 304 when
    nothing it shows has changed."""
    _radiologist_only(request)
    _, page, context = _list(request)
    etag = _etag(request, page)
    response: HttpResponse
    if _matches(request, etag):
        response = HttpResponseNotModified()
    else:
        context["etag"] = etag
        response = render(request, "worklist/_list.html", context)
    response["ETag"] = etag  # worklist.js sends it back itself (fetch with cache: "no-store")
    return response


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
@private_cache
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
