"""Push mode and the claim sweep: the platform gives each waiting case to the least-loaded
competent radiologist on shift; claims past their time go back to the queue, by the periodic
task, run for real by a Celery worker once."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Modality, ReaderProfile
from assignment import push, tasks
from assignment.load import team_load
from assignment.models import Shift
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Priority, Status, Study, StudyEvent
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db


def _study(site, *, modality="CR", priority=Priority.ROUTINE, status=Status.QUEUED) -> Study:
    n = Study.objects.count() + 1
    return Study.objects.create(
        orthanc_id=f"s{n}",
        study_instance_uid=f"1.8.{n}",
        site=site,
        status=status,
        modality=modality,
        priority=priority,
    )


def _reader(django_user_model, name, *, modalities=Modality.values, limit=5, on_shift=True):
    user = django_user_model.objects.create_user(username=name, password="x", role="radiologist")
    ReaderProfile.objects.create(user=user, modalities=list(modalities), all_sites=True, max_in_hand=limit)
    now = timezone.now()
    if on_shift:
        Shift.objects.create(
            radiologist=user, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=7)
        )
    else:  # their shift is over
        Shift.objects.create(
            radiologist=user, starts_at=now - timedelta(hours=9), ends_at=now - timedelta(hours=1)
        )
    return user


def _holding(user) -> int:
    return Study.objects.filter(status=Status.IN_READING, assigned_to=user).count()


def test_push_gives_each_case_to_the_least_loaded_competent_radiologist_on_shift(
    django_user_model, site_a, settings
):
    settings.ASSIGNMENT_MODE = "push"
    busy = _reader(django_user_model, "busy")
    idle = _reader(django_user_model, "idle", limit=2)
    ct_only = _reader(django_user_model, "ct_only", modalities=["CT"])
    off_shift = _reader(django_user_model, "off", on_shift=False)
    for _ in range(2):  # busy already holds two
        lifecycle.transition(_study(site_a), Transition.CLAIM, actor=busy)
    stat = _study(site_a, priority=Priority.STAT)
    routine = [_study(site_a) for _ in range(3)]
    ct = _study(site_a, modality="CT")
    given = dict(push.assign_waiting_cases())
    # The STAT case went first, to the least loaded (idle holds none); idle then filled up to
    # its limit of 2, busy took the next; the CT went to the only CT reader; nobody off shift.
    assert given[stat.pk] == idle.pk
    assert given[ct.pk] == ct_only.pk
    assert [given[s.pk] for s in routine] == [idle.pk, busy.pk, busy.pk]
    assert (_holding(idle), _holding(busy), _holding(ct_only), _holding(off_shift)) == (2, 4, 1, 0)
    event = Study.objects.get(pk=stat.pk).history[-1]
    assert (event.transition, event.actor, event.assignee) == ("assign", None, idle)
    # Everyone on shift who may read a CR is full now (busy 4/5 takes one more): the rest wait.
    more = [_study(site_a) for _ in range(3)]
    given = dict(push.assign_waiting_cases())
    assert list(given.values()) == [busy.pk] and _holding(busy) == 5
    assert [Study.objects.get(pk=s.pk).status for s in more].count(Status.QUEUED) == 2
    loads = {load.user.username: load for load in team_load()}
    assert (loads["busy"].in_hand, loads["busy"].limit, loads["busy"].on_shift) == (5, 5, True)
    assert (loads["idle"].given_lately, loads["off"].on_shift) == (2, False)


def test_ties_go_to_whoever_was_given_fewer_cases_lately(django_user_model, site_a, settings):
    settings.ASSIGNMENT_MODE = "push"
    first, second = _reader(django_user_model, "first"), _reader(django_user_model, "second")
    done = _study(site_a)
    lifecycle.transition(done, Transition.CLAIM, actor=first)
    lifecycle.transition(done, Transition.SIGN, actor=first)  # both hold nothing; first read one
    case = _study(site_a)
    assert push.assign_waiting_cases() == [(case.pk, second.pk)]


def test_in_pull_mode_the_sweep_assigns_nothing_and_expires_what_is_overdue(
    django_user_model, site_a, settings
):
    settings.ASSIGNMENT_MODE = "pull"
    settings.ASSIGNMENT_CLAIM_TIMEOUT_MINUTES = 45
    reader = _reader(django_user_model, "reader")
    waiting, held = _study(site_a), _study(site_a)
    lifecycle.transition(held, Transition.CLAIM, actor=reader)
    StudyEvent.objects.filter(study=held).update(at=timezone.now() - timedelta(minutes=46))
    assert tasks.sweep_claims() == {"expired": 1, "assigned": 0}
    assert Study.objects.get(pk=waiting.pk).status == Status.QUEUED
    held.refresh_from_db()
    assert (held.status, held.history[-1].transition) == (Status.QUEUED, "expire")
    settings.ASSIGNMENT_MODE = "push"  # the same sweep then gives both out
    assert tasks.sweep_claims() == {"expired": 0, "assigned": 2}


@pytest.mark.django_db(transaction=True)
def test_the_periodic_sweep_run_by_a_worker_returns_an_overdue_claim_with_a_trace(
    celery_worker, django_user_model, site_a
):
    """The worker runs with the deployment's defaults (a 120-minute timeout): the claim is
    three hours old."""
    reader = _reader(django_user_model, "night")
    overdue, fresh = _study(site_a), _study(site_a)
    for study in (overdue, fresh):
        lifecycle.transition(study, Transition.CLAIM, actor=reader)
    StudyEvent.objects.filter(study=overdue).update(at=timezone.now() - timedelta(hours=3))
    tasks.sweep_claims.delay()
    wait_for(lambda: Study.objects.get(pk=overdue.pk).status == Status.QUEUED, timeout=30)
    trace = Study.objects.get(pk=overdue.pk).history[-1]
    assert (trace.transition, trace.actor, trace.reason_code) == ("expire", None, "claim_timeout")
    assert Study.objects.get(pk=fresh.pk).status == Status.IN_READING


def test_an_admin_edits_reading_profiles_and_the_rota_in_the_admin(django_user_model, site_b, client):
    boss = django_user_model.objects.create_superuser(username="boss", password="x", role="admin")
    reader = django_user_model.objects.create_user(username="newdr", password="x", role="radiologist")
    client.force_login(boss)
    page = client.get("/admin/accounts/readerprofile/add/").content.decode()
    assert "Scanner (CT)" in page and "examens en main au plus" in page.lower()
    answer = client.post(
        "/admin/accounts/readerprofile/add/",
        {"user": reader.pk, "modalities": ["CR", "CT"], "sites": [site_b.pk], "max_in_hand": 3},
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    profile = ReaderProfile.objects.get(user=reader)
    assert (sorted(profile.modalities), list(profile.sites.all()), profile.max_in_hand) == (
        ["CR", "CT"],
        [site_b],
        3,
    )
    assert "Tableau de garde" in client.get("/admin/assignment/shift/").content.decode()
    start = {
        "starts_at_0": "01/12/2026",
        "starts_at_1": "20:00",
        "ends_at_0": "02/12/2026",
        "ends_at_1": "08:00",
    }
    answer = client.post("/admin/assignment/shift/add/", {"radiologist": reader.pk, **start, "note": "nuit"})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    backwards = {**start, "ends_at_0": "01/12/2026", "ends_at_1": "19:00"}
    refused = client.post("/admin/assignment/shift/add/", {"radiologist": reader.pk, **backwards})
    assert (
        refused.status_code == 200 and "La fin de la garde doit suivre son début." in refused.content.decode()
    )
    assert Shift.objects.filter(radiologist=reader).count() == 1


def test_the_demo_radiologists_read_everything_from_the_start(db):
    from django.core.management import call_command

    from accounts.models import User

    call_command("seed_demo", stdout=open(os.devnull, "w"))
    for user in User.objects.filter(role=User.Role.RADIOLOGIST):
        profile = ReaderProfile.objects.get(user=user)
        assert profile.all_sites and sorted(profile.modalities) == sorted(Modality.values)


@pytest.mark.django_db(transaction=True)
def test_radiologists_from_before_reading_profiles_keep_reading_everything():
    from django.db import connection as conn
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(conn)
    before = [("accounts", "0002_reader_profile")]
    latest = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    old = executor.loader.project_state(before).apps
    old_user = old.get_model("accounts", "User")
    old_user.objects.create(username="veteran", role="radiologist")
    old_user.objects.create(username="coordinator", role="admin")
    executor = MigrationExecutor(conn)
    executor.migrate(latest)
    profile = ReaderProfile.objects.get(user__username="veteran")
    assert profile.all_sites and sorted(profile.modalities) == sorted(Modality.values)
    assert not ReaderProfile.objects.filter(user__username="coordinator").exists()
