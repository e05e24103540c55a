"""AI against the radiologists, on hand-counted cases: sensitivity, specificity, cases the AI
moved up the queue, per model version and site; the radiologist's structured answer stored with
the signed version; shadow mode measured apart and proven not to change the worklist order (the
real PostgreSQL ranking, with and without shadow results; once with a real shadow model scoring
real images from Orthanc)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from dashboard import figures
from dashboard.periods import Period
from django.core.exceptions import ValidationError
from django.utils import timezone

from preread.models import ImageResult, PreRead, ShadowModel, ShadowResult
from preread.shadow import run_shadow_models
from reports.models import Report, ReportVersion
from studies.models import Instance, Status, Study, StudyEvent
from tests.test_dashboard import signed_case
from tests.worklist_data import Spec, make_cases
from worklist import selectors
from worklist.facts import rebuild_ranking_facts
from worklist.ranking import CaseFactors, rank_case

pytestmark = pytest.mark.django_db


def scored(study: Study, *, urgency: float, flags=(), positive=(), model=("pneumo", "1.0")) -> PreRead:
    """The study's current live pre-read as preread.services leaves it, with one image."""
    run = PreRead.objects.create(
        study=study, models_key=uuid.uuid4().hex, status="scored", is_current=True, urgency=urgency,
        critical_flags=list(flags), model_name=model[0], model_version=model[1], images_scored=1,
    )  # fmt: skip
    tag = uuid.uuid4().hex
    instance = Instance.objects.create(
        study=study,
        sop_instance_uid=f"2.25.{int(tag[:16], 16)}",
        series_instance_uid="2.25.1",
        orthanc_id=tag,
    )
    ImageResult.objects.create(
        preread=run, instance=instance, status="scored", urgency=urgency, critical_flags=list(flags),
        details={"positive_labels": list(positive)},
    )  # fmt: skip
    return run


def report(study: Study, reader, *, abnormality: str = "", critical: str = "") -> ReportVersion:
    """The signed version of the study's report (its first, or a later one given the answer)."""
    rep, _ = Report.objects.get_or_create(study=study, defaults={"author": reader})
    number = rep.versions.count() + 1
    return ReportVersion.objects.create(
        report=rep, number=number, kind="original" if number == 1 else "amendment",
        reason="" if number == 1 else "correction", author=reader, author_name="Dr A",
        signed_at=timezone.now(), conclusion="…", abnormality=abnormality, critical_category=critical,
    )  # fmt: skip


@pytest.fixture
def cases(site_a, site_b, radiologist):
    """Hand-counted: pneumo 1.0 at Kayes, eight cases; pneumo 2.0 at Sikasso, one."""
    now = timezone.now()

    def case(site, **ai):
        study = signed_case(site, "routine", 60, signed_at=now - timedelta(hours=2), reader=radiologist)
        scored(study, **ai)
        return study

    made = {
        # flagged by a critical flag, abnormal: true positive
        "tp1": (case(site_a, urgency=0.95, flags=["pneumothorax"]), "present", ""),
        # flagged by a label over its threshold only, abnormal: true positive
        "tp2": (case(site_a, urgency=0.6, positive=["pneumonia"]), "present", ""),
        # not flagged, abnormal: false negative (the missed pneumonia at 0.32)
        "fn1": (case(site_a, urgency=0.32), "present", ""),
        # flagged, normal: false positive (the normal child at 0.95)
        "fp1": (case(site_a, urgency=0.95, positive=["pneumonia"]), "absent", ""),
        "tn1": (case(site_a, urgency=0.1), "absent", ""),
        "tn2": (case(site_a, urgency=0.05), "absent", ""),
        # no answer: counted apart, never guessed
        "unstated": (case(site_a, urgency=0.9, flags=["pneumothorax"]), "", ""),
        # no answer, but a critical category: abnormal; not flagged: false negative
        "fn2": (case(site_a, urgency=0.2), "", "urgent"),
        "v2": (case(site_b, urgency=0.8, positive=["pneumonia"], model=("pneumo", "2.0")), "present", ""),
    }
    for study, answer, critical in made.values():
        report(study, radiologist, abnormality=answer, critical=critical)
    return {name: study for name, (study, _a, _c) in made.items()} | {"now": now}


def _period(now):
    return Period(now - timedelta(days=30), now + timedelta(seconds=1))


def test_it_counts_sensitivity_and_specificity_per_model_version_and_site(cases, site_a, site_b):
    sites = [site_a, site_b]
    signed = figures.signed_cases(sites, _period(cases["now"]))
    table = figures.ai_agreement(sites, signed, moved=set())
    by_key = {(r["model"], r["version"], r["site"]): r for r in table.rows}
    v1 = by_key[("pneumo", "1.0", "kayes")]
    assert (v1["true_positive"], v1["false_negative"], v1["false_positive"], v1["true_negative"]) == (
        2,
        2,
        1,
        2,
    )
    assert (v1["cases"], v1["not_stated"]) == (7, 1)
    assert v1["sensitivity_pct"] == 50.0  # 2 / (2 + 2)
    assert v1["specificity_pct"] == round(100 * 2 / 3, 1)  # 2 / (2 + 1)
    v2 = by_key[("pneumo", "2.0", "sikasso")]
    assert (v2["sensitivity_pct"], v2["specificity_pct"], v2["cases"]) == (100.0, None, 1)


def test_the_latest_signed_version_is_the_answer(cases, site_a, radiologist):
    report(cases["fp1"], radiologist, abnormality="present")  # an amendment: it was abnormal after all
    signed = figures.signed_cases([site_a], _period(cases["now"]))
    row = figures.ai_agreement([site_a], signed, moved=set()).rows[0]
    assert (row["true_positive"], row["false_positive"]) == (3, 0)


def test_the_answer_is_signed_with_the_report(site_a, radiologist):
    """The reading page's structured answer goes through reports.services into the version."""
    from reports.services import save_report
    from studies import lifecycle
    from studies.lifecycle import Transition

    study = Study.objects.create(orthanc_id="ans", study_instance_uid="2.25.77", site=site_a, status="queued")
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    with pytest.raises(ValidationError, match="inconnue"):
        save_report(study=study, author=radiologist, conclusion="…", abnormality="maybe")
    save_report(
        study=study, author=radiologist, conclusion="Pas d'anomalie.", abnormality="absent", sign=True
    )
    assert ReportVersion.objects.get(report__study=study).abnormality == "absent"


def _at(study: Study, to_status: str, when) -> None:
    StudyEvent.objects.filter(study=study, to_status=to_status).update(at=when)


def test_it_counts_the_cases_the_ai_moved_up_the_queue(site_a, radiologist):
    """Two routine cases: Y waiting since 120 min without AI urgency, X since 60 min at 0.9.
    X is taken first: with the AI it stood first, without it second (moved up). Y is taken
    after, alone in the queue: not moved. By hand with the default weights at X's claim:
    with AI, X 0.9 + 0.5 × 60/1440 + 0.01 = 0.931 against Y 0.5 × 120/1440 + 0.02 = 0.062."""
    now = timezone.now()
    x = signed_case(site_a, "routine", 90, signed_at=now - timedelta(minutes=10), reader=radiologist)
    y = signed_case(site_a, "routine", 150, signed_at=now - timedelta(minutes=5), reader=radiologist)
    claim_x = now - timedelta(minutes=40)
    _at(x, Status.RECEIVED, claim_x - timedelta(minutes=60))
    _at(x, Status.QUEUED, claim_x - timedelta(minutes=59))
    _at(x, Status.IN_READING, claim_x)
    _at(y, Status.RECEIVED, claim_x - timedelta(minutes=120))
    _at(y, Status.QUEUED, claim_x - timedelta(minutes=119))
    _at(y, Status.IN_READING, claim_x + timedelta(minutes=20))
    scored(x, urgency=0.9)
    scored(y, urgency=0.0)
    rebuild_ranking_facts()
    report(x, radiologist, abnormality="present")
    report(y, radiologist, abnormality="absent")
    signed = figures.signed_cases([site_a], Period(now - timedelta(days=1), now))
    assert figures.moved_up_by_ai(signed) == {x.pk}
    row = figures.ai_agreement([site_a], signed, moved=figures.moved_up_by_ai(signed)).rows[0]
    assert (row["moved_up"], row["moved_up_pct"]) == (1, 50.0)


def test_the_page_shows_the_ai_table(client, cases, admin_user):
    client.force_login(admin_user)
    page = client.get("/dashboard/").content.decode()
    assert "pneumo" in page and "50,0" in page  # the sensitivity, in French notation


# --- Shadow mode ------------------------------------------------------------------------------------


SPECS = [
    Spec("routine", 200, urgency=0.1),
    Spec("routine", 30, urgency=0.95, critical=True),
    Spec("urgent", 50, urgency=0.3),
    Spec("stat", 5, urgency=0.0),
    Spec("routine", 600, urgency=0.7),
    Spec("urgent", 10, urgency=0.99),
]


def sql_order(user, now) -> list[int]:
    return [c.pk for c in selectors.worklist_for(user, now=now)]


def test_shadow_mode_does_not_change_the_worklist_order(radiologist, site_a, settings):
    settings.WORKLIST_RANK_CACHE_SECONDS = 0
    now = timezone.now()
    studies = make_cases(SPECS, now=now, default_site=site_a)
    before = sql_order(radiologist, now)
    facts_before = list(Study.objects.order_by("pk").values_list("pk", "ai_urgency", "ai_critical"))

    # A new threshold on the live model, run by the shadow task's own code...
    threshold = ShadowModel.objects.create(name="seuil-0-5", threshold=0.5)
    for study in studies:
        run_shadow_models(study_id=study.pk)
    flagged = dict(ShadowResult.objects.filter(shadow=threshold).values_list("study_id", "flagged"))
    assert flagged == {s.pk: (spec.urgency or 0) >= 0.5 for s, spec in zip(studies, SPECS, strict=True)}
    # ...and what a different model under trial wrote: the opposite urgencies.
    inverse = ShadowModel.objects.create(name="autre-modele", package_dir="/nowhere")
    for study, spec in zip(studies, SPECS, strict=True):
        ShadowResult.objects.create(
            shadow=inverse, study=study, status="scored", urgency=1 - (spec.urgency or 0), flagged=True,
            model_name="other", model_version="0.1",
        )  # fmt: skip

    assert sql_order(radiologist, now) == before
    assert list(Study.objects.order_by("pk").values_list("pk", "ai_urgency", "ai_critical")) == facts_before
    assert not PreRead.objects.filter(model_name="other").exists()
    # The test can fail: had the shadow's urgencies been ranked, the order would differ.
    shadow_urgency = dict(ShadowResult.objects.filter(shadow=inverse).values_list("study_id", "urgency"))
    by_pk = {s.pk: s for s in Study.objects.filter(pk__in=before)}

    def shadow_rank(pk: int) -> tuple:
        study = by_pk[pk]
        rank = rank_case(CaseFactors(study.priority, study.waiting_since, shadow_urgency[pk]), now=now)
        return (-rank.score, study.waiting_since)

    assert sorted(before, key=shadow_rank) != before


def test_an_inactive_or_missing_shadow_model_runs_nothing(site_a):
    now = timezone.now()
    [study] = make_cases([Spec("routine", 5, urgency=0.4)], now=now, default_site=site_a)
    ShadowModel.objects.create(name="off", threshold=0.1, active=False)
    missing = ShadowModel.objects.create(name="missing", package_dir="/nowhere/at/all")
    [result] = run_shadow_models(study_id=study.pk)
    assert (result.shadow, result.status, result.flagged) == (missing, "failed", False)
    assert run_shadow_models(study_id=study.pk) == [result]  # once per study: a redelivery finds it


@pytest.mark.orthanc
def test_a_shadow_model_scores_real_images_and_the_queue_keeps_the_live_order(
    settings, tmp_path, tech_a, radiologist
):
    from preread.services import prepare_study_for_reading
    from tests.helpers import build_constant_model, send_chest

    settings.WORKLIST_RANK_CACHE_SECONDS = 0
    settings.JOLIBA_MODELS_DIR = tmp_path / "live"
    settings.JOLIBA_MODELS_DIR.mkdir()
    build_constant_model(settings.JOLIBA_MODELS_DIR, probabilities={"pneumothorax": 0.2})
    trial = build_constant_model(
        tmp_path / "trial", name="trial-cxr", version="0.9.0", probabilities={"pneumothorax": 0.97}
    )
    routine = send_chest(tech_a, tmp_path, name="r")
    urgent = send_chest(tech_a, tmp_path, name="u", priority="urgent")
    for study in (routine, urgent):
        prepare_study_for_reading(study.pk)
    now = timezone.now()
    before = sql_order(radiologist, now)
    live = dict(Study.objects.values_list("pk", "ai_urgency"))

    ShadowModel.objects.create(name="trial", package_dir=str(trial))
    for study in (routine, urgent):
        [result] = run_shadow_models(study_id=study.pk)
        assert (result.status, result.model_name, result.model_version) == ("scored", "trial-cxr", "0.9.0")
        assert result.urgency == pytest.approx(0.97, abs=1e-3) and result.flagged
    assert sql_order(radiologist, now) == before == [urgent.pk, routine.pk]
    assert dict(Study.objects.values_list("pk", "ai_urgency")) == live
    assert all(u == pytest.approx(0.2, abs=1e-3) for u in live.values())
    assert PreRead.objects.filter(model_name="trial-cxr").count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_the_shadow_model_after_the_live_pre_read(
    worker_models, tech_a, radiologist, tmp_path
):
    """The real path: a study arrives, the worker pre-reads it with the live model, queues it,
    then runs the model under trial in its own task; the queue shows the live score only."""
    from tests.helpers import build_constant_model, send_chest, wait_for

    build_constant_model(worker_models, probabilities={"pneumothorax": 0.2})
    trial = build_constant_model(
        tmp_path / "trial", name="trial-cxr", version="0.9.0", probabilities={"pneumothorax": 0.97}
    )
    ShadowModel.objects.create(name="trial", package_dir=str(trial))
    chest = send_chest(tech_a, tmp_path, name="w")
    result = wait_for(lambda: ShadowResult.objects.filter(study=chest).first(), timeout=60)
    assert (result.status, result.model_name, result.flagged) == ("scored", "trial-cxr", True)
    assert result.urgency == pytest.approx(0.97, abs=1e-3)
    study = Study.objects.get(pk=chest.pk)
    assert study.status == "queued" and study.ai_urgency == pytest.approx(0.2, abs=1e-3)
    assert (
        not study.ai_critical
        and PreRead.objects.get(study=study, is_current=True).model_name == "joliba-demo-cxr"
    )
    [case] = selectors.worklist_for(radiologist)
    assert case.rank.factors.ai_urgency == pytest.approx(0.2, abs=1e-3)


def test_the_api_signs_the_answer_and_shows_it(site_a, radiologist):
    from studies import lifecycle
    from studies.lifecycle import Transition
    from tests.helpers import api_client

    study = Study.objects.create(orthanc_id="api", study_instance_uid="2.25.78", site=site_a, status="queued")
    lifecycle.transition(study, Transition.CLAIM, actor=radiologist)
    client = api_client(radiologist)
    url = f"/api/v1/studies/{study.pk}/report/"
    assert client.put(url, {"conclusion": "Foyer.", "abnormality": "maybe"}, format="json").status_code == 400
    answer = client.put(url, {"conclusion": "Foyer.", "abnormality": "present", "sign": True}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["abnormality"] == "present"
    assert answer.json()["versions"][0]["abnormality"] == "present"
