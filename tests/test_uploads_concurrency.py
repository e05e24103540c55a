"""Under load no finalisation is silently skipped.

Creating a transfer used to lock every open transfer of the site (complete ones included) for
its quota check, and the finaliser skipped locked rows (`skip_locked`) with nobody queueing it
again: in three CT runs, 2 to 8 of 28 files waited for the 10-minute sweep. Now creation locks
only the site's row, and a finaliser that finds its transfer held asks again within seconds.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction

from tests.helpers import api_client, ct_study_bytes, wait_for
from tests.test_uploads_tus import _create, _patch
from uploads import finalisation, spool, tasks
from uploads.models import Transfer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.orthanc]


def queued_tasks() -> int:
    """Messages waiting in this test's queue, asked of the broker (RabbitMQ or Redis)."""
    from health.metrics import queue_depths
    from joliba.celery import app

    queue = app.conf.task_default_queue
    return queue_depths([queue])[queue]


def in_a_thread(work):
    """Run `work` on its own database connection, as another request of the web server would."""

    def run(*args):
        try:
            return work(*args)
        finally:
            connection.close()

    return run


def test_creating_a_transfer_leaves_the_sites_complete_ones_to_their_finaliser(tech_a, tmp_path, monkeypatch):
    monkeypatch.setattr(tasks.finalise_transfer, "delay", lambda *a, **k: None)  # by hand here
    [data, other] = ct_study_bytes(tmp_path, range(1, 2 + 1))
    tech = api_client(tech_a)
    _patch(tech, _create(tech, data)["Location"], 0, data)
    complete = Transfer.objects.get(state="complete")

    inside, release = threading.Event(), threading.Event()
    create_part = spool.create_part

    def held_in_the_quota_check(transfer_id):
        inside.set()  # the creating request is inside its quota transaction, and stays there
        release.wait(30)
        return create_part(transfer_id)

    monkeypatch.setattr(spool, "create_part", held_in_the_quota_check)
    creating = threading.Thread(target=in_a_thread(lambda: _create(api_client(tech_a), other)))
    creating.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        assert finalisation.finalise_transfer(complete.pk) == finalisation.Finalised.DONE
        assert time.monotonic() - started < 20  # not waiting for the creation either
    finally:
        release.set()
        creating.join(30)
    assert Transfer.objects.get(pk=complete.pk).outcome == "stored"
    assert Transfer.objects.count() == 2


def test_a_finalisation_that_finds_its_transfer_held_is_tried_again_soon(
    celery_worker, worker_spool_dir, settings, tech_a, tmp_path, monkeypatch
):
    settings.INGEST_SPOOL_DIR = worker_spool_dir  # the worker reads what the web side wrote
    [data] = ct_study_bytes(tmp_path, range(1, 1 + 1))
    tech = api_client(tech_a)
    with monkeypatch.context() as m:
        m.setattr(tasks.finalise_transfer, "delay", lambda *a, **k: None)
        _patch(tech, _create(tech, data)["Location"], 0, data)
    transfer = Transfer.objects.get(state="complete")

    holding, release = threading.Event(), threading.Event()

    def hold_the_row():
        with transaction.atomic():
            list(Transfer.objects.select_for_update().filter(pk=transfer.pk))
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=in_a_thread(hold_the_row))
    holder.start()
    assert holding.wait(10)
    tasks.finalise_transfer.delay(str(transfer.pk))  # the worker finds the row held: busy
    wait_for(lambda: queued_tasks() == 0, timeout=20)  # the worker has taken it...
    time.sleep(1)  # ...and tried (milliseconds: a skip_locked SELECT)
    release.set()
    holder.join(10)
    assert Transfer.objects.get(pk=transfer.pk).state == "complete"  # the first try was skipped...
    done = wait_for(lambda: Transfer.objects.filter(pk=transfer.pk, state="finalised").first(), timeout=30)
    assert done.outcome == "stored"  # ...and the retry came seconds later, not with the sweep


def test_many_creations_and_finalisations_at_once_leave_no_transfer_behind(
    celery_worker, worker_spool_dir, settings, tech_a, tmp_path
):
    """Four senders of one site, 16 slices, the worker finalising while others create."""
    settings.INGEST_SPOOL_DIR = worker_spool_dir
    slices = ct_study_bytes(tmp_path, range(1, 16 + 1))

    def sender(batch):
        tech = api_client(tech_a)
        for data in batch:
            url = _create(tech, data)["Location"]
            assert _patch(tech, url, 0, data).status_code == 204

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(in_a_thread(sender), [slices[i::4] for i in range(4)]))
    assert Transfer.objects.count() == 16

    def all_finalised():
        return not Transfer.objects.exclude(state="finalised").exists()

    wait_for(all_finalised, timeout=120, interval=0.5)  # no sweep in this test: the tasks alone
    assert set(Transfer.objects.values_list("outcome", flat=True)) == {"stored"}
