from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from studies.models import Status, Study

from .models import Report


def save_report(
    *, study: Study, author: User, findings: str, conclusion: str, sign: bool
) -> Report:
    """Write (and optionally sign) the report of a study the author is reading."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if not author.is_radiologist or study.assigned_to_id != author.pk:
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
            study.move_to(Status.REPORTED)
    return report
