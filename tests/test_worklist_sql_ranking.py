"""The database's score is ranking.rank_case's score: same numbers, same order, on PostgreSQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from preread.models import PreRead
from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Study
from tests.worklist_data import Spec, make_cases, random_specs
from worklist import selectors
from worklist.ranking import rank_case

pytestmark = pytest.mark.django_db

VARIED = [
    Spec("routine", 0),
    Spec("routine", 5, urgency=0.95, critical=True),
    Spec("urgent", 5),
    Spec("urgent", 121),
    Spec("stat", 0, urgency=1.0, critical=True),
    Spec("stat", 29.5),
    Spec("stat", 31, urgency=0.4),
    Spec("routine", 24 * 60 + 1),
    Spec("routine", 12 * 60, urgency=1.7),  # out of range: clamped to 1
    Spec("routine", 70, urgency=-0.3),  # clamped to 0
    Spec("urgent", 300, urgency=0.9, ai_status="refused"),  # a refused run's urgency is not counted
    Spec("routine", 3000, urgency=0.5, status="received"),
    Spec("routine", 10, received=False),  # arriving: waits since its creation
    Spec("urgent", -5),  # a clock a little ahead: no negative wait
]


def python_scores(user, now) -> dict[int, float]:
    return {c.pk: c.rank.score for c in selectors.worklist_ranked_in_python(user, now=now)}


def sql_scores(user, now) -> list[tuple[int, float]]:
    return list(selectors.ranked(selectors.open_studies(user), now=now).values_list("pk", "score"))


def test_it_computes_the_python_score_in_sql_for_every_factor(radiologist):
    now = timezone.now()
    made = make_cases(VARIED, now=now)
    expected = python_scores(radiologist, now)
    got = sql_scores(radiologist, now)
    assert len(got) == len(VARIED) == len(expected)
    for pk, score in got:
        assert score == pytest.approx(expected[pk], rel=1e-9, abs=1e-9), VARIED[
            [s.pk for s in made].index(pk)
        ]
    # Spot checks against the reference function with the same factors.
    stat_late = made[6]
    since = now - timedelta(minutes=31)
    ref = rank_case(selectors.factors_of(stat_late, since, PreRead(status="scored", urgency=0.4)), now=now)
    assert dict(got)[stat_late.pk] == pytest.approx(ref.score)


def test_it_orders_like_the_python_ranking_on_a_varied_backlog(radiologist, radiologist_2, site_a, site_b):
    now = timezone.now()
    make_cases(random_specs(400, sites=[site_a, site_b], radiologists=[radiologist_2]), now=now)
    python_order = [c.pk for c in selectors.worklist_ranked_in_python(radiologist, now=now)]
    sql_order = [pk for pk, _ in sql_scores(radiologist, now)]
    assert sql_order == python_order
    expected = python_scores(radiologist, now)
    assert all(score == pytest.approx(expected[pk], rel=1e-9) for pk, score in sql_scores(radiologist, now))


def test_it_uses_the_deployments_weights_and_slas(radiologist, settings):
    settings.WORKLIST_WEIGHTS = {"ai": 0.0, "waiting_per_hour": 0.5}
    settings.WORKLIST_SLA_MINUTES = {"routine": 30}
    now = timezone.now()
    make_cases(VARIED, now=now)
    expected = python_scores(radiologist, now)
    assert {pk: pytest.approx(expected[pk]) for pk, _ in sql_scores(radiologist, now)} == dict(
        sql_scores(radiologist, now)
    )
    assert [pk for pk, _ in sql_scores(radiologist, now)] == list(expected)


def test_the_page_rows_explain_themselves_with_the_python_rank(radiologist):
    now = timezone.now()
    make_cases(VARIED, now=now)
    page = selectors.worklist_page(radiologist, now=now, per_page=5)
    assert page.total == len(VARIED) and page.pages == 3 and len(page.cases) == 5
    expected = python_scores(radiologist, now)
    for case in page.cases:
        assert case.rank.score == pytest.approx(expected[case.pk])
        assert "score" in " ".join(case.rank.explain())
    last = selectors.worklist_page(radiologist, now=now, per_page=5, page=99)
    assert last.number == 3 and len(last.cases) == len(VARIED) - 10


def test_next_cases_follow_the_radiologists_order(radiologist, radiologist_2):
    now = timezone.now()
    make_cases(random_specs(60, radiologists=[radiologist_2]), now=now)
    order = [c.study for c in selectors.worklist_for(radiologist, now=now) if c.may_claim or c.held]
    assert len(order) > 10
    after = selectors.next_cases(radiologist, order[3], n=3)
    assert [s.pk for s in after] == [s.pk for s in order[4:7]]
    # Cases held by someone else are never prefetched; a study off the list starts from the top.
    held_by_other = Study.objects.filter(assigned_to=radiologist_2).first()
    assert held_by_other is not None
    assert held_by_other.pk not in [s.pk for s in selectors.next_cases(radiologist, order[0], n=60)]
    lifecycle.transition(order[0], Transition.CLAIM, actor=radiologist)
    lifecycle.transition(order[0], Transition.RETURN, actor=radiologist, reason_code="motion")
    assert [s.pk for s in selectors.next_cases(radiologist, order[0], n=2)] == [s.pk for s in order[1:3]]


def facts(study_id: int) -> tuple:
    return tuple(Study.objects.values_list("waiting_since", "ai_urgency", "ai_critical").get(pk=study_id))


def test_the_ranking_facts_follow_the_history_and_the_current_preread(radiologist):
    """Study's copies are written where their truth is written; a rebuild finds nothing to fix."""
    from worklist.facts import rebuild_ranking_facts

    study = lifecycle.create_study(event=Transition.RECEIVE, orthanc_id="o1", study_instance_uid="2.25.1")
    received = study.events.get(to_status="received").at
    assert facts(study.pk) == (received, None, False)
    # A pre-read made current (as preread.services does: save the run) brings its score.
    run = PreRead.objects.create(study=study, models_key="a", status="scored", urgency=0.8,
                                 critical_flags=["pneumothorax"], is_current=True)  # fmt: skip
    assert facts(study.pk) == (received, 0.8, True)
    # A newer run that refused: the study no longer carries a score.
    PreRead.objects.filter(pk=run.pk).update(is_current=False)
    PreRead.objects.create(study=study, models_key="b", status="refused", urgency=0.9, is_current=True)
    assert facts(study.pk) == (received, None, False)
    # Claimed, returned and sent again: it waits since the new `received`.
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    lifecycle.transition(study, Transition.RETURN, actor=radiologist, reason_code="motion")
    lifecycle.transition(study, Transition.RECEIVE)
    again = study.events.filter(to_status="received").order_by("-at")[0].at
    assert again > received and facts(study.pk)[0] == again
    before = facts(study.pk)
    rebuild_ranking_facts()
    assert facts(study.pk) == before
