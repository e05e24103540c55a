"""Pages of assignment: hand-over, admin reassignment, the team's load, second opinions, the
read-only view of a prior or of a study a colleague asks about, patient records judged the same.
Every study comes through studies.access (404 when invisible), every move through lifecycle."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import User
from preread.selectors import current_preread, image_results_by_instance
from studies import access, lifecycle
from studies.lifecycle import Transition
from studies.models import Status, Study

from . import opinions, priors
from .load import colleagues_for, team_load
from .models import SecondOpinion

OPINION_REFUSALS = {
    "not_permitted": _("Vous n'avez pas le droit de faire cela sur cet examen."),
    "no_colleague": _("Choisissez un confrère qui lit cette modalité pour ce site."),
    "no_question": _("Écrivez votre question."),
    "no_answer": _("Écrivez votre avis."),
    "answered": _("Cet avis a déjà été donné."),
}


def _radiologist(request: HttpRequest) -> User:
    user = access.signed_in(request)
    if not access.may_read_studies(user):
        raise PermissionDenied
    return user


def _colleague(request: HttpRequest, field: str = "assignee") -> User | None:
    pk = request.POST.get(field, "")
    return User.objects.filter(pk=int(pk)).first() if pk.isdigit() else None


@require_POST
@login_required
def hand_over(request: HttpRequest, pk: int) -> HttpResponse:
    """The holder passes the study to a colleague who may read it."""
    user = _radiologist(request)
    study = access.get_study_for_user(user, pk)
    try:
        lifecycle.transition(study, Transition.HAND_OVER, actor=user, assignee=_colleague(request))
    except lifecycle.TransitionRefused as exc:
        messages.error(request, exc.message)
        return redirect("read", pk=pk) if access.holds(user, study) else redirect("worklist")
    messages.success(request, _("Examen confié à un confrère."))
    return redirect("worklist")


@login_required
def reassign(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin gives a study being read to another radiologist (a page, not only the API)."""
    user = access.signed_in(request)
    study = access.get_study_for_user(user, pk)
    if not access.may_reassign(user, study):
        messages.error(request, _("Seul un examen en lecture peut être réattribué, par un administrateur."))
        return redirect("team_load") if access.may_see_team_load(user) else redirect("study_detail", pk=pk)
    if request.method == "POST":
        try:
            lifecycle.transition(study, Transition.REASSIGN, actor=user, assignee=_colleague(request))
        except lifecycle.TransitionRefused as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Examen réattribué."))
            return redirect("team_load")
    return render(
        request,
        "assignment/reassign.html",
        {"study": study, "colleagues": colleagues_for(study, besides=study.assigned_to)},
    )


@login_required
def team(request: HttpRequest) -> HttpResponse:
    """The load per radiologist: in hand against the limit, given and signed in 24 h, on shift;
    for admins, the cases being read, each with its reassignment."""
    user = access.signed_in(request)
    if not access.may_see_team_load(user):
        raise PermissionDenied
    in_reading = []
    may_reassign = access.may_reassign_studies(user)
    if may_reassign:
        in_reading = list(
            access.studies_visible_to(user)
            .filter(status=Status.IN_READING)
            .select_related("site", "assigned_to")
            .order_by("assigned_to_id", "created_at")
        )
    return render(
        request,
        "assignment/team.html",
        {"loads": team_load(), "in_reading": in_reading, "may_reassign": may_reassign},
    )


@login_required
def consult(request: HttpRequest, pk: int) -> HttpResponse:
    """A study read-only (a prior, or a study a colleague asks about): its images in the viewer
    and its signed report; nothing here changes it."""
    user = _radiologist(request)
    study = access.get_study_for_user(user, pk)
    return render(request, "assignment/consult.html", _consult_context(user, study))


def _consult_context(user: User, study: Study) -> dict[str, object]:
    ai = current_preread(study)
    report = getattr(study, "report", None)
    signed = bool(report and report.is_signed)
    return {
        "study": study,
        "instances": study.instances.all()[:24],
        "ai": ai,
        "ai_results": image_results_by_instance(ai),
        "show_ai": access.may_see_ai_output(user),
        "report_signed": signed and access.may_see_report(user, study, signed=True),
    }


@require_POST
@login_required
def judge_patient(request: HttpRequest, pk: int, other_pk: int) -> HttpResponse:
    """A person says whether another site's record is this patient (a confirmed link makes
    their studies priors of each other)."""
    user = _radiologist(request)
    study = access.get_study_for_user(user, pk)
    other = access.get_study_for_user(user, other_pk)
    same = request.POST.get("same") == "1"
    if priors.judge_same_patient(study, other, same=same, by=user) is None:
        messages.error(request, _("Ces deux dossiers ne peuvent pas être rapprochés."))
    elif same:
        messages.success(
            request, _("Dossiers rapprochés : ses examens de l'autre site sont parmi les antérieurs.")
        )
    else:
        messages.success(request, _("Noté : ce n'est pas le même patient."))
    return redirect("read", pk=pk) if access.holds(user, study) else redirect("consult", pk=pk)


@require_POST
@login_required
def ask_opinion(request: HttpRequest, pk: int) -> HttpResponse:
    user = _radiologist(request)
    study = access.get_study_for_user(user, pk)
    try:
        opinions.ask_opinion(
            study, by=user, of=_colleague(request, "asked_of"), question=request.POST.get("question", "")
        )
    except opinions.OpinionRefused as exc:
        messages.error(request, OPINION_REFUSALS[exc.code])
    else:
        messages.success(request, _("Demande de second avis envoyée."))
    return redirect("read", pk=pk) if access.holds(user, study) else redirect("worklist")


@login_required
def opinion_list(request: HttpRequest) -> HttpResponse:
    """The second opinions this radiologist is asked for, waiting ones first."""
    user = _radiologist(request)
    return render(
        request, "assignment/opinions.html", {"asked_of_me": opinions.opinions_asked_of(user)[:100]}
    )


@login_required
def opinion(request: HttpRequest, opinion_pk: int) -> HttpResponse:
    """The colleague asked opens the study read-only and answers."""
    user = _radiologist(request)
    request_row = get_object_or_404(SecondOpinion.objects.select_related("asked_by"), pk=opinion_pk)
    study = access.get_study_for_user(user, request_row.study_id)
    if not access.may_see_opinion(
        user, study, asked_by_id=request_row.asked_by_id, asked_of_id=request_row.asked_of_id
    ):
        raise Http404
    if request.method == "POST":
        try:
            opinions.answer_opinion(request_row, by=user, answer=request.POST.get("answer", ""))
        except opinions.OpinionRefused as exc:
            messages.error(request, OPINION_REFUSALS[exc.code])
        else:
            messages.success(request, _("Avis envoyé à votre confrère."))
            return redirect("opinions")
    context = _consult_context(user, study)
    context.update(
        {
            "opinion": request_row,
            "may_answer": not request_row.is_answered
            and access.may_answer_opinion(user, study, asked_of_id=request_row.asked_of_id),
        }
    )
    return render(request, "assignment/consult.html", context)
