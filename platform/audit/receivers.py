"""What the audit hears from other apps' signals, without editing their code.

- logins: Django's user_logged_in / user_login_failed / user_logged_out, and django-axes'
  user_locked_out when axes is installed. One row per attempt: "login.failed", or
  "login.locked_out" when axes refused the attempt or locked the client out on it;
- the lifecycle's event_recorded (inside the move's transaction; the row is written on commit,
  so a move rolled back leaves none): claimed, released, assigned, reassigned, handed over,
  expired, returned as not diagnostic (signing and amending are the reports' rows below);
- reports' version_signed (after commit): "report.signed" (first version) or "report.amended";
- a report's export to Orthanc (ReportExport saved done or failed): "report.exported";
- the Django admin's LogEntry: "admin.added", "admin.changed", "admin.deleted" with the field
  names changed (never their values).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from importlib import import_module
from typing import Any, TypeVar

from django.apps import apps
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save

from .api import PLATFORM, ObjectRef, record

log = logging.getLogger("joliba.audit")

LIFECYCLE_ACTIONS = {
    "claim": "case.claimed",
    "release": "case.released",
    "assign": "case.assigned",
    "reassign": "case.reassigned",
    "hand_over": "case.handed_over",
    "expire": "case.expired",
    "return": "case.returned",
}
ADMIN_ACTIONS = {ADDITION: "admin.added", CHANGE: "admin.changed", DELETION: "admin.deleted"}
PENDING_LOGIN = "_audit_pending_login"

Receiver = TypeVar("Receiver", bound=Callable[..., None])


def never_raises(receiver: Receiver) -> Receiver:
    """A receiver that raised would break the sender's action (the lifecycle's event_recorded
    refuses the move): the audit logs its own trouble instead."""

    @functools.wraps(receiver)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            receiver(*args, **kwargs)
        except Exception:
            log.exception("audit: receiver %s failed", receiver.__name__)

    return guarded  # type: ignore[return-value]


def connect() -> None:
    from accounts.events import account_event
    from reports.models import ReportExport
    from reports.services import version_signed
    from studies.lifecycle import event_recorded

    user_logged_in.connect(on_logged_in, dispatch_uid="audit.logged_in")
    user_logged_out.connect(on_logged_out, dispatch_uid="audit.logged_out")
    user_login_failed.connect(on_login_failed, dispatch_uid="audit.login_failed")
    account_event.connect(on_account_event, dispatch_uid="audit.account_event")
    if apps.is_installed("axes"):  # the auth app's django-axes; without it, no lockouts to hear
        axes_signals = import_module("axes.signals")  # by name: axes is the auth app's dependency
        axes_signals.user_locked_out.connect(on_locked_out, dispatch_uid="audit.locked_out")
    event_recorded.connect(on_event_recorded, dispatch_uid="audit.event_recorded")
    version_signed.connect(on_version_signed, dispatch_uid="audit.version_signed")
    post_save.connect(on_export_saved, sender=ReportExport, dispatch_uid="audit.export_saved")
    post_save.connect(on_log_entry, sender=LogEntry, dispatch_uid="audit.log_entry")


def on_account_event(sender: Any, action: str, signal: Any = None, **fields: Any) -> None:
    """What accounts announces (second factor, logout everywhere, devices removed): written as a
    direct call writes it; not never_raises, since the caller would have seen record() raise."""
    record(action, **fields)


@never_raises
def on_logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    record("login.succeeded", request=request, actor=user)


@never_raises
def on_logged_out(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    if user is not None:
        record("logout", request=request, actor=user)


def _claimed_name(credentials: dict[str, Any] | None) -> str:
    return str((credentials or {}).get("username") or "")[:150]


@never_raises
def on_login_failed(sender: Any, credentials: Any = None, request: Any = None, **kwargs: Any) -> None:
    """A failed attempt. With a request, the row is written when the request ends (the audit
    middleware), so that axes, which may lock the client out on this very attempt, turns it into
    one "login.locked_out" row instead of two rows."""
    name = _claimed_name(credentials)
    locked = bool(getattr(request, "axes_locked_out", False))
    action = "login.locked_out" if locked else "login.failed"
    outcome = "denied" if locked else "failed"
    if request is None or getattr(request, "audit_request_id", None) is None:
        record(action, request=request, actor=name, outcome=outcome)
        return
    _http(request).__dict__[PENDING_LOGIN] = {"action": action, "actor": name, "outcome": outcome}


@never_raises
def on_locked_out(sender: Any, request: Any = None, username: Any = None, **kwargs: Any) -> None:
    name = str(username or "")[:150]
    if request is not None and getattr(request, "audit_request_id", None) is not None:
        pending = {"action": "login.locked_out", "actor": name, "outcome": "denied"}
        _http(request).__dict__[PENDING_LOGIN] = pending
        return
    record("login.locked_out", request=request, actor=name, outcome="denied")


def _http(request: Any) -> Any:
    """The Django request under a DRF Request (the token endpoint authenticates with the latter)."""
    return getattr(request, "_request", request)


def flush_pending_login(request: Any) -> None:
    """Called by the audit middleware once the view has answered."""
    pending = _http(request).__dict__.pop(PENDING_LOGIN, None)
    if pending:
        record(pending["action"], request=request, actor=pending["actor"], outcome=pending["outcome"])


@never_raises
def on_event_recorded(sender: Any, study: Any = None, event: Any = None, **kwargs: Any) -> None:
    action = LIFECYCLE_ACTIONS.get(getattr(event, "transition", ""))
    if action is None or study is None:
        return  # the platform's own moves (arrive, receive, queue, reopen), and sign/amend/deliver
    detail: dict[str, Any] = {"from": event.from_status, "to": event.to_status}
    if event.reason_code:
        detail["reason"] = event.reason_code
    if event.assignee_id:
        detail["assignee"] = event.assignee.username if event.assignee else event.assignee_id
    record(action, actor=event.actor or PLATFORM, obj=study, detail=detail)


@never_raises
def on_version_signed(sender: Any, version_id: int | None = None, **kwargs: Any) -> None:
    from reports.models import ReportVersion, VersionKind

    if version_id is None:
        return
    version = (
        ReportVersion.objects.select_related("author", "report__study__site").filter(pk=version_id).first()
    )
    if version is None:
        return
    action = "report.signed" if version.kind == VersionKind.ORIGINAL else "report.amended"
    record(
        action,
        actor=version.author,
        obj=version,
        detail={"version": version.number, "kind": version.kind},
    )


@never_raises
def on_export_saved(sender: Any, instance: Any = None, update_fields: Any = None, **kwargs: Any) -> None:
    from reports.models import ExportState

    if instance is None or not update_fields or "state" not in update_fields:
        return
    if instance.state not in (ExportState.DONE, ExportState.FAILED):
        return
    outcome = "ok" if instance.state == ExportState.DONE else "failed"
    record(
        "report.exported",
        actor=PLATFORM,
        obj=instance,
        outcome=outcome,
        detail={"version": instance.version.number, "attempt": instance.attempts, "to": "orthanc"},
    )


@never_raises
def on_log_entry(sender: Any, instance: LogEntry, created: bool = False, **kwargs: Any) -> None:
    if not created:
        return
    action = ADMIN_ACTIONS.get(instance.action_flag, "admin.changed")
    model = instance.content_type.model_class() if instance.content_type_id else None
    target: Any = None
    if model is not None:  # a deletion is logged before the object goes: it is still there
        target = model._default_manager.filter(pk=instance.object_id).first()
    if target is None:
        kind = f"{instance.content_type.app_label}.{instance.content_type.model}" if model else ""
        target = ObjectRef(kind, str(instance.object_id or "")[:64], f"#{instance.object_id}")
    record(action, actor=instance.user, obj=target, detail={"fields": _changed_fields(instance)})


def _changed_fields(entry: LogEntry) -> list[str]:
    """The names of the fields changed, from the admin's structured message (never values)."""
    try:
        message = json.loads(entry.change_message or "[]")
    except ValueError:
        return []
    names: list[str] = []
    for part in message if isinstance(message, list) else []:
        for verb in ("added", "changed", "deleted"):
            body = part.get(verb) if isinstance(part, dict) else None
            if isinstance(body, dict):
                names += [str(f) for f in body.get("fields", [])]
                if "name" in body:
                    names.append(f"{verb}:{body['name']}")
    return names[:50]
