"""Studies that reach Orthanc by other routes become studies; a crash and a restart of the
consumer neither lose nor double any."""

import pytest
from pydicom.uid import generate_uid

from ingest import changes_feed
from ingest.changes_feed import follow_changes
from ingest.models import ArrivingArchiveStudy, ChangesCursor
from ingest.tasks import follow_orthanc_changes
from orthanc.server import OrthancProcess
from studies.models import Study
from tests.helpers import dicom_copy, wait_for
from tests.paths import CT_HEAD

pytestmark = pytest.mark.django_db(transaction=True)


class Crash(Exception):
    pass


def _push_studies_straight_to_orthanc(client, tmp_path, count: int) -> list[str]:
    """As a modality's C-STORE or a peer would: the platform is not told."""
    uids = []
    for n in range(count):
        uid = generate_uid()
        for slice_no in (1, 2):
            path = dicom_copy(
                CT_HEAD / f"0{slice_no}.dcm",
                tmp_path / f"s{n}-{slice_no}.dcm",
                StudyInstanceUID=uid,
                SeriesInstanceUID=generate_uid(),
                SOPInstanceUID=generate_uid(),
            )
            client.store_instance(path.read_bytes())
        uids.append(uid)
    return uids


def _stable(client, uids):
    """Wait until Orthanc has declared each study stable (StableAge=1 s in tests)."""

    def all_stable():
        seen = set()
        for change in client.iter_changes(0):
            if change.change_type == "StableStudy":
                seen.add(client.study(change.resource_id)["MainDicomTags"]["StudyInstanceUID"])
        return set(uids) <= seen

    wait_for(all_stable, timeout=30, interval=0.5)


def test_a_crash_mid_batch_then_a_restart_loses_and_doubles_nothing(orthanc_server, tmp_path, monkeypatch):
    client = orthanc_server.client()
    uids = _push_studies_straight_to_orthanc(client, tmp_path, 3)
    _stable(client, uids)

    handled = []

    handle = changes_feed._handle

    def crash_after_first_new_study(batch, change):  # the process dies once a study is recorded
        handle(batch, change)
        handled.append(change)
        if Study.objects.filter(study_instance_uid__in=uids).exists():
            raise Crash("worker killed mid-batch")

    monkeypatch.setattr(changes_feed, "_handle", crash_after_first_new_study)
    with pytest.raises(Crash):
        follow_changes(client)
    monkeypatch.undo()
    # The crashed batch is rolled back whole: the cursor stays before it, its studies are gone.
    crashed_at = handled[-1].seq
    assert ChangesCursor.objects.get().last_seq < crashed_at
    assert not Study.objects.filter(study_instance_uid__in=uids).exists()

    follow_changes(client, max_batches=1)  # restart, and stop again after one batch
    follow_changes(client)  # and finish
    studies = Study.objects.filter(study_instance_uid__in=uids)
    assert sorted(studies.values_list("study_instance_uid", flat=True)) == sorted(uids)
    assert all(s.instances.count() == 2 for s in studies)
    assert all(s.source == "archive" and s.received_at for s in studies)

    cursor = ChangesCursor.objects.get().last_seq
    assert follow_changes(client) == 0  # nothing new: nothing read again
    assert ChangesCursor.objects.get().last_seq == cursor
    assert Study.objects.filter(study_instance_uid__in=uids).count() == 3


def _cursor_at_the_end_of_the_feed(client) -> None:
    """Where a running platform's cursor is: the session's Orthanc already holds every earlier
    test's instances, and replaying them all would queue their renditions ahead of this study."""
    since = 0
    while True:
        page = client.changes(since, limit=1000)
        since = page.last
        if page.done:
            break
    ChangesCursor.objects.update_or_create(name="orthanc", defaults={"last_seq": since})


def test_the_worker_follows_the_feed_into_the_reading_queue(celery_worker, orthanc_server, tmp_path):
    client = orthanc_server.client()
    _cursor_at_the_end_of_the_feed(client)
    [uid] = _push_studies_straight_to_orthanc(client, tmp_path, 1)
    _stable(client, [uid])
    follow_orthanc_changes.delay()
    study = wait_for(lambda: Study.objects.filter(study_instance_uid=uid).first(), timeout=30)
    assert study.instances.count() == 2
    # It then goes on to the reading queue like any other study.
    wait_for(lambda: Study.objects.get(pk=study.pk).status == "queued", timeout=30)


@pytest.mark.orthanc  # its own Orthanc, restarted mid-test
def test_instances_stored_just_before_an_orthanc_restart_are_recorded_and_completed(tmp_path, site_a):
    """Orthanc announces StableStudy from memory: restarted within its stability delay, it never
    does. The feed records each instance as it comes (NewInstance, study arriving) and completes
    the study when Orthanc says it is stable (IsStable), announcement or not."""
    archive = OrthancProcess(tmp_path / "orthanc", stable_age_s=600).start()  # ours: we restart it
    try:
        client = archive.client()
        [seen_before] = _push_studies_straight_to_orthanc(client, tmp_path, 1)
        follow_changes(client)
        study = Study.objects.get(study_instance_uid=seen_before)
        assert study.status == "arriving" and study.instances.count() == 2  # recorded as they came
        assert study.source == "archive" and study.site is None  # a peer's push: no modality AE

        [unseen] = _push_studies_straight_to_orthanc(client, tmp_path, 1)  # the platform is down
        archive.stop()
        archive.start()
        follow_changes(client)
        for uid in (seen_before, unseen):
            study = Study.objects.get(study_instance_uid=uid)
            assert study.instances.count() == 2
            assert study.status == "received", uid
        assert not [c for c in client.iter_changes(0) if c.change_type == "StableStudy"]
        assert not ArrivingArchiveStudy.objects.exists()  # nothing left to watch
    finally:
        archive.stop()
