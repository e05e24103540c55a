"""What each worklist row shows, as plain values in a dict: the template then only looks up
keys (the fastest lookup Django templates make; an attribute lookup on a model goes through a
failed item lookup first). Fifty rows are drawn on every page view and refresh."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.text import Truncator

from .selectors import Case


def row(case: Case) -> dict[str, Any]:
    study, ai = case.study, case.ai
    why = case.why
    reader = study.assigned_to
    flags: list[str] = []
    refused = failed = ""
    if ai is not None:
        if ai.is_scored:
            flags = ai.critical_findings
        elif ai.is_refused:
            refused = ai.reason
        elif ai.is_failed:
            failed = ai.reason
    if case.held:
        action, url = "resume", reverse("read", args=[study.pk])
    elif case.may_claim:
        action, url = "claim", reverse("claim", args=[study.pk])
    else:
        action, url = ("arriving" if study.is_arriving else ""), ""
    return {
        "pk": study.pk,
        "alert": case.alerting,
        "priority": study.priority,
        "priority_label": study.get_priority_display(),
        "url": reverse("study_detail", args=[study.pk]),
        "code": study.case_code,
        "title": f"{study.modality} {study.description or '—'}",
        "patient": study.patient_name,
        "ai": ai is not None,
        "flags": flags,
        "refused": refused,
        "failed": failed,
        "demo": bool(ai and ai.demo),
        "why_head": f"{why['ai']} · {why['priority']}",
        "why_sla": why["sla"],
        "late": case.rank.minutes_left < 0,
        "deadline": int(case.deadline.timestamp()) if case.deadline else "",
        "since": int(case.waiting_since.timestamp()),
        "why_wait": why["wait"],
        "why_score": why["score"],
        "site": study.site.code if study.site else "—",
        "indication": Truncator(study.indication).chars(60),
        "status": study.get_status_display(),
        "reader": (reader.get_full_name() or reader.username) if reader else "",
        "action": action,
        "action_url": url,
    }
