"""Malformed files made by the test (tests/helpers.malformed_dicoms), not taken from the shared corpus:
every clone checks that each gets a clear verdict through the bounded validator and the real ingest."""

import warnings

import pytest
from django.urls import reverse

from ingest.models import FileVerdict
from ingest.validation import check_files
from ingest.verdicts import describe
from studies.models import Instance
from tests.helpers import CT_SERIES, api_client, dicom_copy, malformed_dicoms

EXPECTED = {
    "empty.dcm": "empty",
    "short.dcm": "too_small",
    "text.dcm": "not_dicom",
    "garbage-after-dicm.dcm": "truncated",  # parses as elements until one claims more bytes than remain
    "cut-in-header.dcm": "missing_uid",  # cut before the Study Instance UID
    "cut-in-pixels.dcm": "truncated",
    "no-sop-uid.dcm": "missing_uid",
    "bad-uid.dcm": "missing_uid",
    "no-pixels.dcm": "no_pixels",
    "not-an-image.dcm": "not_image",
    "zero-rows.dcm": "bad_pixel_description",
    "twelve-bits-allocated.dcm": "bad_pixel_description",
    "allocation-bomb.dcm": "too_large",
    "broken-j2k.dcm": "undecodable",
    "deep-sequence.dcm": "too_deep",
}
# What the validator says wrongly today, and why: strict xfail, so a fix shows (none at present).
KNOWN_WRONG: dict[str, str] = {}


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid UID it is asked to write
        return malformed_dicoms(tmp_path_factory.mktemp("malformed"))


def test_the_table_names_every_made_file(made):
    assert set(made) == set(EXPECTED)


@pytest.fixture(scope="module")
def verdicts(made, tmp_path_factory):
    names = sorted(made)
    return dict(
        zip(names, check_files([made[n] for n in names], tmp_path_factory.mktemp("checked")), strict=True)
    )


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(reason=KNOWN_WRONG[n], strict=True))
        if n in KNOWN_WRONG
        else n
        for n in EXPECTED
    ],
)
def test_the_bounded_validator_refuses_each_with_its_reason(verdicts, name):
    verdict = verdicts[name]
    reason = describe(verdict.code, verdict.params)
    assert not verdict.ok and reason
    assert verdict.code == EXPECTED[name], reason


def _upload(user, paths):
    handles = [p.open("rb") for p in paths]
    try:
        return api_client(user).post(
            reverse("api_upload"), {"files": handles, "indication": "x"}, format="multipart"
        )
    finally:
        for handle in handles:
            handle.close()


def _good_slice(tmp_path):
    from pydicom.uid import generate_uid

    return dicom_copy(
        CT_SERIES / "01.dcm",
        tmp_path / "good.dcm",
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
    )


@pytest.mark.django_db
def test_the_ingest_gives_each_a_verdict_and_stores_only_the_good_one(tech_a, orthanc_server, made, tmp_path):
    paths = [_good_slice(tmp_path), *(made[n] for n in sorted(made) if n != "empty.dcm")]
    answer = _upload(tech_a, paths)
    assert answer.status_code == 201, answer.content[:500]
    verdicts = answer.json()["verdicts"]
    assert [v["filename"] for v in verdicts] == [p.name for p in paths]  # none dropped
    assert verdicts[0]["outcome"] == "stored"
    assert all(v["outcome"] == "refused" and v["reason"] for v in verdicts[1:]), verdicts
    assert Instance.objects.count() == 1
    stored = FileVerdict.objects.get(outcome="stored")
    archived = orthanc_server.client().instance_tags(Instance.objects.get().orthanc_id)
    assert archived["SOPInstanceUID"] == stored.sop_instance_uid


@pytest.mark.django_db
@pytest.mark.orthanc
def test_an_empty_file_gets_its_own_verdict_and_the_others_are_still_ingested(tech_a, made, tmp_path):
    answer = _upload(tech_a, [_good_slice(tmp_path), made["empty.dcm"]])
    assert answer.status_code == 201, answer.content[:300]
    verdicts = answer.json()["verdicts"]
    assert [v["outcome"] for v in verdicts] == ["stored", "refused"]
    assert verdicts[1]["code"] == "empty" and verdicts[1]["reason"]
