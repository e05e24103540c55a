"""Encode while sending (siteagent/pipeline.py): the first file crosses the link while the last is
still being compressed; a kill mid-pipeline, then a restart, delivers every instance once."""

import json
import signal
import time

import pydicom
import pytest
from pydicom.uid import generate_uid

from studies.models import Study
from tests.helpers import token_for, wait_for
from tests.paths import CT_HEAD
from tests.slowlink import SlowLink
from tests.test_siteagent_slow_link import assert_pixels_identical, push, summary_of, target
from tests.test_siteagent_slow_link import shared_spool as shared_spool  # the fixture
from uploads.models import StudyManifest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.orthanc, pytest.mark.worker]


def fresh_ct(folder, count: int) -> list:
    """Slices of the real head CT as a study of its own (fresh UIDs): the session's archive keeps
    the shared CT study as other tests expect it."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    out = []
    for i in range(1, count + 1):
        ds = pydicom.dcmread(CT_HEAD / f"{i:02d}.dcm")
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        out.append(folder / f"{i:02d}.dcm")
        ds.save_as(out[-1], enforce_file_format=True)
    return out


def events(state) -> list[dict]:
    path = state / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_the_first_file_crosses_the_link_before_the_last_is_compressed(
    live_server, shared_spool, tech_a, orthanc_server, tmp_path
):
    slices = fresh_ct(tmp_path / "ct", 16)
    state = tmp_path / "state"
    with SlowLink(target(live_server), rate_bps=4_000_000, rtt_s=0.05) as link:
        summary = summary_of(push(link.url, token_for(tech_a), state, *slices))
    assert summary["pending_items"] == 0 and all(s["complete"] for s in summary["studies"]), summary
    log = events(state)
    compressed = [e["t"] for e in log if e["event"] == "compressed"]
    sending = [e for e in log if e["event"] == "sending"]
    assert len(compressed) == 16, log
    assert sending and sending[0]["kind"] == "preview", sending  # the preview still goes first
    first_file = min(e["t"] for e in sending if e["kind"] != "preview")
    assert first_file < max(compressed), (first_file, compressed)  # overlapped, not one after the other
    # The manifest, posted before compression, listed every instance of the study.
    manifest = StudyManifest.objects.get()
    assert {e["sop_instance_uid"] for e in manifest.expected} == {
        str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in slices
    }
    study = Study.objects.get()
    assert study.instances.count() == 16 and study.received_at
    assert_pixels_identical(orthanc_server, study, slices)


def test_an_agent_killed_mid_pipeline_delivers_every_instance_once_when_restarted(
    live_server, shared_spool, tech_a, orthanc_server, tmp_path
):
    slices = fresh_ct(tmp_path / "ct", 20)
    state = tmp_path / "state"
    with SlowLink(target(live_server), rate_bps=2_000_000, rtt_s=0.05) as link:
        agent = push(link.url, token_for(tech_a), state, *slices)
        # Killed once something was compressed and sent, while members are still to compress.
        wait_for(
            lambda: any(e["event"] == "sending" and e["kind"] != "preview" for e in events(state)),
            timeout=90,
            interval=0.02,
        )
        done_before = sum(e["event"] == "compressed" for e in events(state))
        agent.send_signal(signal.SIGKILL)
        agent.wait()
        assert done_before < 20, "the producer had finished: the kill proves nothing"
        time.sleep(0.2)
        summary = summary_of(push(link.url, token_for(tech_a), state))  # no paths: the queue knows
    assert summary["pending_items"] == 0 and all(s["complete"] for s in summary["studies"]), summary
    study = Study.objects.get()
    assert study.instances.count() == 20, study.instances.count()
    client = orthanc_server.client()
    stored = [i["MainDicomTags"]["SOPInstanceUID"] for i in client.study_instances(study.orthanc_id)]
    assert sorted(stored) == sorted(set(stored)) and len(stored) == 20, stored  # each once
    assert StudyManifest.objects.count() == 1  # announced once, not again on restart
    assert_pixels_identical(orthanc_server, study, slices)
