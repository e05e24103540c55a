"""Writes of the reports app: drafting, signing, and a site opening its signed report."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from studies import access, lifecycle
from studies.lifecycle import Transition
from studies.models import Status, Study

from .models import Report


def save_report(*, study: Study, author: User, findings: str, conclusion: str, sign: bool) -> Report:
    """Write (and optionally sign) the report of a study the author is reading."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if not access.may_sign_reports(author, study):
            raise PermissionDenied(_("Prenez d'abord cet examen en lecture."))
        report, _created = Report.objects.get_or_create(study=study, defaults={"author": author})
        if report.is_signed:
            raise ValidationError(_("Ce compte rendu est déjà signé."))
        report.author = author
        report.findings = findings.strip()
        report.conclusion = conclusion.strip()
        if sign:
            if not report.conclusion:
                raise ValidationError(_("Une conclusion est nécessaire pour signer."))
            report.signed_at = timezone.now()
        report.save()
        if sign:
            lifecycle.transition(study, Transition.SIGN, actor=author)
    return report


def open_report(*, user: User, study: Study) -> Report:
    """The report of a study as this user may see it, or 404. When a technician of the site
    opens the signed report, the study is delivered: the one place where that happens, whether
    by the page, the PDF or the API."""
    report = Report.objects.filter(study=study).select_related("author", "study__site").first()
    if report is None or not access.may_see_report(user, study, signed=report.is_signed):
        raise Http404
    if report.is_signed and study.status == Status.REPORTED and access.opening_delivers_report(user, study):
        try:
            lifecycle.transition(study, Transition.DELIVER, actor=user)
        except lifecycle.TransitionRefused:  # opened twice at once: delivered by the other
            pass
    return report
