"""The site agent's watched folder (siteagent/watch.py): a file is taken only once stable, a file
that is not DICOM is moved aside with its reason, and a study survives the agent's kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydicom

from siteagent.compression import SitePolicy
from siteagent.grouping import Grouper, study_priority
from siteagent.queue import Queue
from siteagent.spool import Spool
from siteagent.watch import FolderWatcher
from tests.helpers import wait_for
from tests.paths import CT_SERIES, REPO

QUIET = 0.6


def setup(tmp_path: Path) -> tuple[Path, Spool, FolderWatcher]:
    folder = tmp_path / "export"
    spool = Spool(tmp_path / "state" / "spool", max_bytes=10**9, min_free_bytes=0)
    watcher = FolderWatcher(
        folder, spool, refused_dir=tmp_path / "refused", quiet_s=QUIET, say=lambda m: None
    )
    return folder, spool, watcher


def test_a_file_written_slowly_is_taken_only_once_complete(tmp_path):
    folder, spool, watcher = setup(tmp_path)
    data = (CT_SERIES / "01.dcm").read_bytes()
    target = folder / "IMG0001"
    with target.open("wb") as f:
        for start in range(0, len(data), len(data) // 8):  # a slow device: a piece every 0.3 s
            f.write(data[start : start + len(data) // 8])
            f.flush()
            assert watcher.tick() == 0 and target.exists()
            time.sleep(0.3)
    assert wait_for(lambda: watcher.tick(), timeout=10, interval=0.2) == 1
    stored = list(spool.incoming.glob("*/*.dcm"))
    assert not target.exists() and len(stored) == 1
    assert stored[0].read_bytes() == data  # the whole file, as the device wrote it


def test_a_file_that_is_not_dicom_is_refused_with_its_reason(tmp_path):
    folder, spool, watcher = setup(tmp_path)
    folder.mkdir(exist_ok=True)
    (folder / "rapport.pdf").write_bytes(b"%PDF-1.4 not an image\n" * 50)
    (folder / ".en-cours").write_bytes(b"left alone")  # a device's temporary name
    wait_for(lambda: not (folder / "rapport.pdf").exists() or watcher.tick(), timeout=10, interval=0.2)
    wait_for(lambda: not (folder / "rapport.pdf").exists(), timeout=10, interval=0.2)
    moved = [p for p in (tmp_path / "refused").iterdir() if not p.name.endswith(".raison.txt")]
    assert len(moved) == 1 and moved[0].read_bytes().startswith(b"%PDF")
    reason = Path(str(moved[0]) + ".raison.txt").read_text()
    assert "pas un fichier DICOM" in reason and "rapport.pdf" in reason
    assert (folder / ".en-cours").exists() and not list(spool.incoming.iterdir())


def test_a_study_goes_to_the_queue_once_quiet_with_its_dicom_priority(tmp_path):
    folder, spool, watcher = setup(tmp_path)
    folder.mkdir(exist_ok=True)
    for i in (1, 2, 3):
        ds = pydicom.dcmread(CT_SERIES / f"{i:02d}.dcm")
        ds.RequestedProcedurePriority = "STAT"
        ds.ReasonForTheRequestedProcedure = "AVC ?"
        ds.save_as(folder / f"{i}.dcm")
    queue = Queue(tmp_path / "state")
    grouper = Grouper(spool, quiet_s=QUIET, policy=SitePolicy(), say=lambda m: None)
    wait_for(lambda: watcher.tick() or not list(folder.iterdir()), timeout=10, interval=0.2)
    assert grouper.tick(queue) == 0  # not quiet yet: the study may still grow
    wait_for(lambda: grouper.tick(queue), timeout=10, interval=0.2)
    ((mid, priority, indication),) = queue.db.execute("SELECT id, priority, indication FROM manifests")
    assert (priority, indication) == ("stat", "AVC ?")
    assert queue.db.execute("SELECT count(*) FROM instances").fetchone()[0] == 3
    assert not list(spool.incoming.iterdir()) and not list(spool.sealed.iterdir())
    assert study_priority([CT_SERIES / "01.dcm"], "routine", {"CT": "urgent"}, "") == ("urgent", "")


def agent(state: Path, folder: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "siteagent", "watch", "--state-dir", str(state), "--watch", str(folder)]
    cmd += ["--quiet", "2", "--poll", "0.2"]
    log = (state.parent / "agent.log").open("ab")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=REPO)


def test_a_study_survives_the_agent_killed_mid_study(tmp_path):
    state, folder = tmp_path / "state", tmp_path / "export"
    folder.mkdir()
    state.mkdir()
    first = agent(state, folder)
    for i in range(1, 4):
        (folder / f"{i:02d}.dcm").write_bytes((CT_SERIES / f"{i:02d}.dcm").read_bytes())
    incoming = state / "spool" / "incoming"
    wait_for(lambda: len(list(incoming.glob("*/*.dcm"))) == 3, timeout=30, interval=0.1)
    first.send_signal(signal.SIGKILL)  # mid-study: three slices in, the rest still coming
    first.wait()
    for i in range(4, 7):
        (folder / f"{i:02d}.dcm").write_bytes((CT_SERIES / f"{i:02d}.dcm").read_bytes())
    (folder / "01.dcm").write_bytes((CT_SERIES / "01.dcm").read_bytes())  # the device exports one again
    second = agent(state, folder)
    try:
        queue = Queue(state)
        wait_for(
            lambda: queue.db.execute("SELECT count(*) FROM manifests WHERE posted=0").fetchone()[0],
            timeout=60,
            interval=0.2,
        )
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    assert queue.db.execute("SELECT count(*) FROM manifests").fetchone()[0] == 1  # one study
    sops = sorted(r[0] for r in queue.db.execute("SELECT sop_uid FROM instances"))
    expected = sorted(
        str(pydicom.dcmread(CT_SERIES / f"{i:02d}.dcm", stop_before_pixels=True).SOPInstanceUID)
        for i in range(1, 7)
    )
    assert sops == expected  # six slices, each once
    assert not list(folder.iterdir()) and not list(incoming.iterdir())
