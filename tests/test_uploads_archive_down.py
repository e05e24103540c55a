"""A file the centre has acknowledged is never refused because the archive was down."""

import pytest
from pydicom.uid import generate_uid

from ingest.models import FileVerdict
from studies.models import Instance
from tests.helpers import api_client, dicom_copy
from tests.paths import CT_HEAD
from tests.test_uploads_tus import _create, _patch
from uploads import finalisation, spool
from uploads.models import Transfer

pytestmark = pytest.mark.django_db


def test_it_keeps_a_complete_upload_while_the_archive_is_down_and_stores_it_once_back_up(
    tech_a, settings, tmp_path, orthanc_server
):
    path = dicom_copy(
        CT_HEAD / "03.dcm",
        tmp_path / "03.dcm",
        StudyInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
    )
    data = path.read_bytes()
    tech = api_client(tech_a)
    created = _create(tech, data)
    url = created["Location"]
    settings.ORTHANC_URL = "http://127.0.0.1:9"  # the archive is unreachable
    assert _patch(tech, url, 0, data).status_code == 204  # every byte acknowledged
    upload = Transfer.objects.get()
    assert finalisation.finalise_transfer(upload.pk) == finalisation.Finalised.ARCHIVE_DOWN
    upload.refresh_from_db()
    assert upload.state == Transfer.State.COMPLETE  # not refused, not finalised
    assert spool.part_path(upload.pk).exists()  # the acknowledged bytes are kept
    assert not FileVerdict.objects.exists()

    settings.ORTHANC_URL = orthanc_server.url  # back up: the sweep's retry stores it, once
    assert finalisation.finalise_waiting() == 1
    upload.refresh_from_db()
    assert upload.state == Transfer.State.FINALISED and upload.outcome == "stored"
    assert Instance.objects.count() == 1
    assert FileVerdict.objects.get().outcome == "stored"
