"""What crosses the link: nothing twice, small files in one request, quick recovery after a cut,
and byte counters that agree with the link's own count (tests/slowlink.py)."""

import statistics
import threading
import time

import pydicom
import pytest
from pydicom.uid import generate_uid

from ingest.models import FileVerdict
from studies.models import Instance
from tests.helpers import token_for
from tests.paths import CT_HEAD, TIBIA
from tests.slowlink import SlowLink
from tests.test_siteagent_slow_link import push, summary_of, target
from tests.test_siteagent_slow_link import shared_spool as shared_spool  # the fixture
from uploads.models import StudyManifest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.orthanc, pytest.mark.worker]


def sop_of(path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


class Timeline:
    """The link's upload byte count, sampled every 20 ms, and when each cut happened."""

    def __init__(self, link: SlowLink) -> None:
        self.link, self.samples, self.cuts = link, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        cuts = 0
        while not self._stop.wait(0.02):
            stats, now = self.link.stats(), time.monotonic()
            self.samples.append((now, stats["bytes_up"]))
            if stats["cuts"] > cuts:
                self.cuts.extend([now] * (stats["cuts"] - cuts))
                cuts = stats["cuts"]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def _bytes_at(self, t: float) -> int:
        before = [b for s, b in self.samples if s <= t]
        return before[-1] if before else 0

    def resume_times(self, down_s: float, payload: int = 8192) -> list[float]:
        """For each cut that came while a file was flowing: seconds from the link being back to
        `payload` more bytes having crossed (a HEAD alone is not a resumed upload)."""
        out = []
        for cut in self.cuts:
            if self._bytes_at(cut) - self._bytes_at(cut - 1.0) < payload:
                continue  # nothing was flowing (compressing, confirming): nothing to resume
            up = cut + down_s
            base = self._bytes_at(up)
            after = [s for s, b in self.samples if s > up and b - base >= payload]
            if after:
                out.append(after[0] - up)
        return out


def test_what_the_archive_has_is_not_sent_again_and_a_repeated_instance_goes_once(
    live_server, shared_spool, tech_a, orthanc_server, tmp_path
):
    # Slices of the real CT as a study of their own (fresh UIDs): the session's archive keeps the
    # shared CT study as other tests expect it.
    study, series = generate_uid(), generate_uid()
    slices = []
    for i in range(11, 17):
        ds = pydicom.dcmread(CT_HEAD / f"{i:02d}.dcm")
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        slices.append(tmp_path / "ct" / f"{i:02d}.dcm")
        slices[-1].parent.mkdir(exist_ok=True)
        ds.save_as(slices[-1], enforce_file_format=True)
    first, more = slices[:4], slices[4:]
    # The same instance as 15.dcm, in a second folder (a study exported twice).
    twice = tmp_path / "again" / "15-copy.dcm"
    twice.parent.mkdir()
    twice.write_bytes(more[0].read_bytes())
    token = token_for(tech_a)
    with SlowLink(target(live_server), rate_bps=4_000_000, rtt_s=0.05) as link:
        done = summary_of(push(link.url, token, tmp_path / "one", *first))
        assert all(s["complete"] for s in done["studies"]), done
        before = link.stats()["bytes_up"]
        # Another agent (a fresh queue) sends the whole study: 4 instances are there already.
        summary = summary_of(push(link.url, token, tmp_path / "two", *first, *more, twice.parent))
        second_run = link.stats()["bytes_up"] - before
    assert all(s["complete"] for s in summary["studies"]), summary
    assert summary["already_received"] == 4 and summary["duplicate_in_queue"] == 1, summary
    # Only the two new slices crossed (packed again without the four, with a preview).
    assert summary["bytes_acknowledged"] <= summary["bytes_payload"] + summary["preview_bytes"]
    assert second_run < 0.6 * done["bytes_payload"], (second_run, done, summary)
    latest = StudyManifest.objects.order_by("-created_at").first()
    verdicts = list(
        FileVerdict.objects.filter(submission=latest.submission).values_list("sop_instance_uid", "outcome")
    )
    sent = {uid for uid, _ in verdicts}
    assert {sop_of(p) for p in more} <= sent and not ({sop_of(p) for p in first} & sent), verdicts
    assert "duplicate" not in {o for _, o in verdicts}, verdicts  # nothing crossed to be told "duplicate"
    assert set(Instance.objects.values_list("sop_instance_uid", flat=True)) >= {
        sop_of(p) for p in first + more
    }


def small_studies(folder, count: int) -> list:
    """`count` one-image studies of a few tens of kB (a 128² crop of a real CT slice each)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        ds = pydicom.dcmread(CT_HEAD / f"{i % 28 + 1:02d}.dcm")
        ds.PixelData = ds.pixel_array[192:320, 192:320].copy().tobytes()
        ds.Rows = ds.Columns = 128
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        path = folder / f"s{i:02d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def test_many_small_files_through_a_cut_every_two_seconds_arrive_once_each(
    live_server, shared_spool, tech_a, orthanc_server, tmp_path
):
    files = small_studies(tmp_path / "in", 12)
    with SlowLink(target(live_server), rate_bps=512_000, rtt_s=0.3, cut_every_s=2.0, down_s=0.5) as link:
        summary = summary_of(push(link.url, token_for(tech_a), tmp_path / "state", *files), timeout=180)
        stats = link.stats()
    assert stats["cuts"] >= 3 and stats["connections_cut"] >= 2, stats
    assert summary["pending_items"] == 0 and len(summary["studies"]) == 12, summary
    assert all(s["complete"] for s in summary["studies"]), summary
    uids = {sop_of(p) for p in files}
    assert uids <= set(Instance.objects.values_list("sop_instance_uid", flat=True))
    # Each acknowledged instance once in the archive (a preview is kept apart, never archived).
    client = orthanc_server.client()
    for instance in Instance.objects.filter(sop_instance_uid__in=uids).select_related("study"):
        assert len(client.study_instances(instance.study.orthanc_id)) == 1
    # Counters: acknowledged <= what the link carried <= what went into the sockets.
    assert summary["bytes_acknowledged"] <= stats["bytes_up"] <= summary["bytes_written"], (summary, stats)
    assert summary["bytes_acknowledged"] >= summary["bytes_payload"] + summary["preview_bytes"] - 1


def test_after_a_cut_the_agent_is_sending_again_within_about_a_second(
    live_server, shared_spool, tech_a, orthanc_server, tmp_path
):
    down_s = 0.5
    with SlowLink(
        target(live_server), rate_bps=512_000, rtt_s=0.3, cut_every_s=3.0, down_s=down_s, first_cut_s=4.0
    ) as link:
        timeline = Timeline(link)
        try:
            summary = summary_of(push(link.url, token_for(tech_a), tmp_path / "state", TIBIA), timeout=180)
        finally:
            timeline.stop()
        stats = link.stats()
    assert all(s["complete"] for s in summary["studies"]), summary
    resumed = timeline.resume_times(down_s)
    assert len(resumed) >= 2, (resumed, stats)
    # Target 1.5 s after the link is back (one RTT for HEAD, one to start the PATCH, a retry
    # under a second); bounded generously for a loaded CI machine, the median tightly.
    assert statistics.median(resumed) <= 1.5 and max(resumed) <= 3.0, resumed
    # The counters agree with the link within what a cut can swallow (socket buffers) per cut.
    payload = summary["bytes_payload"] + summary["preview_bytes"]
    assert payload <= summary["bytes_acknowledged"] <= stats["bytes_up"], (summary, stats)
    assert stats["bytes_up"] - summary["bytes_acknowledged"] <= 0.05 * payload + 20_000 * (stats["cuts"] + 1)
    assert summary["bytes_written"] - stats["bytes_up"] <= 400_000 * stats["connections_cut"] + 10_000
