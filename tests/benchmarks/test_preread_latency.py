"""Benchmark (on demand, not in `make test`): latency from a complete study to a scored study
re-ordered in the worklist, with the real Celery worker; peer in the same run: the same path with
no model enabled. Prints one JSON line and a one-line summary.

    TEST_DATABASE_NAME=test_bench .venv/bin/pytest tests/benchmarks/test_preread_latency.py -s
(with DATABASE_URL and CELERY_BROKER_URL as `make test` sets them).
"""

from __future__ import annotations

import json
import statistics

import pytest
from django.utils import timezone

from preread.models import PreRead
from studies.models import Study
from tests.helpers import build_constant_model, send_chest, send_ct, wait_for
from worklist.selectors import worklist_for

pytestmark = pytest.mark.django_db(transaction=True)


def order(user) -> list[int]:
    return [s.pk for s in worklist_for(user)]


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def test_latency_from_complete_study_to_reordered_worklist(worker_models, tech_a, radiologist, tmp_path):
    """Study complete (upload answered, received_at stamped) → scored and above an urgent CT in the
    worklist, with the real worker. Peer in the same run: the same path with no model enabled."""
    ct = send_ct(tech_a, tmp_path, n=1, priority="urgent")
    wait_for(lambda: Study.objects.get(pk=ct.pk).status == "queued")

    def measure(label: str, placed) -> list[float]:
        seconds = []
        for i in range(10):
            study = send_chest(tech_a, tmp_path, f"{label}{i}")
            wait_for(lambda s=study: placed(s), timeout=30, interval=0.02)
            # From the moment the study counted as complete (stamped in the request, before the
            # task was enqueued), not from the upload's answer: the worker may start before it.
            done = timezone.now()
            seconds.append((done - Study.objects.get(pk=study.pk).received_at).total_seconds())
        return seconds

    def queued(study: Study) -> bool:
        return Study.objects.filter(pk=study.pk, status="queued").exists()

    def scored_and_above_the_ct(study: Study) -> bool:
        ids = order(radiologist)
        return study.pk in ids and ids.index(study.pk) < ids.index(ct.pk) and queued(study)

    peer = measure("noai", queued)
    build_constant_model(worker_models, probabilities={"pneumothorax": 0.95})
    with_ai = measure("ai", scored_and_above_the_ct)
    server_ms = [r.total_ms for r in PreRead.objects.filter(status="scored")]
    summary = {
        "benchmark": "study complete → scored and re-ordered in the worklist (real worker)",
        "n": len(with_ai),
        "with_ai_s": {"p50": round(statistics.median(with_ai), 3), "p95": round(_p95(with_ai), 3)},
        "no_model_peer_s": {"p50": round(statistics.median(peer), 3), "p95": round(_p95(peer), 3)},
        "preread_service_ms_p50": round(statistics.median(server_ms), 1),
    }
    print(json.dumps(summary))
    print(
        f"latency p95 {summary['with_ai_s']['p95']} s with AI vs {summary['no_model_peer_s']['p95']} s "
        f"without (peer), n={len(with_ai)}"
    )
    assert len(server_ms) == 10
    assert _p95(with_ai) < 10.0
