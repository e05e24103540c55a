"""The access matrix's personas and the world they act on (tests/test_access_matrix.py).

Eight personas, each a way of arriving at the platform:

- `tech_a`: technician of site A (Kayes), whose studies, sendings and alerts the world holds;
- `tech_b`: technician of site B (Sikasso);
- `reader`: radiologist with reading rights for site A's modality (CR; sites A and C), holding
  the study being read, who signed the reported one and is on the on-call list;
- `nonreader`: radiologist without rights on site A (every modality, site B only; a radiologist
  with no reading profile at all sees the same nothing: tests/test_access.py);
- `admin`: the platform's administrator (role admin, staff and superuser, as `seed_demo` makes
  them; attached to no site);
- `anon`: nobody signed in;
- `revoked`: a machine (site agent) of site A whose token was revoked, sending it on every request;
- `expired`: a browser holding the admin's session cookie after that session expired.

Switches for the other helpers' work, each in one place: `login` (force_login today;
`tests.helpers.login_verified` once the second factor is required), `issue_token` and
`revoke_token` (tokens.service.issue / revoke: hashed machine tokens, revoked = refused).

Nothing here imports Django at module level (conftest-style), so it can be imported anywhere.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

PERSONAS: tuple[str, ...] = ("tech_a", "tech_b", "reader", "nonreader", "admin", "anon", "revoked", "expired")

DESCRIPTIONS = {
    "tech_a": "technician of site A",
    "tech_b": "technician of site B",
    "reader": "radiologist with rights on site A's CR",
    "nonreader": "radiologist without rights on site A",
    "admin": "administrator (staff, superuser)",
    "anon": "anonymous",
    "revoked": "site A's agent, token revoked",
    "expired": "admin's session, expired",
}

# Put in site A's studies so that a page or an answer showing them to the wrong person is seen
# (a list that answers 200 leaks by its content, not by its status).
SITE_A_MARKER = "Zzmatrixa"


# --- The switches ----------------------------------------------------------------------------
def login(client: Any, user: Any) -> None:
    """Sign `user` in on this test client. Switch to tests.helpers.login_verified (second factor
    verified where the role requires one) when the auth helper lands: this one line."""
    client.force_login(user)


def issue_token(user: Any, *, name: str, site: Any = None) -> tuple[Any, str]:
    """A machine token for `user`: (the token object, the secret sent as `Authorization: Token`)."""
    from tokens import service

    return service.issue(user, name=name, site=site)


def revoke_token(token: Any) -> None:
    """Revoke a token issued by issue_token (the row stays, refused from now on)."""
    from tokens import service

    service.revoke(token)


def expire_session(client: Any) -> str:
    """Make the client's session expired (its expiry in the past) through the session engine, so
    it holds for the database, cached_db and cache engines alike; returns the session key the
    cookie still carries."""
    from django.utils import timezone

    session = client.session
    key = session.session_key
    session.set_expiry(timezone.now() - timedelta(minutes=1))
    session.save()
    return key


# --- The world -------------------------------------------------------------------------------
@dataclass
class World:
    """The people and the objects of site A every route is tried on (pks only where a route
    needs them; objects for setting up and checking effects)."""

    users: dict[str, Any]
    site_a: Any
    site_b: Any
    site_c: Any
    colleague: Any  # a second radiologist reading site A's CR: hand-over, reassignment, opinion
    queued: Any  # complete, waiting in the worklist: claim, detail, viewer, consult
    held: Any  # in reading by `reader`: read, report, release, return, hand-over, reassign
    reported: Any  # signed by `reader`: report page, PDF, amendment
    other_site_study: Any  # site C: the "same patient?" verdict between two sites
    site_b_study: Any  # site B's: its pk with site A's image in one URL must open nothing
    instance: Any  # an image of `queued` with a rendition and an AI heatmap
    rendition_name: str
    submission: Any  # a sending of site A (the plain form's result page)
    transfer: Any  # a resumable transfer of site A, receiving
    manifest: Any  # a study manifest of site A
    opinion: Any  # a second opinion asked of `reader` by the colleague
    ack_alert: Any  # an SMS alert waiting for acknowledgement by link
    failed_alert: Any  # a failed alert an admin may resend
    phone_task: Any  # a phone task of the duty page
    revoked_secret: str
    expired_session_key: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, persona: str) -> Any:
        """A new test client arriving as `persona` (a fresh one per request: a logout or an
        expired session in one cell never leaks into the next)."""
        if persona == "anon":
            return self._new_client()
        if persona == "revoked":
            return self._new_client(HTTP_AUTHORIZATION=f"Token {self.revoked_secret}")
        client = self._new_client()
        client.cookies = copy.deepcopy(self.sessions()[persona])
        return client

    def sessions(self) -> dict[str, Any]:
        """Each signed-in persona's session cookie, made once (a cell that logs out or changes
        the session is rolled back with its savepoint, so the cookie stays good)."""
        if "sessions" not in self.extra:
            made = {}
            for persona in ("tech_a", "tech_b", "reader", "nonreader", "admin", "expired"):
                client = self._new_client()
                login(client, self.users["admin" if persona == "expired" else persona])
                if persona == "expired":
                    self.expired_session_key = expire_session(client)
                made[persona] = client.cookies
            self.extra["sessions"] = made
        return self.extra["sessions"]

    def _new_client(self, **defaults: Any) -> Any:
        """A new client (its own cookies) sharing one handler: loading the middleware is what
        costs (WhiteNoise indexes every static file), so it is done once per module."""
        from django.test import Client
        from django.test.client import ClientHandler

        client = Client(**defaults)
        if "handler" not in self.extra:
            self.extra["handler"] = ClientHandler(enforce_csrf_checks=False)
        client.handler = self.extra["handler"]
        return client


def _user(username: str, role: str, site: Any = None, **extra: Any) -> Any:
    from accounts.models import User

    return User.objects.create_user(
        username=username,
        password="pw-" + username,
        role=role,
        site=site,
        first_name=username.title(),
        **extra,
    )


def _reader(username: str, *, modalities: list[str], sites: list[Any]) -> Any:
    from accounts.models import ReaderProfile

    user = _user(username, "radiologist")
    profile = ReaderProfile.objects.create(user=user, modalities=modalities)
    profile.sites.set(sites)
    return user


def build_world(renditions_root: Any, spool_dir: Any) -> World:
    """Create the personas and site A's objects in every state the routes need, through the
    platform's own services where there is one (lifecycle moves, report signing, transfers,
    manifests). Call inside a transaction the caller rolls back."""
    from django.test import override_settings
    from django.utils import timezone

    from accounts.models import Modality, Site
    from alerts.links import ack_token
    from alerts.models import Alert, Category, Channel, Kind, OnCallEntry
    from alerts.models import Status as AlertStatus
    from assignment.models import SecondOpinion
    from ingest.models import Submission
    from preread.models import ImageResult, Outcome, PreRead
    from reports.services import save_report
    from studies import lifecycle
    from studies.lifecycle import Transition
    from studies.models import Instance
    from uploads import manifests, transfers
    from viewer import storage
    from viewer.models import Format, Rendition
    from viewer.models import Kind as RenditionKind

    site_a = Site.objects.create(code="kayes", name="Hôpital de Kayes", region="Kayes", dicom_aet="KAYES_CR")
    site_b = Site.objects.create(code="sikasso", name="Hôpital de Sikasso", region="Sikasso")
    site_c = Site.objects.create(code="segou", name="Hôpital de Ségou", region="Ségou")
    users = {
        "tech_a": _user("m_tech_a", "technician", site_a),
        "tech_b": _user("m_tech_b", "technician", site_b),
        "reader": _reader("m_reader", modalities=["CR"], sites=[site_a, site_c]),
        "nonreader": _reader("m_nonreader", modalities=list(Modality.values), sites=[site_b]),
        "admin": _user("m_admin", "admin", is_staff=True, is_superuser=True),
    }
    reader = users["reader"]
    colleague = _reader("m_colleague", modalities=["CR"], sites=[site_a])
    OnCallEntry.objects.create(user=reader, role=OnCallEntry.Role.RADIOLOGIST, position=0)

    n = iter(range(1, 1000))

    def study(site: Any, patient: str = SITE_A_MARKER) -> Any:
        i = next(n)
        made = lifecycle.create_study(
            event=Transition.RECEIVE,
            orthanc_id=f"matrix-study-{i}",
            study_instance_uid=f"1.2.826.0.1.3680043.10.999.{i}",
            site=site,
            modality="CR",
            patient_name=f"{patient}^Awa",
            patient_id=f"MTX{i:04d}",
            description="Thorax de face",
        )
        return lifecycle.transition(made, Transition.QUEUE)

    queued = study(site_a)
    held = lifecycle.transition(study(site_a), Transition.CLAIM, actor=reader)
    save_report(study=held, author=reader, findings="Poumons clairs.", conclusion="Examen normal.")
    reported = lifecycle.transition(study(site_a), Transition.CLAIM, actor=reader)
    save_report(
        study=reported, author=reader, findings="Poumons clairs.", conclusion="Examen normal.", sign=True
    )
    reported.refresh_from_db()
    other_site_study = study(site_c, patient="Zzother")
    site_b_study = study(site_b, patient="Zzsiteb")
    mine = lifecycle.transition(study(site_a), Transition.CLAIM, actor=colleague)  # the colleague asks
    opinion = SecondOpinion.objects.create(
        study=mine, asked_by=colleague, asked_of=reader, question="Opacité basale droite ?"
    )

    instance = Instance.objects.create(
        study=queued,
        sop_instance_uid="1.2.826.0.1.3680043.10.999.1.1",
        series_instance_uid="1.2.826.0.1.3680043.10.999.1.0",
        orthanc_id="matrix-instance-1",
        instance_number=1,
        modality="CR",
    )
    webp = (
        b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
    )
    with override_settings(JOLIBA_RENDITIONS_ROOT=renditions_root):
        digest = storage.put(webp)
    rendition = Rendition.objects.create(
        instance=instance,
        kind=RenditionKind.PREVIEW,
        frame=0,
        format=Format.WEBP,
        width=1,
        height=1,
        digest=digest,
        size=len(webp),
    )
    preread = PreRead.objects.create(
        study=queued, models_key="matrix", status=Outcome.SCORED, is_current=True
    )
    ImageResult.objects.create(
        preread=preread, instance=instance, status=Outcome.SCORED, heatmap_png=b"\x89PNG\r\n\x1a\nmatrix"
    )

    submission = Submission.objects.create(site=site_a, sender=users["tech_a"], indication="Toux")
    with override_settings(INGEST_SPOOL_DIR=spool_dir):
        transfer = transfers.create_transfer(user=users["tech_a"], length=10, metadata={"filename": "a.dcm"})
    manifest, _created = manifests.open_manifest(
        user=users["tech_a"], manifest_id=None, indication="Toux", expected_files=1
    )

    now = timezone.now()

    def alert(key: str, **fields: Any) -> Any:
        base: dict[str, Any] = {
            "kind": Kind.STAT_ARRIVED,
            "category": Category.CRITICAL,
            "study": queued,
            "chain": f"matrix-{key}",
            "recipient": reader,
            "address": "+22370000001",
            "channel": Channel.SMS,
            "dedupe_key": f"matrix-{key}",
            "params": {"code": "KAYES-1"},
            "next_attempt_at": now,
        }
        base.update(fields)
        return Alert.objects.create(**base)

    ack_alert = alert("ack", needs_ack=True, status=AlertStatus.SENT)
    failed_alert = alert("failed", status=AlertStatus.FAILED, reason_code="gateway")
    phone_task = alert("phone", channel=Channel.PHONE, status=AlertStatus.PENDING, needs_ack=True)

    # A row of each model the admin lists, so its change, history and delete pages are opened on
    # a real object (a model without one is still tried: the admin then sends to its index).
    from django.contrib.auth.models import Group

    from alerts.models import GatewayState, NotificationSettings, SiteAlertSettings
    from assignment.models import PatientLink, Shift
    from reports.models import ReportExport

    Group.objects.create(name="matrix")
    Shift.objects.create(radiologist=reader, starts_at=now, ends_at=now + timedelta(hours=8))
    PatientLink.objects.create(
        site_a=site_b,
        patient_id_a="MTXB",
        site_b=site_c,
        patient_id_b="MTXC",
        verdict=PatientLink.Verdict.DIFFERENT,
        decided_by=colleague,
    )
    NotificationSettings.objects.create(user=users["tech_a"])
    SiteAlertSettings.objects.create(site=site_a)
    GatewayState.objects.create(channel=Channel.SMS)
    ReportExport.objects.get_or_create(
        version=reported.report.latest,
        defaults={
            "pdf_sop_instance_uid": "1.2.826.0.1.3680043.10.999.9.1",
            "sr_sop_instance_uid": "1.2.826.0.1.3680043.10.999.9.2",
        },
    )

    token, secret = issue_token(users["tech_a"], name="agent-kayes", site=site_a)
    revoke_token(token)
    live_token, _secret = issue_token(users["tech_b"], name="agent-sikasso", site=site_b)

    world = World(
        users=users,
        site_a=site_a,
        site_b=site_b,
        site_c=site_c,
        colleague=colleague,
        queued=queued,
        held=held,
        reported=reported,
        other_site_study=other_site_study,
        site_b_study=site_b_study,
        instance=instance,
        rendition_name=rendition.name,
        submission=submission,
        transfer=transfer,
        manifest=manifest,
        opinion=opinion,
        ack_alert=ack_alert,
        failed_alert=failed_alert,
        phone_task=phone_task,
        revoked_secret=secret,
        extra={"ack_token": ack_token(ack_alert.pk), "live_token": live_token},
    )
    world.sessions()  # in the caller's transaction, not in a cell's savepoint
    return world
