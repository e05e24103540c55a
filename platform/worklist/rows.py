"""What each worklist row shows, as plain values in a dict: the template then only looks up
keys (the fastest lookup Django templates make; an attribute lookup on a model goes through a
failed item lookup first). Fifty rows are drawn on every page view and refresh."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.text import Truncator
from django.utils.translation import gettext as _

from studies.formatting import person_name
from studies.models import Priority, Status

from .ranking import duration
from .selectors import Case

_PK = 987654321  # reversed once per list, then replaced: reverse() per row costs more than the row


def rows(cases: list[Case]) -> list[dict[str, Any]]:
    urls = {name: reverse(name, args=[_PK]) for name in ("study_detail", "claim", "read")}
    labels = {**{k: str(v) for k, v in Priority.choices}, **{k: str(v) for k, v in Status.choices}}
    return [row(case, urls, labels) for case in cases]


def _url(urls: dict[str, str], name: str, pk: int) -> str:
    return urls[name].replace(str(_PK), str(pk))


def row(case: Case, urls: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
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
        action, url = "resume", _url(urls, "read", study.pk)
    elif case.may_claim:
        action, url = "claim", _url(urls, "claim", study.pk)
    else:
        action, url = ("arriving" if study.is_arriving else ""), ""
    head = f"{why['ai']} · {why['priority']}"
    if study.is_arriving and case.provisional is not None and case.provisional.is_scored:
        head = f"{why['ai']} ({_('provisoire')}) · {why['priority']}"  # ranked by its preview
    return {
        "pk": study.pk,
        "alert": case.alerting,
        "priority": study.priority,
        "priority_label": labels.get(study.priority, study.priority),
        "url": _url(urls, "study_detail", study.pk),
        "code": study.case_code,
        "title": f"{study.modality} {study.description or '—'}",
        "patient": person_name(study.patient_name),
        "ai": ai is not None,
        "flags": flags,
        "refused": refused,
        "failed": failed,
        "demo": bool(ai and ai.demo),
        "why_head": head,
        "why_sla": why["sla"],
        "late": case.rank.minutes_left < 0,
        "deadline": int(case.deadline.timestamp()) if case.deadline else "",
        "since": int(case.waiting_since.timestamp()),
        "why_wait": why["wait"],
        "why_score": why["score"],
        "site": study.site.code if study.site else "—",
        "indication": Truncator(study.indication).chars(60),
        "status": labels.get(study.status, study.status),
        "reader": (reader.get_full_name() or reader.username) if reader else "",
        "action": action,
        "action_url": url,
        **_arriving(case),
    }


def _arriving(case: Case) -> dict[str, Any]:
    """A study still arriving: its provisional pre-read (from the previews, labelled as such) and
    how much of it is in. Empty strings when there is nothing to say."""
    out: dict[str, Any] = {
        "provisional": "",
        "provisional_flags": [],
        "provisional_refused": "",
        "arrival_share": "",
        "arrival_percent": "",
        "arrival_eta": "",
    }
    if not case.study.is_arriving:
        return out
    pv = case.provisional
    if pv is not None:
        if pv.is_scored and pv.urgency is not None:
            out["provisional"] = f"{pv.urgency:.2f}"
            out["provisional_flags"] = pv.critical_findings
        elif pv.is_refused or pv.is_failed:
            out["provisional_refused"] = pv.reason
    progress = case.arrival
    if progress is not None:
        share = progress.share
        if share is not None:
            out["arrival_share"] = str(int(share * 100))
            out["arrival_percent"] = f"{int(share * 100)} %"
        if progress.eta_seconds is not None:
            out["arrival_eta"] = duration(max(progress.eta_seconds / 60, 1))
    return out
