"""The audit trail's one entry point: every app records what a person or machine did here.

record() never raises into the clinical action that called it, and never loses a row silently:

- a successful action ("ok") inside a transaction is written once that transaction commits
  (transaction.on_commit): if the caller rolls back, the action did not happen and leaves no row;
- a refused or failed action ("denied", "failed") inside a transaction is written at once on a
  connection of its own, in autocommit: the caller's rollback (often the very reason it failed)
  cannot take the row with it (on SQLite, the quickstart, it goes to the spool file instead: a
  second connection would wait for the caller's lock);
- outside a transaction, either is written at once;
- when the database refuses the write, the row goes to an append-only JSON-lines spool file under
  AUDIT_SPOOL_DIR (fsync'd), an error is logged, and the beat task audit.tasks.replay_spool puts it
  in the table later (spooled=True, its original time kept; each row's event_id makes a replay
  harmless). If even the file cannot be written, the whole row is logged at CRITICAL.
"""

from __future__ import annotations

import contextvars
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.http import HttpRequest
from django.utils import timezone

from .spool import spool

log = logging.getLogger("joliba.audit")

OUTCOMES = ("ok", "denied", "failed")

# The request being served (set by audit.middleware.AuditMiddleware): record() called without
# `request`, from a signal receiver deep in a service, still knows who asked and from where.
current_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "joliba_audit_request", default=None
)


class _Platform:
    """The actor of the platform's own moves (an expired claim, a push assignment, an export):
    never the user of whatever request happens to be running."""

    def __repr__(self) -> str:
        return "PLATFORM"


PLATFORM: Any = _Platform()


@dataclass(frozen=True)
class ObjectRef:
    """An object named without being loaded (a route's study id, an admin log entry's object)."""

    type: str
    id: str
    label: str = ""
    site_id: int | None = None


def record(
    action: str,
    *,
    request: HttpRequest | None = None,
    actor: Any = None,
    obj: Any = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> None:
    """Record `action` (a dotted code such as "study.viewed", "token.used") by `actor` (a User,
    or the request's user) on `obj` (a model instance), with its outcome ("ok", "denied",
    "failed") and a small JSON-able `detail` without patient data."""
    try:
        row = build_row(action, request=request, actor=actor, obj=obj, outcome=outcome, detail=detail)
    except Exception:  # never into the caller: the row without what could not be described
        log.exception("audit: could not describe %s %s (a %s)", action, outcome, type(obj).__name__)
        try:
            row = build_row(action, request=request, actor=actor, outcome=outcome)
            row["detail"]["undescribed"] = type(obj).__name__[:64]
        except Exception:
            row = _bare_row(action, outcome)
    try:
        if connection.in_atomic_block:
            if row["outcome"] == "ok":
                transaction.on_commit(partial(write, row), robust=True)
            elif connection.vendor == "postgresql":
                _write_apart(row)
            else:  # SQLite: a second connection would wait on this transaction's lock
                spool(row, refused=False)
        else:
            write(row)
    except Exception:
        log.exception("audit: could not schedule %s", row["action"])
        spool(row)


def build_row(
    action: str,
    *,
    request: Any = None,
    actor: Any = None,
    obj: Any = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The row's columns as JSON values (the spool file holds exactly this)."""
    from .addresses import client_address

    request = request if request is not None else current_request.get()
    if actor is PLATFORM:
        actor, platform = None, True
    else:
        platform = False
    if actor is None and request is not None and not platform:
        user = getattr(request, "user", None)
        actor = user if getattr(user, "is_authenticated", False) else None
    row = _bare_row(action, outcome if outcome in OUTCOMES else "failed")
    if actor is not None and getattr(actor, "pk", None) is not None:
        row["actor_id"] = actor.pk
        row["actor_username"] = str(getattr(actor, "username", ""))[:150]
        row["actor_role"] = _role(actor)
    elif isinstance(actor, str):  # a name without an account (a failed login's claimed name)
        row["actor_username"] = actor[:150]
    elif platform:
        row["actor_role"] = "platform"
    if request is not None:
        row["client_address"] = client_address(request)
        row["request_id"] = str(getattr(request, "audit_request_id", ""))[:64]
        row["request_method"] = str(getattr(request, "method", "") or "")[:8]
        row["request_path"] = str(getattr(request, "path", "") or "")[:300]
    if obj is not None:
        ref = describe(obj)
        row.update(object_type=ref.type, object_id=ref.id, object_label=ref.label, site_id=ref.site_id)
    if outcome not in OUTCOMES:
        row["detail"]["outcome_given"] = str(outcome)[:32]
    if detail:
        row["detail"].update(json.loads(json.dumps(detail, default=str)))
    return row


def _bare_row(action: str, outcome: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "at": timezone.now().isoformat(),
        "action": str(action)[:64],
        "outcome": outcome if outcome in OUTCOMES else "failed",
        "actor_id": None,
        "actor_username": "",
        "actor_role": "",
        "client_address": None,
        "object_type": "",
        "object_id": "",
        "object_label": "",
        "site_id": None,
        "request_id": "",
        "request_method": "",
        "request_path": "",
        "detail": {},
    }


def _role(user: Any) -> str:
    if getattr(user, "is_superuser", False) and not getattr(user, "role", ""):
        return "superuser"
    return str(getattr(user, "role", "") or "")[:16]


def describe(obj: Any) -> ObjectRef:
    """Type, id, a label without patient data, and the site of an object."""
    from accounts.models import Site, User
    from studies.models import Study

    if isinstance(obj, ObjectRef):
        return obj
    meta = getattr(obj, "_meta", None)
    kind = f"{meta.app_label}.{meta.model_name}" if meta else type(obj).__name__.lower()
    pk = str(getattr(obj, "pk", "") or "")[:64]
    study = _study_of(obj)
    if isinstance(obj, Study):
        return ObjectRef(kind, pk, obj.case_code[:120], obj.site_id)
    if study is not None:
        number = getattr(obj, "number", None)
        label = f"{study.case_code} v{number}" if number else study.case_code
        return ObjectRef(kind, pk, label[:120], study.site_id)
    if isinstance(obj, User):
        return ObjectRef(kind, pk, obj.username[:120], obj.site_id)
    if isinstance(obj, Site):
        return ObjectRef(kind, pk, obj.code[:120], obj.pk)
    site_id = getattr(obj, "site_id", None)
    return ObjectRef(kind, pk, f"#{pk}" if pk else "", site_id if isinstance(site_id, int) else None)


def _study_of(obj: Any) -> Any:
    """The study an object belongs to (a report, a version, an export, an instance), if any."""
    from studies.models import Study

    for path in (("study",), ("report", "study"), ("version", "report", "study")):
        found = obj
        for name in path:
            found = getattr(found, name, None)
            if found is None:
                break
        if isinstance(found, Study):
            return found
    return None


def write(row: dict[str, Any]) -> None:
    """Insert the row on the default connection; to the spool file if the database refuses."""
    from .models import AuditEvent

    try:
        AuditEvent.objects.bulk_create([event_of(row)], ignore_conflicts=True)
    except Exception:
        log.exception("audit: the database refused %s; kept in the spool file", row["action"])
        spool(row)


def _write_apart(row: dict[str, Any]) -> None:
    """Insert on a connection of its own (autocommit), beside the caller's transaction."""
    from .models import AuditEvent

    alias = f"audit-apart-{uuid.uuid4().hex[:8]}"
    default = connections[DEFAULT_DB_ALIAS]
    own = default.__class__({**default.settings_dict}, alias=alias)
    connections[alias] = own
    try:
        AuditEvent.objects.using(alias).bulk_create([event_of(row)], ignore_conflicts=True)
    except Exception:
        log.exception("audit: the database refused %s; kept in the spool file", row["action"])
        spool(row)
    finally:
        try:
            own.close()
        finally:
            del connections[alias]


def event_of(row: dict[str, Any], *, spooled: bool = False) -> Any:
    from .models import AuditEvent

    fields = dict(row)
    fields["event_id"] = uuid.UUID(str(fields["event_id"]))
    at = fields["at"]
    fields["at"] = datetime.fromisoformat(at) if isinstance(at, str) else at
    return AuditEvent(**fields, spooled=spooled)


def events_about(study: Any) -> list[dict[str, Any]]:
    """The trail's events about one study and its objects (reports, versions, images), oldest
    first, as JSON-able dicts: what the patient export (privacy.patient_export) hands over."""
    from django.db.models import Q

    from .models import AuditEvent

    ref = describe(study)
    about = (
        Q(object_type=ref.type, object_id=ref.id)
        | Q(object_label=ref.label)
        | Q(object_label__startswith=f"{ref.label} ")
    )
    fields = ("at", "action", "outcome", "actor_username", "actor_role", "object_type", "object_label")
    return list(AuditEvent.objects.filter(about).order_by("at", "id").values(*fields))
