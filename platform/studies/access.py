"""Who may see or do what: the one place that decides. Every page, API route, image, PDF and
upload URL asks here; templates get the answers as context, never re-derive them.

Rules (the table in docs/access.md is generated from the tests of this module):
- a technician sees the studies of their own site, nothing else; a radiologist or an admin
  sees every study; an inactive or anonymous user sees nothing;
- a technician of a site (or an admin attached to it) sends studies for that site only;
- radiologists read: they see the worklist, claim a complete study nobody else holds, and
  only the radiologist holding a study writes, signs or returns it;
- the radiologist holding a study, or an admin, releases it; an admin reassigns it;
- a report is shown to the site once signed; drafts only to radiologists and admins;
- AI output (scores, drafts, overlays) is for radiologists and admins, never for the site;
- a sending's verdicts are seen by the technicians of its site and by admins.
Objects a user may not see answer 404, never 403: a site must not learn what another sent.
"""

from __future__ import annotations

from typing import TypeGuard

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from accounts.models import User

from .models import Status, Study

# A study can be claimed once it is complete: never while it is still arriving.
CLAIMABLE = (Status.RECEIVED, Status.QUEUED)


# Whoever makes a request: a signed-in user or an anonymous one. Every rule answers for both.
Person = User | AnonymousUser


def _active(user: Person | None) -> TypeGuard[User]:
    return isinstance(user, User) and user.is_active


def signed_in(request: HttpRequest) -> User:
    """The request's user, who must be signed in and active (views behind login_required)."""
    user = getattr(request, "user", None)
    if not _active(user):
        raise PermissionDenied
    return user


def studies_visible_to(user: Person) -> QuerySet[Study]:
    if _active(user):
        if user.is_joliba_admin or user.is_radiologist:
            return Study.objects.all()
        if user.is_technician and user.site_id:
            return Study.objects.filter(site_id=user.site_id)
    return Study.objects.none()


def may_see_study(user: Person, study: Study) -> bool:
    return studies_visible_to(user).filter(pk=study.pk).exists()


def get_study_for_user(user: Person, pk: int | str) -> Study:
    """The study if this user may see it, else 404 (never 403: do not confirm it exists)."""
    try:
        return studies_visible_to(user).select_related("site", "assigned_to").get(pk=pk)
    except (Study.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def may_send_for_site(user: Person, site_id: int | None = None) -> bool:
    """May send studies, for `site_id` when given (else for the user's own site)."""
    if _active(user) and user.site_id and (user.is_technician or user.is_joliba_admin):
        return site_id is None or site_id == user.site_id
    return False


def may_read_studies(user: Person) -> bool:
    """May open the worklist and the reading page (radiologists)."""
    return _active(user) and user.is_radiologist


def may_claim(user: Person, study: Study) -> bool:
    return may_read_studies(user) and study.status in CLAIMABLE and study.assigned_to_id in (None, user.pk)


def holds(user: Person, study: Study) -> bool:
    """The radiologist currently reading this study."""
    return may_read_studies(user) and study.status == Status.IN_READING and study.assigned_to_id == user.pk


def may_sign_reports(user: Person, study: Study) -> bool:
    """May write, save and sign the report of this study, or return it as not diagnostic."""
    return holds(user, study)


def may_amend_report(user: Person, study: Study) -> bool:
    """May sign a new version (amendment, addendum) of the signed report: its signer."""
    return (
        may_read_studies(user)
        and study.status in (Status.REPORTED, Status.DELIVERED)
        and study.assigned_to_id == user.pk
    )


def may_release(user: Person, study: Study) -> bool:
    return study.status == Status.IN_READING and (holds(user, study) or _is_admin(user))


def may_reassign(user: Person, study: Study) -> bool:
    return study.status == Status.IN_READING and _is_admin(user)


def may_see_report(user: Person, study: Study, *, signed: bool) -> bool:
    """A signed report: whoever sees the study. A draft: radiologists and admins only."""
    if not may_see_study(user, study):
        return False
    return signed or may_see_ai_output(user)  # drafts and AI output: the same readers


def opening_delivers_report(user: Person, study: Study) -> bool:
    """Opening the signed report counts as delivered when a technician of its site does it."""
    return _active(user) and user.is_technician and user.site_id == study.site_id


def may_see_ai_output(user: Person) -> bool:
    return _active(user) and (user.is_radiologist or user.is_joliba_admin)


def may_see_sending(user: Person, *, site_id: int) -> bool:
    """May see a sending (plain upload, resumable transfer, manifest) and its verdicts."""
    if _active(user):
        return user.is_joliba_admin or (user.is_technician and user.site_id == site_id)
    return False


def _is_admin(user: Person) -> bool:
    return _active(user) and user.is_joliba_admin
