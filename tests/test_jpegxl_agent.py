"""joliba-push with JPEG XL, end to end: the real agent, the real platform with its worker, a real
Orthanc. Fewer bytes cross than with JPEG-LS, and the archive holds the source's pixels (and the
film's original JPEG) in syntaxes Orthanc 1.10 reads."""

from __future__ import annotations

import io
import sqlite3

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from siteagent import jpegxl
from siteagent.compression import SitePolicy, compress_for_link
from studies.models import Instance
from tests.helpers import ct_study, dicom_copy, token_for
from tests.paths import REAL_CXR
from tests.test_siteagent_slow_link import push, summary_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.testdata]
FILM = (
    REAL_CXR / "CR_chest_PA_SIIM-ACR_NIH-CXR14" / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
)


@pytest.fixture
def shared_spool(celery_worker, worker_spool_dir, settings):
    settings.INGEST_SPOOL_DIR = worker_spool_dir
    return settings.INGEST_SPOOL_DIR


def test_the_agent_sends_jpeg_xl_and_the_archive_holds_the_sources_pixels(
    live_server, shared_spool, tech_a, orthanc_server, tmp_path
):
    slices = ct_study(tmp_path, [12, 13, 14])
    film = dicom_copy(
        FILM, tmp_path / "film.dcm", StudyInstanceUID=generate_uid(), SOPInstanceUID=generate_uid()
    )
    sources = [*slices, film]
    summary = summary_of(push(live_server.url, token_for(tech_a), tmp_path / "state", *sources))
    assert summary["pending_items"] == 0 and all(s["complete"] for s in summary["studies"]), summary

    queue = sqlite3.connect(tmp_path / "state" / "queue.sqlite3")
    codecs = sorted(c for (c,) in queue.execute("SELECT codec FROM instances"))
    assert codecs == ["jpegxl", "jpegxl", "jpegxl", "jpegxl-jpeg"]
    # The same files as JPEG-LS (the agent without JPEG XL) weigh more.
    without = sum(
        compress_for_link(p, tmp_path / f"off-{i}.dcm", SitePolicy(jpegxl=False)).size
        for i, p in enumerate(sources)
    )
    with_jxl = sum(s for (s,) in queue.execute("SELECT size FROM instances"))
    assert with_jxl < 0.95 * without, (with_jxl, without)
    assert queue.execute("SELECT count(*) FROM link_transfers").fetchone()[0] >= 1  # the rate, for next time

    client = orthanc_server.client()
    for source in sources:
        original = pydicom.dcmread(source)
        inst = Instance.objects.get(sop_instance_uid=original.SOPInstanceUID)
        archived = pydicom.dcmread(io.BytesIO(client.instance_file(inst.orthanc_id)))
        if source == film:
            assert str(archived.file_meta.TransferSyntaxUID) == jpegxl.JPEG_BASELINE
            assert archived.PixelData == original.PixelData  # the film's JPEG, bit for bit
        else:
            assert str(archived.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.80"
            assert np.array_equal(archived.pixel_array, original.pixel_array)
