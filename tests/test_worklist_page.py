"""The worklist page: filters and case-code search as GET parameters, pages of 50, SLA countdowns,
the refresh fragment (small, 304 when nothing changed), the load per radiologist."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Study
from tests.worklist_data import Spec, make_cases, random_specs

pytestmark = pytest.mark.django_db


def rows(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr class="case" data-study="(\d+)"', html)]


@pytest.fixture
def dr(client, radiologist):
    client.force_login(radiologist)
    return client


def get(client, name="worklist", **params) -> str:
    answer = client.get(reverse(name), params)
    assert answer.status_code == 200
    return answer.content.decode()


# --- The case code --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("KAYES-1234", ("kayes", 1234)),
        ("kayes-1234", ("kayes", 1234)),
        (" Kayes 1234 ", ("kayes", 1234)),
        ("kati-2-55", ("kati-2", 55)),
        ("#1234", (None, 1234)),
        ("1234", (None, 1234)),
        ("", None),
        ("COULIBALY", None),
        ("KAYES-", None),
        ("KAYES-12a", None),
        ("1" * 13, None),
    ],
)
def test_it_parses_case_codes(text, expected):
    assert Study.parse_case_code(text) == expected


def test_a_case_code_names_the_site_and_the_number_only(site_a):
    (study,) = make_cases([Spec()], now=timezone.now(), default_site=site_a)
    study = Study.objects.select_related("site").get(pk=study.pk)
    assert study.case_code == f"KAYES-{study.pk}"
    assert Study.parse_case_code(study.case_code) == ("kayes", study.pk)
    assert study.patient_name not in study.case_code
    (orphan,) = make_cases([Spec()], now=timezone.now())
    assert Study.objects.get(pk=orphan.pk).case_code == str(orphan.pk)


# --- Filters and search -----------------------------------------------------------------------------


def test_it_filters_by_site_modality_priority_status_and_mine(dr, radiologist, site_a, site_b):
    now = timezone.now()
    made = make_cases(
        [
            Spec("stat", 10, site=site_a, modality="CT"),
            Spec("routine", 20, site=site_a, modality="CR"),
            Spec("urgent", 30, site=site_b, modality="CR", status="received"),
            Spec("routine", 40, site=site_b, modality="MR"),
        ],
        now=now,
    )
    a_ct, a_cr, b_cr, b_mr = (s.pk for s in made)
    assert sorted(rows(get(dr))) == sorted([a_ct, a_cr, b_cr, b_mr])
    assert sorted(rows(get(dr, site="kayes"))) == sorted([a_ct, a_cr])
    assert sorted(rows(get(dr, modality="CR"))) == sorted([a_cr, b_cr])
    assert rows(get(dr, priority="stat")) == [a_ct]
    assert rows(get(dr, status="received")) == [b_cr]
    assert rows(get(dr, site="sikasso", modality="CR")) == [b_cr]
    assert rows(get(dr, mine="on")) == []
    lifecycle.transition(Study.objects.get(pk=b_mr), Transition.CLAIM, actor=radiologist)
    assert rows(get(dr, mine="on")) == [b_mr]
    # A filter with a value that does not exist is a clear verdict, not a crash, and is ignored.
    page = get(dr, priority="bientôt", site="nowhere")
    assert "errorlist" in page and sorted(rows(page)) == sorted([a_ct, a_cr, b_cr, b_mr])
    # The pages keep the filters in their links (works without JavaScript).
    assert "Effacer les filtres" in get(dr, site="kayes")


def test_it_finds_a_case_by_its_code(dr, site_a, site_b):
    made = make_cases([Spec(site=site_a), Spec(site=site_b), Spec(site=site_a)], now=timezone.now())
    target = Study.objects.select_related("site").get(pk=made[1].pk)
    assert rows(get(dr, q=target.case_code)) == [target.pk]
    assert rows(get(dr, q=target.case_code.lower())) == [target.pk]
    assert rows(get(dr, q=str(target.pk))) == [target.pk]
    # The right number with the wrong site finds nothing: the site part is a check.
    page = get(dr, q=f"KAYES-{target.pk}")
    assert rows(page) == [] and "Aucun examen ne correspond à ces filtres." in page
    page = get(dr, q="Coulibaly Awa")
    assert "Code d&#x27;examen non reconnu" in page and len(rows(page)) == 3


def test_a_technician_has_no_worklist(client, tech_a):
    client.force_login(tech_a)
    assert client.get(reverse("worklist")).status_code == 403
    assert client.get(reverse("worklist_rows")).status_code == 403


# --- Pages, countdowns, load --------------------------------------------------------------------------


def test_it_shows_fifty_cases_a_page_most_pressing_first(dr, radiologist, radiologist_2):
    now = timezone.now()
    make_cases(random_specs(120, radiologists=[radiologist_2]), now=now)
    first, second, third = (rows(get(dr, page=n)) for n in (1, 2, 3))
    assert (len(first), len(second), len(third)) == (50, 50, 20)
    from worklist.selectors import worklist_for

    assert first + second + third == [c.pk for c in worklist_for(radiologist)]
    assert rows(get(dr, page="x")) == first and rows(get(dr, page=99)) == third
    assert "page=2" in get(dr)


def test_each_row_counts_down_its_sla(dr):
    now = timezone.now()
    late, fresh = make_cases([Spec("stat", 45), Spec("urgent", 20)], now=now)
    page = get(dr)
    late_row = page.split(f'data-study="{late.pk}"')[1].split("</tr>")[0]
    fresh_row = page.split(f'data-study="{fresh.pk}"')[1].split("</tr>")[0]
    assert re.search(r'<span class="wl-sla late" data-d="\d+">en retard de 15 min</span>', late_row)
    assert re.search(r'<span class="wl-sla" data-d="\d+">délai restant 1 h (39|40)</span>', fresh_row)
    deadline = int(re.search(r'class="wl-sla" data-d="(\d+)"', fresh_row)[1])
    assert abs(deadline - (now.timestamp() + 100 * 60)) < 5
    assert "attente 45 min" in late_row and "attente 20 min" in fresh_row


def test_it_shows_the_load_per_radiologist(dr, radiologist, radiologist_2):
    made = make_cases([Spec(), Spec(), Spec()], now=timezone.now())
    for study in made[:2]:
        lifecycle.transition(study, Transition.CLAIM, actor=radiologist_2)
    page = get(dr)
    load = page.split('class="wl-load"')[1]
    assert re.search(r"Dr_B</td><td>2 / 5</td>", load) and re.search(r"Dr_A</td><td>0 / 5</td>", load)


# --- The refresh fragment ------------------------------------------------------------------------------


def test_the_refresh_fragment_of_fifty_cases_is_under_40_kb(dr, radiologist_2, site_a):
    specs = [
        Spec(p.priority, p.minutes_ago, urgency=0.91, critical=True, site=site_a, modality="CR")
        for p in random_specs(60)
    ]
    made = make_cases(specs, now=timezone.now())
    Study.objects.filter(pk__in=[s.pk for s in made]).update(
        description="Thorax face et profil debout", patient_name="COULIBALY^AWA^MARIAM", indication="x" * 500
    )
    from preread.models import PreRead

    PreRead.objects.filter(is_current=True).update(demo=True)  # the longest badge a row can carry
    answer = dr.get(reverse("worklist_rows"))
    body = answer.content
    assert len(rows(body.decode())) == 50
    assert len(body) <= 40_000, len(body)
    gzipped = dr.get(reverse("worklist_rows"), headers={"accept-encoding": "gzip"})
    assert gzipped["Content-Encoding"] == "gzip" and len(gzipped.content) < len(body) / 4


def test_the_refresh_answers_304_until_something_changes(dr, radiologist_2):
    def refresh(etag: str, site: str = ""):
        return dr.get(reverse("worklist_rows"), {"site": site}, headers={"if-none-match": etag})

    made = make_cases([Spec("routine", 10), Spec("urgent", 5)], now=timezone.now())
    first = dr.get(reverse("worklist_rows"), {"site": ""})
    etag = first["ETag"]
    assert first.status_code == 200 and etag
    # What the script sends back.
    assert f'data-etag="&quot;{etag.strip(chr(34))}&quot;"' in first.content.decode()
    again = refresh(etag)
    assert again.status_code == 304 and again.content == b"" and again["ETag"] == etag
    # The weak form GZipMiddleware sends matches too.
    assert refresh(f"W/{etag}").status_code == 304
    # Another filter is another list.
    assert refresh(etag, site="kayes").status_code == 200
    # A claim changes a row: the list is sent again, with a new ETag.
    lifecycle.transition(made[0], Transition.CLAIM, actor=radiologist_2)
    changed = refresh(etag)
    assert changed.status_code == 200 and changed["ETag"] != etag
    # So does a new case.
    etag = changed["ETag"]
    make_cases([Spec("stat", 0)], now=timezone.now())
    assert refresh(etag).status_code == 200


def test_the_fragment_lists_the_cases_to_announce(dr, site_a):
    now = timezone.now()
    stat, critical, plain = make_cases(
        [Spec("stat", 1, site=site_a), Spec("routine", 1, urgency=0.9, critical=True), Spec("routine", 1)],
        now=now,
    )
    html = dr.get(reverse("worklist_rows")).content.decode()
    announced = re.search(r'data-alerts="([^"]*)"', html)[1].split()
    assert announced == [f"{critical.pk}:{critical.pk}", f"{stat.pk}:KAYES-{stat.pk}"]
    assert html.count('data-alert="1"') == 2


def test_the_ranked_order_is_shared_a_few_seconds_and_any_new_event_shows_at_once(
    dr, radiologist_2, settings
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.WORKLIST_RANK_CACHE_SECONDS = 60
    low, high = make_cases([Spec("routine", 10), Spec("routine", 20)], now=timezone.now())
    assert rows(get(dr)) == [high.pk, low.pk]
    with CaptureQueriesContext(connection) as again:
        assert rows(get(dr)) == [high.pk, low.pk]
    assert not any("ORDER BY" in q["sql"] and "date_part" in q["sql"] for q in again.captured_queries)
    # A change with no new row (a pre-read run finishing in place) waits for the next slot ...
    Study.objects.filter(pk=low.pk).update(ai_urgency=1.0)
    assert rows(get(dr)) == [high.pk, low.pk]
    settings.WORKLIST_RANK_CACHE_SECONDS = 0
    assert rows(get(dr)) == [low.pk, high.pk]
    # A claim changes no score and no membership: same order, but the row's state is fresh.
    settings.WORKLIST_RANK_CACHE_SECONDS = 60
    lifecycle.transition(Study.objects.get(pk=high.pk), Transition.CLAIM, actor=radiologist_2)
    page = get(dr)
    assert rows(page) == [high.pk, low.pk] and "Dr_B" in page.split(f'data-study="{high.pk}"')[1]
    assert rows(get(dr, mine="")) == [high.pk, low.pk]
    # A new case, or one leaving the list, is seen at once.
    (stat,) = make_cases([Spec("stat", 1)], now=timezone.now())
    assert rows(get(dr)) == [stat.pk, low.pk, high.pk]
    lifecycle.transition(
        Study.objects.get(pk=high.pk), Transition.RETURN, actor=radiologist_2, reason_code="motion"
    )
    assert rows(get(dr)) == [stat.pk, low.pk]
    # Filtered on holder or status, a claim counts.
    assert rows(get(dr, status="queued")) == [stat.pk, low.pk]
    lifecycle.transition(Study.objects.get(pk=low.pk), Transition.CLAIM, actor=radiologist_2)
    assert rows(get(dr, status="queued")) == [stat.pk]
