"""A modality's C-STORE straight into the archive becomes a study of its site; an undeclared
sender is refused by the archive itself."""

import pydicom
import pytest
import requests
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage

from ingest.changes_feed import follow_changes
from studies.models import Study
from tests.helpers import wait_for
from tests.paths import CT_HEAD

pytestmark = pytest.mark.django_db(transaction=True)


def _c_store(orthanc_server, calling_aet: str, dataset) -> int | None:
    ae = AE(ae_title=calling_aet)
    ae.add_requested_context(CTImageStorage, dataset.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", orthanc_server.dicom_port, ae_title="JOLIBA")
    if not assoc.is_established:
        return None
    try:
        status = assoc.send_c_store(dataset)
        return getattr(status, "Status", None)
    finally:
        assoc.release()


def _ct(uid: str):
    ds = pydicom.dcmread(CT_HEAD / "01.dcm")
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = uid, generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def test_a_declared_modality_stores_by_dicom_and_the_study_belongs_to_its_site(orthanc_server, site_a):
    uid = generate_uid()
    assert _c_store(orthanc_server, "KAYES_CR", _ct(uid)) == 0x0000

    def arrived():
        follow_changes(orthanc_server.client())
        return Study.objects.filter(study_instance_uid=uid).first()

    study = wait_for(arrived, timeout=30, interval=0.5)
    assert study.site == site_a and study.source == "archive"
    assert study.instances.count() == 1


def test_an_undeclared_sender_cannot_store_into_the_archive(orthanc_server):
    uid = generate_uid()
    status = _c_store(orthanc_server, "INTRUDER", _ct(uid))
    assert status is None or status != 0x0000  # association or store refused
    found = requests.post(
        f"{orthanc_server.url}/tools/lookup",
        data=uid,
        timeout=5,
        auth=(orthanc_server.username, orthanc_server.password),
    )
    assert found.status_code == 200 and found.json() == []


def _skip_earlier_changes(orthanc_server) -> None:
    """Start the feed after what earlier tests stored in the session's archive (the cursor row is
    new in every test): only this test's instances are charged, or refused."""
    from ingest.models import ChangesCursor

    last = requests.get(
        f"{orthanc_server.url}/changes",
        params={"last": ""},
        timeout=5,
        auth=(orthanc_server.username, orthanc_server.password),
    ).json()["Last"]
    ChangesCursor.objects.update_or_create(name="orthanc", defaults={"last_seq": last})


def test_a_modalitys_c_store_is_charged_to_its_sites_daily_budget(orthanc_server, site_a, settings):
    from ingest.models import DailyUsage

    settings.INGEST_SITE_DAILY_BYTES = 50 * 1024**2
    _skip_earlier_changes(orthanc_server)
    uid = generate_uid()
    assert _c_store(orthanc_server, "KAYES_CR", _ct(uid)) == 0x0000

    def arrived():
        follow_changes(orthanc_server.client())
        return Study.objects.filter(study_instance_uid=uid).first()

    study = wait_for(arrived, timeout=30, interval=0.5)
    size = orthanc_server.client().instance(study.instances.get().orthanc_id)["FileSize"]
    assert DailyUsage.objects.get(site=site_a).bytes == size


def test_past_its_daily_budget_a_modalitys_c_store_is_refused_with_a_verdict(
    orthanc_server, site_a, settings
):
    """C-STORE cannot be refused before Orthanc stores it (Orthanc does not ask the platform):
    the changes feed refuses it afterwards, removes it from the archive, and says why."""
    from ingest.models import ArchiveRefusal, DailyUsage

    settings.INGEST_SITE_DAILY_BYTES = 1024  # less than one CT slice
    _skip_earlier_changes(orthanc_server)
    uid = generate_uid()
    ds = _ct(uid)
    assert _c_store(orthanc_server, "KAYES_CR", ds) == 0x0000  # Orthanc took it

    def refused():
        follow_changes(orthanc_server.client())
        return ArchiveRefusal.objects.filter(study_instance_uid=uid).first()

    refusal = wait_for(refused, timeout=30, interval=0.5)
    assert (refusal.site, refusal.calling_aet, refusal.code) == (site_a, "KAYES_CR", "archive_daily_budget")
    assert refusal.sop_instance_uid == ds.SOPInstanceUID and refusal.size > 1024
    assert "volume du jour de ce site" in refusal.reason
    assert not Study.objects.filter(study_instance_uid=uid).exists()
    found = requests.post(
        f"{orthanc_server.url}/tools/lookup",
        data=uid,
        timeout=5,
        auth=(orthanc_server.username, orthanc_server.password),
    )
    assert found.status_code == 200 and found.json() == []  # removed from the archive
    assert not DailyUsage.objects.filter(site=site_a, bytes__gt=0).exists()
