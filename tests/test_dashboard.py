"""The coordinator's dashboard against constructed data: turnaround median and p90 computed by
hand, SLA compliance, backlog, load per radiologist, bytes received and saved, link throughput,
outage windows and data budget; the CSV export; who may open it (admins; a site's admin sees
that site only). The rows are what studies.lifecycle, ingest and uploads would have written,
made directly so that every time is known."""

from __future__ import annotations

import csv
import html
import io
import uuid
from datetime import date, datetime, timedelta

import pytest
from dashboard import figures
from dashboard.periods import Period
from django.urls import reverse
from django.utils import timezone

from accounts.models import Site
from ingest.models import DailyUsage, Submission
from studies.models import Status, Study, StudyEvent
from uploads.models import StudyManifest, Transfer
from worklist.facts import rebuild_ranking_facts

pytestmark = pytest.mark.django_db

# The cases signed in the last 30 days: (site, priority, minutes from received to signed).
SIGNED = [
    ("a", "stat", 10), ("a", "stat", 20), ("a", "stat", 40), ("a", "stat", 50),
    ("a", "urgent", 60), ("a", "urgent", 200),
    ("b", "routine", 100), ("b", "routine", 300), ("b", "routine", 500),
]  # fmt: skip
# By hand: STAT median (20+40)/2 = 30, p90 nearest rank ceil(0.9 × 4) = 4th = 50; within 30 min: 2/4.
# URGENT median 130, p90 = 2nd = 200, within 120 min: 1/2. ROUTINE median 300, p90 = 3rd = 500, 3/3.
# All sites, per priority, the same (each priority is at one site only).


def _study(site: Site, priority: str, status: str, *, assigned_to=None) -> Study:
    tag = uuid.uuid4().hex
    return Study.objects.create(
        orthanc_id=f"dash-{tag}", study_instance_uid=f"2.25.{int(tag[:16], 16)}", site=site,
        priority=priority, status=status, modality="CR", assigned_to=assigned_to,
    )  # fmt: skip


def _events(study: Study, steps: list[tuple[str, str, str, datetime]], reader=None) -> None:
    StudyEvent.objects.bulk_create(
        [
            StudyEvent(study=study, transition=t, from_status=a, to_status=b, at=at, actor=reader,
                       assignee=reader if t == "claim" else None)
            for t, a, b, at in steps
        ]
    )  # fmt: skip


def signed_case(site: Site, priority: str, minutes: float, *, signed_at: datetime, reader) -> Study:
    """A study received, queued, claimed and signed, `minutes` from received to signed."""
    study = _study(site, priority, Status.REPORTED, assigned_to=reader)
    received = signed_at - timedelta(minutes=minutes)
    _events(
        study,
        [
            ("receive", Status.ARRIVING, Status.RECEIVED, received),
            ("queue", Status.RECEIVED, Status.QUEUED, received + timedelta(seconds=5)),
            ("claim", Status.QUEUED, Status.IN_READING, received + timedelta(minutes=minutes / 2)),
            ("sign", Status.IN_READING, Status.REPORTED, signed_at),
        ],
        reader,
    )
    return study


def open_case(site: Site, status: str, *, waited_min: float, now: datetime, reader=None) -> Study:
    study = _study(site, "routine", status, assigned_to=reader if status == Status.IN_READING else None)
    if status != Status.ARRIVING:
        _events(study, [("receive", Status.ARRIVING, Status.RECEIVED, now - timedelta(minutes=waited_min))])
    return study


@pytest.fixture
def world(site_a, site_b, radiologist, radiologist_2, settings):
    """Signed cases, open cases, bytes and transfers of Kayes (a) and Sikasso (b)."""
    settings.WORKLIST_SLA_MINUTES = {}  # the defaults: STAT 30, urgent 120, routine 1440
    settings.DASHBOARD_DATA_BUDGET_MB = {"kayes": 10}
    settings.DASHBOARD_OUTAGE_MINUTES = 30
    now = timezone.now()
    sites = {"a": site_a, "b": site_b}
    for i, (site, priority, minutes) in enumerate(SIGNED):
        reader = radiologist if site == "a" else radiologist_2
        signed_case(
            sites[site], priority, minutes, signed_at=now - timedelta(days=1, minutes=i), reader=reader
        )
    # Signed 40 days ago: outside the period, counted nowhere.
    signed_case(site_a, "stat", 5000, signed_at=now - timedelta(days=40), reader=radiologist)
    # Not signed yet: site A 1 arriving, 2 queued (the oldest waiting 5 h), 1 in reading; B 1 received.
    open_case(site_a, Status.ARRIVING, waited_min=0, now=now)
    open_case(site_a, Status.QUEUED, waited_min=300, now=now)
    open_case(site_a, Status.QUEUED, waited_min=30, now=now)
    open_case(site_a, Status.IN_READING, waited_min=90, now=now, reader=radiologist)
    open_case(site_b, Status.RECEIVED, waited_min=12, now=now)
    rebuild_ranking_facts()

    # Bytes: what DailyUsage counted, per local day.
    today = timezone.localdate()
    DailyUsage.objects.create(site=site_a, day=today, bytes=5_000_000)
    DailyUsage.objects.create(site=site_a, day=today - timedelta(days=10), bytes=3_000_000)
    DailyUsage.objects.create(site=site_a, day=today - timedelta(days=50), bytes=100_000_000)  # outside
    DailyUsage.objects.create(site=site_b, day=today - timedelta(days=2), bytes=2_000_000)

    # One sending of site A: a manifest that declared two sizes before compression, one not.
    tech = _tech(site_a)
    sent_at = now - timedelta(days=2)
    submission = Submission.objects.create(site=site_a, sender=tech, expected_instances=3)
    Submission.objects.filter(pk=submission.pk).update(
        created_at=sent_at, settled_at=sent_at + timedelta(hours=3)
    )
    StudyManifest.objects.create(
        submission=submission,
        expected=[
            {"sop_instance_uid": "1.2.1", "sha256": "", "size": 400_000, "raw_size": 1_000_000},
            {"sop_instance_uid": "1.2.2", "sha256": "", "size": 600_000, "raw_size": 1_500_000},
            {"sop_instance_uid": "1.2.3", "sha256": "", "size": 50_000},  # an older agent: not declared
        ],
        expected_files=3,
    )
    # Its transfers: 3 MB in 10 min, nothing for 90 min (the link down), 3 MB in 10 min.
    for start_min, end_min in ((0, 10), (100, 110)):
        t = Transfer.objects.create(
            submission=submission, length=3_000_000, offset=3_000_000, expires_at=now + timedelta(days=1)
        )
        Transfer.objects.filter(pk=t.pk).update(
            created_at=sent_at + timedelta(minutes=start_min), updated_at=sent_at + timedelta(minutes=end_min)
        )
    # A second sending of site A, two hours later than the first had settled: a quiet time with
    # nothing under way is not an outage.
    later = Submission.objects.create(site=site_a, sender=tech)
    Submission.objects.filter(pk=later.pk).update(
        created_at=sent_at + timedelta(hours=5), settled_at=sent_at + timedelta(hours=5, minutes=2)
    )
    t = Transfer.objects.create(
        submission=later, length=1_000, offset=1_000, expires_at=now + timedelta(days=1)
    )
    Transfer.objects.filter(pk=t.pk).update(
        created_at=sent_at + timedelta(hours=5), updated_at=sent_at + timedelta(hours=5, minutes=1)
    )
    return {"now": now, "sites": sites, "sent_at": sent_at, "today": today}


def _tech(site: Site):
    from accounts.models import User

    return User.objects.create_user(username=f"t_{site.code}", password="x", role="technician", site=site)


def _last_30_days(now: datetime) -> Period:
    return Period(now - timedelta(days=30), now)


def _rows(table, **match) -> list[dict]:
    return [r for r in table.rows if all(r.get(k) == v for k, v in match.items())]


def test_it_computes_turnaround_median_p90_and_sla_compliance_per_priority(world):
    sites = list(world["sites"].values())
    cases = figures.signed_cases(sites, _last_30_days(world["now"]))
    assert len(cases) == len(SIGNED)  # the one signed 40 days ago is not in the period
    table = figures.turnaround(sites, cases)
    every = {r["priority"]: r for r in table.rows if r["all_sites"]}
    assert (every["stat"]["cases"], every["stat"]["median_min"], every["stat"]["p90_min"]) == (4, 30.0, 50.0)
    assert (every["stat"]["within_sla"], every["stat"]["sla_pct"], every["stat"]["sla_min"]) == (
        2,
        50.0,
        30.0,
    )
    assert (every["urgent"]["median_min"], every["urgent"]["p90_min"], every["urgent"]["sla_pct"]) == (
        130.0,
        200.0,
        50.0,
    )
    assert (every["routine"]["median_min"], every["routine"]["p90_min"], every["routine"]["sla_pct"]) == (
        300.0,
        500.0,
        100.0,
    )
    # Per site: Kayes has STAT and urgent cases only, Sikasso routine only.
    assert {r["priority"] for r in _rows(table, site="kayes")} == {"stat", "urgent"}
    assert [r["median_min"] for r in _rows(table, site="sikasso")] == [300.0]


def test_the_sla_follows_the_worklist_setting(world, settings):
    settings.WORKLIST_SLA_MINUTES = {"stat": 45}
    sites = list(world["sites"].values())
    table = figures.turnaround(sites, figures.signed_cases(sites, _last_30_days(world["now"])))
    stat = next(r for r in table.rows if r["all_sites"] and r["priority"] == "stat")
    assert (stat["sla_min"], stat["within_sla"], stat["sla_pct"]) == (45.0, 3, 75.0)


def test_p90_is_the_nearest_rank_and_the_median_the_middle():
    assert figures.p90([5, 1, 3]) == 5 and figures.p90(list(range(1, 11))) == 9
    assert figures.p90(list(range(1, 12))) == 10 and figures.p90([]) is None
    assert figures.median([4, 1, 3, 2]) == 2.5 and figures.median([]) is None


def test_it_counts_the_backlog_by_state_and_the_oldest_wait(world):
    sites = list(world["sites"].values())
    table = figures.backlog(sites, world["now"])
    kayes, sikasso = _rows(table, site="kayes")[0], _rows(table, site="sikasso")[0]
    assert (kayes["arriving"], kayes["received"], kayes["queued"], kayes["in_reading"], kayes["total"]) == (
        1,
        0,
        2,
        1,
        4,
    )
    assert kayes["oldest_wait_h"] == 5.0
    assert (sikasso["received"], sikasso["total"], sikasso["oldest_wait_h"]) == (1, 1, 0.2)


def test_it_counts_the_load_per_radiologist(world, radiologist, radiologist_2):
    sites = list(world["sites"].values())
    table = figures.readers(sites, figures.signed_cases(sites, _last_30_days(world["now"])))
    by_name = {r["radiologist"]: r for r in table.rows}
    dr_a, dr_b = by_name[radiologist.get_full_name()], by_name[radiologist_2.get_full_name()]
    assert (dr_a["signed"], dr_a["in_reading"], dr_a["median_min"]) == (6, 1, 45.0)  # 10 20 40 50 60 200
    assert (dr_b["signed"], dr_b["in_reading"], dr_b["median_min"]) == (3, 0, 300.0)


def test_it_counts_studies_bytes_received_and_bytes_saved_by_compression(world):
    sites = list(world["sites"].values())
    table = figures.activity(sites, _last_30_days(world["now"]))
    kayes, sikasso = _rows(table, site="kayes")[0], _rows(table, site="sikasso")[0]
    # Received in the period: the six signed cases of Kayes, plus its queued and in-reading ones.
    assert kayes["studies_received"] == 6 + 3 and sikasso["studies_received"] == 3 + 1
    assert kayes["mb_received"] == 8.0 and sikasso["mb_received"] == 2.0  # 5 + 3 MB; not the 100 MB
    # Declared before compression: 1.0 + 1.5 MB, sent as 0.4 + 0.6 MB: 1.5 MB saved (60 %).
    assert kayes["bytes_saved"] == 1_500_000 and kayes["mb_saved"] == 1.5 and kayes["saved_pct"] == 60.0
    assert (kayes["mb_before_compression"], kayes["mb_sent_compressed"]) == (2.5, 1.0)
    assert sikasso["mb_saved"] is None  # nothing declared: unknown, never 0


def test_it_measures_link_throughput_outages_and_the_data_budget(world):
    sites = list(world["sites"].values())
    period = _last_30_days(world["now"])
    links, outages = figures.links(sites, period, figures.signed_cases(sites, period), world["now"])
    kayes = _rows(links, site="kayes")[0]
    # 6 MB + 1 kB in 10 + 10 + 1 min: (6_001_000 × 8 / 1000) / 1260 s.
    assert kayes["throughput_kbps"] == round(6_001_000 * 8 / 1000 / 1260, 1)
    # The 90 minutes without a byte while the first sending was under way; the quiet hours
    # between the two sendings are not an outage.
    assert (kayes["outages"], kayes["longest_outage_min"], kayes["outage_hours"]) == (1, 90.0, 1.5)
    [window] = _rows(outages, site="kayes")
    assert window["minutes"] == 90.0
    start = timezone.localtime(world["sent_at"] + timedelta(minutes=10)).strftime("%Y-%m-%d %H:%M")
    assert window["start"] == start
    month_start = world["today"].replace(day=1)
    this_month = sum(
        mb
        for day, mb in ((world["today"], 5.0), (world["today"] - timedelta(days=10), 3.0))
        if day >= month_start
    )
    assert kayes["mb_month"] == this_month and kayes["budget_mb"] == 10.0
    assert kayes["budget_pct"] == round(100 * this_month / 10, 1)
    assert kayes["median_turnaround_min"] == 45.0
    sikasso = _rows(links, site="sikasso")[0]
    assert (sikasso["throughput_kbps"], sikasso["outages"], sikasso["budget_mb"]) == (None, 0, None)


def test_outage_windows_need_a_sending_under_way():
    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.get_current_timezone())
    spans = [(t0, t0 + timedelta(minutes=5)), (t0 + timedelta(minutes=45), t0 + timedelta(minutes=50))]
    minimum = timedelta(minutes=30)
    assert figures.outage_windows(spans, [(t0, None)], minimum=minimum) == [
        (t0 + timedelta(minutes=5), t0 + timedelta(minutes=45))
    ]
    assert figures.outage_windows(spans, [(t0, t0 + timedelta(minutes=6))], minimum=minimum) == []
    assert figures.outage_windows(spans, [(t0, None)], minimum=timedelta(minutes=41)) == []


# --- The page and its CSV ----------------------------------------------------------------------------


def test_the_page_shows_every_table_and_charts_without_inline_style(client, world, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:index"), {"days": "30"})
    assert response.status_code == 200
    page = response.content.decode()
    for table in ("activity", "turnaround", "backlog", "readers", "links", "outages", "ai", "shadow"):
        assert f'id="t-{table}"' in page and reverse("dashboard:export", args=[table]) in page
    assert page.count("<svg") == 3 and "style=" not in page and "<style" not in page and "<script" not in page
    assert "Tableau de bord du coordinateur" in page and "kayes" in page and "sikasso" in page
    assert len(response.content) < 60_000  # light: a few tables and three small charts


def test_the_csv_export_holds_the_table_and_follows_the_period(client, world, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:export", args=["turnaround"]), {"days": "30"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    stat = next(r for r in rows if r["site"] == "tous" and r["priority"] == "stat")
    assert (stat["cases"], stat["median_min"], stat["p90_min"], stat["sla_pct"]) == (
        "4",
        "30.0",
        "50.0",
        "50.0",
    )
    # Seven days: the cases signed yesterday still, the one of 40 days ago never.
    week = client.get(reverse("dashboard:export", args=["turnaround"]), {"days": "7"})
    assert (
        sum(
            int(r["cases"]) for r in csv.DictReader(io.StringIO(week.content.decode())) if r["site"] == "tous"
        )
        == 9
    )
    # Dates: the day 40 days ago alone holds the old case.
    old = timezone.localdate() - timedelta(days=40)
    by_dates = client.get(reverse("dashboard:export", args=["turnaround"]), {"start": old, "end": old})
    counted = [r for r in csv.DictReader(io.StringIO(by_dates.content.decode())) if r["site"] == "tous"]
    assert sum(int(r["cases"]) for r in counted) == 1
    backlog = client.get(reverse("dashboard:export", args=["backlog"]))
    header = next(csv.reader(io.StringIO(backlog.content.decode())))
    assert header == ["site", "arriving", "received", "queued", "in_reading", "total", "oldest_wait_h"]
    assert client.get(reverse("dashboard:export", args=["nothing"])).status_code == 404


def test_a_bad_period_is_refused_with_a_reason(client, world, admin_user):
    client.force_login(admin_user)
    response = client.get(reverse("dashboard:index"), {"start": "2026-03-10", "end": "2026-03-01"})
    assert (
        response.status_code == 200
        and "La date de fin précède la date de début." in response.content.decode()
    )
    response = client.get(reverse("dashboard:index"), {"start": "2020-01-01", "end": "2026-01-01"})
    assert "Choisissez une période d'au plus 366 jours." in html.unescape(response.content.decode())


def test_only_admins_open_the_dashboard(client, world, tech_a, radiologist, admin_user):
    url = reverse("dashboard:index")
    assert client.get(url).status_code == 302  # to the login page
    for user in (tech_a, radiologist):
        client.force_login(user)
        assert client.get(url).status_code == 404
        assert client.get(reverse("dashboard:export", args=["activity"])).status_code == 404
    client.force_login(admin_user)
    assert client.get(url).status_code == 200


def test_an_admin_of_one_site_sees_that_site_only(client, world, site_b):
    from accounts.models import User

    site_admin = User.objects.create_user(username="adm_b", password="x", role="admin", site=site_b)
    client.force_login(site_admin)
    rows = list(
        csv.DictReader(
            io.StringIO(client.get(reverse("dashboard:export", args=["activity"])).content.decode())
        )
    )
    assert [r["site"] for r in rows] == ["sikasso"]
    # Asking for the other site by its id shows nothing of it (the form refuses the choice).
    other = world["sites"]["a"].pk
    page = client.get(reverse("dashboard:index"), {"site": other}).content.decode()
    assert "kayes" not in page.lower() and "sikasso" in page


def test_period_days_cover_local_days():
    zone = timezone.get_current_timezone()
    period = Period(datetime(2026, 3, 1, tzinfo=zone), datetime(2026, 3, 4, tzinfo=zone))
    assert period.days == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]


# --- Where the sizes before compression come from ---------------------------------------------------


def test_the_agent_declares_each_instance_size_before_compression_and_the_centre_keeps_it(tmp_path):
    """The site agent's queue puts `raw_size` in the manifest it posts; the centre's manifest
    parser keeps it (bounded like `size`), and refuses a bad one with its field's name."""
    from siteagent.queue import Queue
    from uploads.manifests import parse_manifest
    from uploads.refusals import UploadRefused

    queue = Queue(tmp_path / "agent")
    try:
        manifest_id = queue.add_manifest(study_uid="1.2.3", priority="routine", indication="")
        inst = {"source_key": "k", "sop_uid": "1.2.3.4", "sha256": "a" * 64, "size": 400, "raw_size": 1000,
                "codec": "jpegls", "lossy_ratio": None, "path": tmp_path / "f.dcm"}  # fmt: skip
        queue.add_item(manifest_id=manifest_id, kind="dicom", path=tmp_path / "f.dcm", name="f.dcm",
                       sha256="a" * 64, size=400, raw_size=1000, instances=[inst])  # fmt: skip
        queue.mark_ready(manifest_id)
        [posted] = queue.manifests_to_post()
    finally:
        queue.close()
    assert posted["instances"] == [
        {"sop_instance_uid": "1.2.3.4", "sha256": "a" * 64, "size": 400, "raw_size": 1000}
    ]
    import json

    parsed = parse_manifest(json.dumps(posted).encode())
    assert parsed.expected == [
        {"sop_instance_uid": "1.2.3.4", "sha256": "a" * 64, "size": 400, "raw_size": 1000}
    ]
    bad = {**posted, "instances": [{**posted["instances"][0], "raw_size": -1}]}
    with pytest.raises(UploadRefused) as refused:
        parse_manifest(json.dumps(bad).encode())
    assert refused.value.code == "manifest_bad_field" and refused.value.params == {"field": "raw_size"}
