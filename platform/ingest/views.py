"""The plain sending form (works without JavaScript) and its result page."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from studies.access import may_see_sending, may_send_for_site, signed_in

from .forms import SubmissionForm
from .incoming import spooled
from .models import Submission
from .quota import LimitExceeded, admitted_request, check_rate
from .services import receive_submission


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    user = signed_in(request)
    if user.site is None or not may_send_for_site(user):
        raise PermissionDenied
    if request.method != "POST":
        return render(request, "ingest/upload.html", {"form": SubmissionForm()})
    try:
        # The limits of every route (ingest.quota): rate, request size, site quota, daily budget.
        check_rate(request, "upload_form", {"user": user.pk, "site": user.site_id})
        with admitted_request(request, user.site.pk, route="form"):
            form = SubmissionForm(request.POST, request.FILES)
            if not form.is_valid():
                return render(request, "ingest/upload.html", {"form": form})
            with spooled(form.cleaned_data["files"]) as incoming:
                sent = receive_submission(
                    site=user.site,
                    sender=user,
                    files=incoming,
                    indication=form.cleaned_data["indication"],
                    priority=form.cleaned_data["priority"],
                )
    except LimitExceeded as exc:
        response = render(
            request,
            "ingest/upload.html",
            {"form": SubmissionForm(), "refusal": exc.reason},
            status=exc.status,
        )
        return exc.apply_headers(response)
    return redirect("upload_result", upload_id=sent.pk)


@login_required
def upload_result(request: HttpRequest, upload_id: str) -> HttpResponse:
    sent = Submission.objects.filter(pk=upload_id).first()
    if sent is None or not may_see_sending(request.user, site_id=sent.site_id):
        raise Http404
    verdicts = list(sent.verdicts.select_related("study"))
    studies = {v.study for v in verdicts if v.study}
    return render(
        request,
        "ingest/upload_result.html",
        {
            "submission": sent,
            "verdicts": verdicts,
            "studies": sorted(studies, key=lambda s: s.pk),
            "accepted": sum(v.accepted for v in verdicts),
            "refused": sum(not v.accepted for v in verdicts),
        },
    )
