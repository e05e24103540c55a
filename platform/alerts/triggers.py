"""Which study events raise which alerts. Runs inside the event's transaction (lifecycle's
`event_recorded`): the rows commit or roll back with the move."""

from __future__ import annotations

import logging
from typing import Any

from django.utils import translation

from accounts.models import User
from studies.models import Priority, ReturnReason, Study, StudyEvent

from . import recipients
from .models import Category, Kind, NotificationSettings, SiteAlertSettings
from .outbox import write_alerts

log = logging.getLogger(__name__)

# The ACR grade of a signed version's critical finding (reports.models.CriticalCategory) → the
# alert's urgency.
ACR_TO_CATEGORY = {
    "immediate": Category.CRITICAL,
    "urgent": Category.URGENT,
    "significant": Category.SIGNIFICANT,
}


def on_event_recorded(sender: object, *, study: Study, event: StudyEvent, **_: object) -> None:
    t = event.transition
    if t in ("arrive", "receive") and study.priority == Priority.STAT and event.from_status != "arriving":
        stat_arrived(study, event)
    elif t == "queue":
        ai_critical(study, event)
    elif t == "return":
        returned(study, event)
    elif t in ("sign", "amend"):  # "amend": a new signed version of the report
        report_signed(study, event)


def base_params(study: Study) -> dict[str, Any]:
    return {
        "code": study.case_code,
        "modality": study.modality or "?",
        "site": study.site.code if study.site_id and study.site else "?",
    }


def stat_arrived(study: Study, event: StudyEvent) -> None:
    write_alerts(
        kind=Kind.STAT_ARRIVED,
        category=Category.URGENT,
        chain=f"stat_arrived:e{event.pk}",
        recipients=recipients.reading_chain()[:1],
        study=study,
        event=event,
        params=base_params(study),
        needs_ack=True,
    )


def ai_critical(study: Study, event: StudyEvent) -> None:
    from preread.models import PreRead  # the pre-read app's record, read only

    preread = PreRead.objects.filter(study_id=study.pk, is_current=True).first()
    if preread is None or not preread.critical_flags:
        return
    flags = [
        {
            "fr": preread.flag_names.get(f, {}).get("fr") or f,
            "en": preread.flag_names.get(f, {}).get("en") or f,
        }
        for f in preread.critical_flags
    ]
    write_alerts(
        kind=Kind.AI_CRITICAL,
        category=Category.CRITICAL,
        chain=f"ai_critical:e{event.pk}",
        recipients=recipients.reading_chain()[:1],
        study=study,
        event=event,
        params={**base_params(study), "flags": flags},
        needs_ack=True,
    )


def returned(study: Study, event: StudyEvent) -> None:
    reason: dict[str, str] = {}
    if event.reason_code in ReturnReason.values:
        for lang in ("fr", "en"):
            with translation.override(lang):
                reason[lang] = str(ReturnReason(event.reason_code).label)
    write_alerts(
        kind=Kind.RETURNED,
        category=Category.URGENT,  # the patient may still be at the site: no waiting for the morning
        chain=f"returned:e{event.pk}",
        recipients=recipients.site_people(study.site, study.uploaded_by),
        study=study,
        event=event,
        params={**base_params(study), "reason": reason},
    )


def report_signed(study: Study, event: StudyEvent) -> None:
    report_ready(study, event)
    critical_finding(study, event)


def report_ready(study: Study, event: StudyEvent) -> None:
    tech = study.uploaded_by
    if tech is None or not tech.is_active or not wants_report_ready(tech, study):
        return
    write_alerts(
        kind=Kind.REPORT_READY,
        category=Category.ROUTINE,
        chain=f"report_ready:e{event.pk}",
        recipients=[recipients.for_user(tech, "technician")],
        study=study,
        event=event,
        params=base_params(study),
    )


def wants_report_ready(user: User, study: Study) -> bool:
    """On by default; the site or the person can turn it off."""
    if study.site_id and SiteAlertSettings.objects.filter(site_id=study.site_id, report_ready=False).exists():
        return False
    return not NotificationSettings.objects.filter(user=user, report_ready=False).exists()


def critical_finding(study: Study, event: StudyEvent) -> None:
    """The version just signed (written before its sign/amend event) names a critical finding."""
    from reports.models import ReportVersion

    version = ReportVersion.objects.filter(report__study_id=study.pk).order_by("-number").first()
    acr = version.critical_category if version is not None else ""
    if acr not in ACR_TO_CATEGORY:
        return
    write_alerts(
        kind=Kind.CRITICAL_FINDING,
        category=ACR_TO_CATEGORY[acr],
        chain=f"critical_finding:e{event.pk}",
        recipients=recipients.site_chain(study.site)[:1],
        study=study,
        event=event,
        params={**base_params(study), "acr": acr},
        needs_ack=True,
    )
