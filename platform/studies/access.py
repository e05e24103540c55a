"""Who may see or do what: the one place that decides. Every page, API route, image, PDF and
upload URL asks here; templates get the answers as context, never re-derive them.

Rules (the table in docs/lifecycle-and-access.md; tests/test_access.py checks it):
- a technician sees the studies of their own site, nothing else; an admin sees every study;
  a radiologist sees the studies they may read: a modality they are competent for, from a site
  they read for (accounts.ReaderProfile; without a profile, nothing); an inactive or anonymous
  user sees nothing;
- a technician of a site (or an admin attached to it) sends studies for that site only;
- radiologists read: they see the worklist, claim a complete study they may read that nobody
  else holds (the limit in hand is the lifecycle's to enforce, under lock), and only the
  radiologist holding a study writes, signs, returns it, hands it over or asks a second opinion;
- the radiologist holding a study, or an admin, releases it; an admin reassigns it; a study is
  only ever given (claim, assignment, hand-over, reassignment) to a radiologist who may read it;
- a second opinion is given by the colleague asked, if they may read the study;
- a report is shown to the site once signed; drafts only to radiologists and admins;
- AI output (scores, drafts, overlays) is for radiologists and admins, never for the site;
- a sending's verdicts are seen by the technicians of its site and by admins.
Objects a user may not see answer 404, never 403: a site must not learn what another sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest

from accounts import roles
from accounts.models import Modality, ReaderProfile, Site, User, modality_group

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


@dataclass(frozen=True)
class ReadingRights:
    """What one radiologist may read, from their accounts.ReaderProfile."""

    modalities: frozenset[str]
    all_sites: bool
    site_ids: frozenset[int]
    max_in_hand: int

    def cover(self, study: Study) -> bool:
        if modality_group(study.modality) not in self.modalities:
            return False
        return self.all_sites or (study.site_id is not None and study.site_id in self.site_ids)

    def as_q(self) -> Q:
        """The same test as `cover`, as a filter on studies."""
        if self.modalities >= set(Modality.values):
            q = Q()  # every modality: no filter to plan around (the worklist's hot path)
        else:
            q = Q(modality__in=[m for m in self.modalities if m != Modality.OT])
            if Modality.OT in self.modalities:  # blank and unknown codes: accounts.modality_group
                q |= ~Q(modality__in=[m for m in Modality.values if m != Modality.OT])
        return q & (Q() if self.all_sites else Q(site_id__in=self.site_ids))


NO_RIGHTS = ReadingRights(frozenset(), False, frozenset(), 0)
_CACHE = "_joliba_reading_rights"


def reading_rights(user: Person, *, fresh: bool = False) -> ReadingRights:
    """The user's rights to read, cached on the user object for the request (the worklist asks
    once per case); `fresh` reads the database again (the lifecycle does, under lock)."""
    if not (_active(user) and user.is_radiologist):
        return NO_RIGHTS
    if not fresh and hasattr(user, _CACHE):
        return getattr(user, _CACHE)
    profile: ReaderProfile | None
    if fresh:
        profile = ReaderProfile.objects.filter(user_id=user.pk).prefetch_related("sites").first()
    else:  # a list of radiologists may come with select_related/prefetch_related: no query then
        try:
            profile = user.reader_profile
        except ReaderProfile.DoesNotExist:
            profile = None
    if profile is None:
        rights = NO_RIGHTS  # no profile: no rights to read are assumed
    else:
        rights = ReadingRights(
            modalities=frozenset(m for m in profile.modalities or [] if m in Modality.values),
            all_sites=profile.all_sites,
            site_ids=frozenset(site.pk for site in profile.sites.all()),
            max_in_hand=profile.max_in_hand,
        )
    setattr(user, _CACHE, rights)
    return rights


def studies_visible_to(user: Person) -> QuerySet[Study]:
    if _active(user):
        if user.is_joliba_admin:
            return Study.objects.all()
        if user.is_radiologist:
            rights = reading_rights(user)
            return Study.objects.filter(rights.as_q()) if rights.modalities else Study.objects.none()
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


def studies_a_site_sends_to(site_id: int) -> QuerySet[Study]:
    """The studies of whose instances a sending site may be told "already in the archive"
    (uploads' manifests: nothing sent twice): its own only. Another site's study, or one no site
    owns yet, is answered as if absent: the sender learns nothing of it, and sending the file
    gets the usual verdict (an unowned study is then attributed to the sender)."""
    return Study.objects.filter(site_id=site_id)


def may_read_studies(user: Person) -> bool:
    """May open the worklist and the reading page (radiologists)."""
    return _active(user) and user.is_radiologist


def may_read_study(user: Person, study: Study, *, fresh: bool = False) -> bool:
    """A radiologist competent for the study's modality who reads for its site: the only people
    a study may be given to (claim, assignment, hand-over, reassignment) or shown for an opinion."""
    return may_read_studies(user) and reading_rights(user, fresh=fresh).cover(study)


def may_claim(user: Person, study: Study) -> bool:
    return (
        may_read_study(user, study) and study.status in CLAIMABLE and study.assigned_to_id in (None, user.pk)
    )


def holds(user: Person, study: Study) -> bool:
    """The radiologist currently reading this study."""
    return (
        study.status == Status.IN_READING
        and study.assigned_to_id == getattr(user, "pk", None)
        and may_read_study(user, study)
    )


def may_hand_over(user: Person, study: Study) -> bool:
    """The holder passes the study to a colleague (who must be able to read it)."""
    return holds(user, study)


def may_ask_opinion(user: Person, study: Study) -> bool:
    """The holder asks a colleague for a second opinion (the study stays theirs)."""
    return holds(user, study)


def may_answer_opinion(user: Person, study: Study, *, asked_of_id: int) -> bool:
    """Only the colleague asked answers, and only while they may read the study."""
    return getattr(user, "pk", None) == asked_of_id and may_read_study(user, study)


def may_see_opinion(user: Person, study: Study, *, asked_by_id: int, asked_of_id: int) -> bool:
    """The two radiologists of a second opinion, and admins; always within what they may see."""
    if _is_admin(user):
        return True
    return getattr(user, "pk", None) in (asked_by_id, asked_of_id) and may_read_study(user, study)


def may_link_patients(user: Person, study: Study, other: Study) -> bool:
    """Confirm (or reject) that two studies of two sites are of the same patient: a radiologist
    who may read both, or an admin."""
    if _is_admin(user):
        return True
    return may_read_study(user, study) and may_read_study(user, other)


def may_reassign_studies(user: Person) -> bool:
    """Sees the cases being read with their reassignment (the page of the team's load)."""
    return _is_admin(user)


def may_see_team_load(user: Person) -> bool:
    """The load per radiologist (cases in hand, read lately, on shift): radiologists and admins."""
    return may_read_studies(user) or _is_admin(user)


def may_manage_alerts(user: Person) -> bool:
    """The alerts board (pending, failed, unacknowledged) and resending: admins."""
    return _is_admin(user)


def may_take_calls(user: Person, *, on_call: bool) -> bool:
    """The duty page's "phone this person now" tasks: admins and whoever is on the on-call list."""
    return user.is_authenticated and user.is_active and (_is_admin(user) or on_call)


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
    """An admin gives a study being read to another radiologist (who must be able to read it)."""
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


# --- auth ---
# Who must prove a second factor depends on the role alone: the rule lives in accounts.roles
# (accounts, the lowest app, enforces it in its middleware) and is listed here with the others.
needs_second_factor = roles.needs_second_factor


# --- integrity ---
def may_deidentify(user: Person, study: Study) -> bool:
    """May export a de-identified copy of a study for teaching or research: an admin, or a
    radiologist who may read it (privacy.exports; audited "study.deidentified")."""
    return _is_admin(user) or may_read_study(user, study)


def may_export_patient(user: Person) -> bool:
    """May export everything held about one patient (the right of access): admins only."""
    return _is_admin(user)


def may_see_burned_in_flag(user: Person) -> bool:
    """The « may carry burned-in annotations » label on a study: its readers and admins."""
    return may_see_ai_output(user)


# --- audit ---


def may_see_audit(user: Person) -> bool:
    """The audit trail (search and CSV export): admins only; anyone else gets 404."""
    return _is_admin(user)


# --- tokens ---
def may_manage_tokens(user: Person, site: Site | None) -> bool:
    """Issue, list and revoke the machine tokens of `site` (None: tokens of no site): an admin
    attached to that site, or an admin attached to no site (who manages every site's)."""
    if not (_active(user) and user.is_joliba_admin):
        return False
    return not user.site_id or (site is not None and site.pk == user.site_id)


def may_see_dashboard(user: Person, site: Site | None = None) -> bool:
    """The coordinator's dashboard (turnaround, backlog, link health, AI against the readers):
    admins. An admin attached to a site sees that site only; one attached to none sees every
    site (`site` None: may open the page at all)."""
    if not (_active(user) and user.is_joliba_admin):
        return False
    return site is None or not user.site_id or site.pk == user.site_id


def may_open_tokens_page(user: Person) -> bool:
    """The « Jetons des agents » page; it lists only what may_manage_tokens allows."""
    return _is_admin(user)
