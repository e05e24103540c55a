"""The site agent as a DICOM archive (siteagent/receiver.py): a modality (pynetdicom as the SCU)
C-STOREs a CT series to the agent running as a real process; the agent is killed mid-association
and restarted, the modality sends again what was not acknowledged, and every acknowledged instance
reaches the platform and Orthanc exactly once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage, Verification  # type: ignore[attr-defined]

from siteagent.queue import Queue
from siteagent.receiver import CANNOT_UNDERSTAND, OUT_OF_RESOURCES, Allowed, Receiver
from siteagent.spool import Spool
from tests.helpers import token_for, wait_for
from tests.paths import CT_SERIES, REPO

AGENT_AET = "KAYES_AGENT"
CT_TS = pydicom.uid.ExplicitVRLittleEndian


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ct_files() -> list[Path]:
    return [CT_SERIES / f"{i:02d}.dcm" for i in range(1, 29)]


def modality(aet: str = "CT_KAYES") -> AE:
    ae = AE(ae_title=aet)
    ae.add_requested_context(CTImageStorage, [CT_TS, pydicom.uid.ImplicitVRLittleEndian])
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 20
    return ae


def agent(state: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "siteagent", "serve", "--state-dir", str(state), "--aet", AGENT_AET]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--allow", "CT_KAYES@127.0.0.1", *extra]
    log = (state.parent / "agent.log").open("ab")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=REPO)
    wait_for(lambda: _echo(port) or proc.poll() is not None, timeout=30, interval=0.1)
    assert proc.poll() is None, (state.parent / "agent.log").read_text()
    return proc


def _echo(port: int) -> bool:
    assoc = modality().associate("127.0.0.1", port, ae_title=AGENT_AET)
    if not assoc.is_established:
        return False
    ok = assoc.send_c_echo().get("Status") == 0
    assoc.release()
    return bool(ok)


def send(port: int, files: list[Path], on_success=None) -> list[Path]:
    """C-STORE files in one association; returns those the agent acknowledged (Success)."""
    acked: list[Path] = []
    assoc = modality().associate("127.0.0.1", port, ae_title=AGENT_AET)
    assert assoc.is_established
    for path in files:
        try:
            status = assoc.send_c_store(pydicom.dcmread(path))
        except RuntimeError:  # the association is gone (the agent was killed)
            break
        if status.get("Status") == 0:
            acked.append(path)
            if on_success:
                on_success(len(acked))
    if assoc.is_established:
        assoc.release()
    return acked


@pytest.fixture
def shared_spool(celery_worker, worker_spool_dir, settings):
    settings.INGEST_SPOOL_DIR = worker_spool_dir
    return settings.INGEST_SPOOL_DIR


@pytest.mark.django_db(transaction=True)
def test_a_ct_sent_to_a_killed_and_restarted_agent_arrives_once(
    live_server, shared_spool, tech_a, orthanc_server, tmp_path
):
    from studies.models import Study

    state, port = tmp_path / "state", free_port()
    server = [
        "--server",
        live_server.url,
        "--token",
        token_for(tech_a),
        "--quiet",
        "3",
        "--retry-base",
        "0.2",
    ]
    first = agent(state, port, *server)
    files = ct_files()

    def kill_after_ten(n: int) -> None:
        if n == 10:  # killed while the next C-STORE is on its way: the association dies mid-way
            threading.Timer(0.01, first.send_signal, [signal.SIGKILL]).start()

    acked = send(port, files, on_success=kill_after_ten)
    first.wait(timeout=10)
    assert 10 <= len(acked) < 28 and first.returncode == -signal.SIGKILL
    # What it acknowledged is on disk, in the spool: nothing of it lives only in memory.
    assert len(list((state / "spool" / "incoming").glob("*/*.dcm"))) >= 10

    second = agent(state, port, *server)
    try:
        rest = [p for p in files if p not in acked]
        assert send(port, rest) == rest  # the modality's retry of what was not acknowledged
        study = wait_for(lambda: Study.objects.filter(modality="CT").first(), timeout=120)
        sops = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files}
        wait_for(lambda: sops <= set(study.instances.values_list("sop_instance_uid", flat=True)), timeout=120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    recorded = list(study.instances.values_list("sop_instance_uid", flat=True))
    assert len(recorded) == len(set(recorded))
    assert len([s for s in recorded if s in sops]) == 28  # each of the 28 once, plus the preview
    archived = [
        i["MainDicomTags"]["SOPInstanceUID"]
        for i in orthanc_server.client().study_instances(study.orthanc_id)
    ]
    assert sorted(s for s in archived if s in sops) == sorted(sops)  # once each in Orthanc
    queue = Queue(state)
    queued = [r[0] for r in queue.db.execute("SELECT sop_uid FROM instances")]
    assert sorted(queued) == sorted(sops)  # queued once each: nothing crossed the link twice
    assert not queue.db.execute("SELECT 1 FROM items WHERE outcome IN ('duplicate','refused')").fetchall()
    assert not list((state / "spool" / "incoming").iterdir())  # the spool is emptied once queued


def test_a_calling_ae_not_on_the_list_is_refused(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=10**9, min_free_bytes=0)
    receiver = Receiver(
        spool, aet=AGENT_AET, allowed=[Allowed.parse("CT_KAYES@127.0.0.1")], say=lambda m: None
    )
    port = free_port()
    receiver.start("127.0.0.1", port)
    try:
        stranger = modality("LAPTOP").associate("127.0.0.1", port, ae_title=AGENT_AET)
        assert stranger.is_rejected and not stranger.is_established
        wrong_called = modality().associate("127.0.0.1", port, ae_title="OTHER_PACS")
        assert wrong_called.is_rejected
        assert _echo(port)  # the allowed one, verification
    finally:
        receiver.stop()
    assert not list(spool.incoming.iterdir())


def test_a_full_spool_answers_out_of_resources_and_stores_nothing(tmp_path):
    files = ct_files()[:3]
    one = files[0].stat().st_size
    spool = Spool(tmp_path / "spool", max_bytes=int(1.5 * one), min_free_bytes=0)
    receiver = Receiver(spool, aet=AGENT_AET, allowed=[Allowed.parse("CT_KAYES")], say=lambda m: None)
    port = free_port()
    receiver.start("127.0.0.1", port)
    statuses = []
    try:
        assoc = modality().associate("127.0.0.1", port, ae_title=AGENT_AET)
        for path in files:
            statuses.append(assoc.send_c_store(pydicom.dcmread(path)).Status)
        assoc.release()
    finally:
        receiver.stop()
    assert statuses == [0, OUT_OF_RESOURCES, OUT_OF_RESOURCES]
    stored = list(spool.incoming.glob("*/*.dcm"))
    assert len(stored) == 1 and not list(spool.tmp.iterdir())
    assert pydicom.dcmread(stored[0]).SOPInstanceUID == pydicom.dcmread(files[0]).SOPInstanceUID


def test_a_compressed_instance_is_stored_as_it_was_sent(tmp_path):
    from pydicom.data import get_testdata_file
    from pynetdicom.sop_class import MRImageStorage  # type: ignore[attr-defined]

    source = pydicom.dcmread(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    spool = Spool(tmp_path / "spool", max_bytes=10**9, min_free_bytes=0)
    receiver = Receiver(spool, aet=AGENT_AET, allowed=[Allowed.parse("CT_KAYES")], say=lambda m: None)
    port = free_port()
    receiver.start("127.0.0.1", port)
    try:
        ae = AE(ae_title="CT_KAYES")
        ae.add_requested_context(MRImageStorage, [source.file_meta.TransferSyntaxUID])
        assoc = ae.associate("127.0.0.1", port, ae_title=AGENT_AET)
        assert assoc.send_c_store(source).Status == 0
        assoc.release()
    finally:
        receiver.stop()
    (stored,) = spool.incoming.glob(f"{source.StudyInstanceUID}/{source.SOPInstanceUID}.dcm")
    kept = pydicom.dcmread(stored)
    assert kept.file_meta.TransferSyntaxUID == pydicom.uid.JPEGLSLossless
    assert kept.PixelData == source.PixelData  # the codestream untouched, not decoded and re-encoded


def test_the_service_takes_its_options_from_a_toml_file(tmp_path):
    from siteagent.serve import parse_args

    config = tmp_path / "agent.toml"
    config.write_text(
        'aet = "KAYES_AGENT"\nport = 11112\nallow = ["CR_KAYES@192.168.1.20", "CT_KAYES"]\n'
        f'quiet = 45\nstate-dir = "{tmp_path}/state"\npriority-rule = ["CT=urgent"]\n'
    )
    args = parse_args(["receive", "--config", str(config), "--quiet", "10"])
    assert (args.aet, args.port, args.quiet, args.state_dir) == ("KAYES_AGENT", 11112, 10, tmp_path / "state")
    assert args.allowed == [Allowed("CR_KAYES", "192.168.1.20"), Allowed("CT_KAYES")]
    assert args.rules == {"CT": "urgent"} and args.server is None
    with pytest.raises(SystemExit):
        parse_args(["receive", "--port", "11112"])  # nobody allowed: refused at start, not open to all


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_an_instance_without_a_usable_study_uid_is_refused_not_filed(tmp_path):
    spool = Spool(tmp_path / "spool", max_bytes=10**9, min_free_bytes=0)
    receiver = Receiver(spool, aet=AGENT_AET, allowed=[Allowed.parse("CT_KAYES")], say=lambda m: None)
    port = free_port()
    receiver.start("127.0.0.1", port)
    statuses = []
    try:
        assoc = modality().associate("127.0.0.1", port, ae_title=AGENT_AET)
        for study_uid in ("../../etc", None):
            ds = pydicom.dcmread(ct_files()[0])
            if study_uid is None:
                del ds.StudyInstanceUID
            else:
                ds.StudyInstanceUID = study_uid
            statuses.append(assoc.send_c_store(ds).Status)
        assoc.release()
    finally:
        receiver.stop()
    assert statuses == [CANNOT_UNDERSTAND, CANNOT_UNDERSTAND]
    assert not list(spool.incoming.iterdir()) and not list(spool.tmp.iterdir())
