"""What receiving a study costs the database: SQL statements per instance, as the site agent
sends it (a manifest, small instances in one bundle, or one transfer each).

The worker's cost per MB is measured by tests/benchmarks/server_ingest.py; these budgets keep the
records' share from growing back unnoticed. Counted from the first statement of the finaliser to
the last of what it runs on commit (the listeners of a new instance included)."""

from __future__ import annotations

import pydicom
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ingest.models import FileVerdict
from siteagent.manifest import write_bundle
from tests.helpers import complete_transfer, ct_study, manifest_entries
from uploads.finalisation import finalise_transfer
from uploads.manifests import open_manifest
from uploads.models import Transfer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.orthanc]

# Statements for each further instance of a bundle, and for each transfer of one instance
# (14 and 26 until 2026-12-03).
PER_BUNDLED_INSTANCE = 9
PER_SINGLE_TRANSFER = 21


def _manifest(tech, paths):
    study_uid = str(pydicom.dcmread(paths[0], stop_before_pixels=True).StudyInstanceUID)
    manifest, _ = open_manifest(
        user=tech, manifest_id=None, study_instance_uid=study_uid, expected=manifest_entries(paths)
    )
    return manifest


def _statements_for(transfers) -> int:
    with CaptureQueriesContext(connection) as queries:
        for transfer in transfers:
            finalise_transfer(transfer.pk)
    return len(queries)


def _bundled(tech, tmp_path, n: int) -> int:
    (tmp_path / f"bundle-{n}").mkdir()
    paths = ct_study(tmp_path / f"bundle-{n}", range(1, n + 1))
    manifest = _manifest(tech, paths)
    transfer = complete_transfer(
        manifest.submission, write_bundle(paths, tmp_path / f"bundle-{n}.zip"), Transfer.Kind.BUNDLE
    )
    count = _statements_for([transfer])
    assert FileVerdict.objects.filter(submission=manifest.submission, outcome="stored").count() == n
    manifest.submission.refresh_from_db()
    assert manifest.submission.settled_at is not None
    return count


def test_a_bundles_further_instances_cost_a_bounded_number_of_statements(tech_a, tmp_path):
    small, large = _bundled(tech_a, tmp_path, 2), _bundled(tech_a, tmp_path, 8)
    per_instance = (large - small) / 6
    print(f"bundle of 2: {small} statements, of 8: {large}; {per_instance:.1f} per further instance")
    assert per_instance <= PER_BUNDLED_INSTANCE


def test_one_instance_per_transfer_costs_a_bounded_number_of_statements(tech_a, tmp_path):
    paths = ct_study(tmp_path, range(1, 5))
    manifest = _manifest(tech_a, paths)
    transfers = [complete_transfer(manifest.submission, p, Transfer.Kind.DICOM) for p in paths]
    # The first transfer creates the study, the last settles it: the two in the middle are the
    # steady state.
    _statements_for(transfers[:1])
    middle = _statements_for(transfers[1:3]) / 2
    _statements_for(transfers[3:])
    print(f"{middle:.1f} statements per transfer of one instance")
    assert FileVerdict.objects.filter(submission=manifest.submission, outcome="stored").count() == 4
    assert middle <= PER_SINGLE_TRANSFER
