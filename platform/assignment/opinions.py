"""Second opinion on request: the holder asks a colleague who may read the study; the colleague
opens it read-only and answers. The study's status never changes here."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import User
from studies import access
from studies.models import Study

from .models import SecondOpinion


class OpinionRefused(Exception):
    """Why a request or an answer was refused, as a code the page turns into a sentence."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def ask_opinion(study: Study, *, by: User, of: User | None, question: str) -> SecondOpinion:
    question = question.strip()
    if not access.may_ask_opinion(by, study):
        raise OpinionRefused("not_permitted")
    if of is None or of.pk == by.pk or not access.may_read_study(of, study, fresh=True):
        raise OpinionRefused("no_colleague")
    if not question:
        raise OpinionRefused("no_question")
    return SecondOpinion.objects.create(study=study, asked_by=by, asked_of=of, question=question[:4000])


def answer_opinion(opinion: SecondOpinion, *, by: User, answer: str) -> SecondOpinion:
    """The colleague's answer, given once (what the holder read stays what was written)."""
    answer = answer.strip()
    if not access.may_answer_opinion(by, opinion.study, asked_of_id=opinion.asked_of_id):
        raise OpinionRefused("not_permitted")
    if not answer:
        raise OpinionRefused("no_answer")
    updated = SecondOpinion.objects.filter(pk=opinion.pk, answered_at__isnull=True).update(
        answer=answer[:8000], answered_at=timezone.now()
    )
    if not updated:
        raise OpinionRefused("answered")
    opinion.refresh_from_db()
    return opinion


def opinions_on(study: Study, *, user: User) -> list[SecondOpinion]:
    """The requests on this study that `user` may see (theirs, asked or given)."""
    rows = SecondOpinion.objects.filter(study=study).select_related("asked_by", "asked_of")
    return [
        o
        for o in rows
        if access.may_see_opinion(user, study, asked_by_id=o.asked_by_id, asked_of_id=o.asked_of_id)
    ]


def opinions_asked_of(user: User) -> QuerySet[SecondOpinion]:
    """Requests waiting for this radiologist's answer first, then those answered, on studies
    they may still read."""
    return (
        SecondOpinion.objects.filter(asked_of=user, study__in=access.studies_visible_to(user))
        .select_related("study", "study__site", "asked_by")
        .order_by("answered_at", "-asked_at")
    )


def waiting_for(user: User) -> int:
    return opinions_asked_of(user).filter(answered_at__isnull=True).count()
