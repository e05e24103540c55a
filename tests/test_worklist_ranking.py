"""The worklist order as a pure function: given the factors and now, the expected order."""

from datetime import UTC, datetime, timedelta

import pytest

from worklist.ranking import CaseFactors, order_cases, rank_case

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def case(priority="routine", minutes_ago=0.0, ai=None, critical=False) -> CaseFactors:
    return CaseFactors(
        priority=priority,
        waiting_since=NOW - timedelta(minutes=minutes_ago),
        ai_urgency=ai,
        ai_critical=critical,
    )


def order(named: dict[str, CaseFactors], now=NOW, **kwargs) -> list[str]:
    return [name for name, _ in order_cases(named, lambda n: named[n], now=now, **kwargs)]


def test_clinical_priority_orders_fresh_cases_without_ai():
    assert order({"routine": case("routine"), "stat": case("stat"), "urgent": case("urgent")}) == [
        "stat",
        "urgent",
        "routine",
    ]


def test_a_critical_ai_finding_lifts_a_routine_case_above_a_fresh_urgent_one():
    named = {"urgent": case("urgent", 5), "routine_ptx": case("routine", 5, ai=0.95, critical=True)}
    assert order(named) == ["routine_ptx", "urgent"]
    # Without the AI it would be the other way round.
    named["routine_ptx"] = case("routine", 5)
    assert order(named) == ["urgent", "routine_ptx"]


def test_a_low_ai_urgency_does_not_overtake_clinical_priority():
    assert order({"urgent": case("urgent"), "routine": case("routine", ai=0.2)}) == ["urgent", "routine"]


def test_a_routine_case_past_its_sla_overtakes_a_fresh_urgent_one():
    fresh_urgent = case("urgent", 0)
    assert order({"routine": case("routine", 12 * 60), "urgent": fresh_urgent}) == ["urgent", "routine"]
    assert order({"routine": case("routine", 24 * 60 + 1), "urgent": fresh_urgent}) == ["routine", "urgent"]


def test_an_urgent_case_at_its_sla_overtakes_a_fresh_stat_one():
    assert order({"stat": case("stat", 0), "urgent": case("urgent", 121)}) == ["urgent", "stat"]


def test_nothing_starves_even_against_the_highest_possible_newcomer():
    """A routine case with no AI finding eventually beats a fresh STAT with a critical AI flag."""
    newcomer = rank_case(case("stat", 0, ai=1.0, critical=True), now=NOW).score
    waited = next(h for h in range(1, 24 * 7) if rank_case(case("routine", h * 60), now=NOW).score > newcomer)
    assert waited <= 72, f"a routine case waits {waited} h before it beats any newcomer"


def test_scores_rise_with_waiting_time_for_every_priority():
    for priority in ("stat", "urgent", "routine"):
        scores = [rank_case(case(priority, m), now=NOW).score for m in (0, 10, 100, 1000, 10000)]
        assert scores == sorted(scores) and len(set(scores)) == len(scores), priority


def test_ties_go_to_the_longest_waiting():
    assert order(
        {"newer": case("routine", 10), "older": case("routine", 10.5)},
        weights={"waiting_per_hour": 0.0, "sla": 0.0},
    ) == ["older", "newer"]


def test_weights_and_slas_come_from_the_deployment():
    named = {"routine": case("routine", 60), "urgent": case("urgent", 0)}
    assert order(named) == ["urgent", "routine"]
    # A deployment that gives routine work a one-hour SLA sees it late, and first.
    assert order(named, sla_minutes={"routine": 30}) == ["routine", "urgent"]
    # One that ignores the AI ranks by clinical priority only.
    named = {"urgent": case("urgent"), "ai": case("routine", ai=1.0, critical=True)}
    assert order(named, weights={"ai": 0.0}) == ["urgent", "ai"]


def test_the_rank_explains_itself():
    rank = rank_case(case("urgent", 150, ai=0.95, critical=True), now=NOW)
    text = " · ".join(rank.explain())
    assert "IA 0.95 (!)" in text and "priorité Urgent" in text
    assert "en retard de 30 min" in text and "attente 2 h 30" in text
    assert rank.score == pytest.approx(rank.ai + rank.clinical + rank.sla + rank.overdue + rank.waiting)
    assert rank.overdue == pytest.approx(2.0 * 30 / 120)
