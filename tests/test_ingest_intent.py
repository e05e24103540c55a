"""A crash must not strip a study of its site.

A process killed right after Orthanc stored a file and before the platform recorded it used to
leave the instance to the changes feed, which made a study with no site, source "archive",
routine, no indication; the technician's retry came back "duplicate" and the study answered
404 to them for ever. The sender's intent is now written (and committed) before the archive
sees the file, and every route that later meets the instance attributes it from there.

The crash point is made exact: `record_instance` raises a BaseException (nothing catches it, as
nothing survives a SIGKILL), right after Orthanc answered the store. The same moment with a real
SIGKILL of the web process is in tests/test_uploads_server_kill.py.
"""

import pydicom
import pytest
from django.urls import reverse
from pydicom.uid import generate_uid

from ingest.changes_feed import follow_changes
from ingest.models import ChangesCursor, FileVerdict, InstanceIntent
from studies.models import Instance, Study
from tests.helpers import api_client, dicom_copy, in_archive
from tests.paths import CT_HEAD
from tests.test_uploads_tus import _create, _patch
from uploads import finalisation, tasks
from uploads.models import Transfer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.orthanc]


class Killed(BaseException):
    """The process dies here: no handler runs, every open transaction is rolled back."""


def _killed_after_the_store(**kwargs):
    raise Killed


def start_feed_at_the_present(client) -> None:
    """The changes feed skips what the archive held before (earlier tests' changes are not ours)."""
    last = 0
    for change in client.iter_changes(0):
        last = change.seq
    ChangesCursor.objects.update_or_create(name="orthanc", defaults={"last_seq": last})


@pytest.fixture
def feed_from_now(orthanc_server):
    client = orthanc_server.client()
    start_feed_at_the_present(client)
    return client


def fresh_ct(tmp_path, name="ct.dcm"):
    path = dicom_copy(
        CT_HEAD / "05.dcm",
        tmp_path / name,
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
    )
    return path, pydicom.dcmread(path, stop_before_pixels=True)


def assert_attributed(study: Study, tech) -> None:
    assert (study.site_id, study.uploaded_by_id, study.source) == (tech.site_id, tech.pk, "upload")
    assert (study.priority, study.indication) == ("stat", "Traumatisme crânien")


def test_a_transfer_killed_between_the_archive_and_the_record_keeps_its_site(
    tech_a, orthanc_server, feed_from_now, tmp_path, monkeypatch, client
):
    monkeypatch.setattr(tasks.finalise_transfer, "delay", lambda *a, **k: None)  # no worker: by hand
    path, ds = fresh_ct(tmp_path)
    data = path.read_bytes()
    tech = api_client(tech_a)
    url = _create(tech, data, priority="stat", indication="Traumatisme crânien")["Location"]
    assert _patch(tech, url, 0, data).status_code == 204
    transfer = Transfer.objects.get()

    with monkeypatch.context() as m:
        m.setattr("ingest.services.record_instance", _killed_after_the_store)
        with pytest.raises(Killed):
            finalisation.finalise_transfer(transfer.pk)
    # Orthanc has the file; the platform has nothing of it but the intent written before.
    assert in_archive(orthanc_server, str(ds.SOPInstanceUID))
    assert not Instance.objects.exists() and not FileVerdict.objects.exists()
    assert Transfer.objects.get().state == "complete"
    assert InstanceIntent.objects.filter(sop_instance_uid=ds.SOPInstanceUID).exists()

    # Nobody finalises it for a while; the changes feed meets the instance first.
    follow_changes(feed_from_now)
    study = Study.objects.get(study_instance_uid=ds.StudyInstanceUID)
    assert_attributed(study, tech_a)
    assert study.status == "arriving"  # its sending is not over: not claimable yet
    client.force_login(tech_a)
    assert client.get(reverse("study_detail", args=[study.pk])).status_code == 200

    # The technician, worried, sends it again: it is a duplicate of a study that is theirs.
    url2 = _create(tech, data, priority="stat", indication="Traumatisme crânien")["Location"]
    _patch(tech, url2, 0, data)
    assert tech.get(url2).json()["outcome"] == "duplicate"
    # The first transfer, finalised at last (task retry or sweep), is this sending's file: stored.
    assert finalisation.finalise_waiting() == 1
    first = Transfer.objects.get(pk=transfer.pk)
    assert (first.state, first.outcome) == ("finalised", "stored")
    study.refresh_from_db()
    assert_attributed(study, tech_a)
    assert study.status in ("received", "queued") and study.instances.count() == 1


def test_a_form_sending_killed_between_the_archive_and_the_record_keeps_its_site(
    tech_a, orthanc_server, feed_from_now, tmp_path, monkeypatch, client
):
    """The plain form: the web process dies mid-request; nothing will ever finish that request."""
    path, ds = fresh_ct(tmp_path)
    tech = api_client(tech_a)

    def send():
        with path.open("rb") as f:
            return tech.post(
                reverse("api_upload"),
                {"files": [f], "indication": "Traumatisme crânien", "priority": "stat"},
                format="multipart",
            )

    with monkeypatch.context() as m:
        m.setattr("ingest.services.record_instance", _killed_after_the_store)
        with pytest.raises(Killed):
            send()
    assert in_archive(orthanc_server, str(ds.SOPInstanceUID)) and not Instance.objects.exists()

    follow_changes(feed_from_now)
    study = Study.objects.get(study_instance_uid=ds.StudyInstanceUID)
    assert_attributed(study, tech_a)

    again = send().json()["verdicts"]
    assert [(v["outcome"], v["study"]) for v in again] == [("duplicate", study.pk)]
    client.force_login(tech_a)
    assert client.get(reverse("study_detail", args=[study.pk])).status_code == 200
    study.refresh_from_db()
    assert study.status in ("received", "queued")  # the retry's sending settled it


def test_the_feed_gives_a_siteless_study_its_sender_when_an_intent_names_one(
    tech_a, orthanc_server, feed_from_now, tmp_path, monkeypatch
):
    """A study already recorded without a site (seen from the archive before its intent was
    read) is attributed as soon as the feed or the sending meets the intent."""
    path, ds = fresh_ct(tmp_path)
    with monkeypatch.context() as m:  # the feed of a platform without intents, as before
        m.setattr("ingest.changes_feed.intent_for", lambda sop: None)
        orthanc_server.client().store_instance(path.read_bytes())
        follow_changes(feed_from_now)
    study = Study.objects.get(study_instance_uid=ds.StudyInstanceUID)
    assert study.site_id is None and study.source == "archive"
    with path.open("rb") as f:
        answer = api_client(tech_a).post(
            reverse("api_upload"),
            {"files": [f], "indication": "Traumatisme crânien", "priority": "stat"},
            format="multipart",
        )
    assert answer.json()["verdicts"][0]["outcome"] == "duplicate"
    study.refresh_from_db()
    assert study.site_id == tech_a.site_id and study.priority == "stat"
