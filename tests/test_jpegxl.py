"""JPEG XL on the wire (siteagent/jpegxl.py, ingest/jpegxl_restore.py): every real image arrives with
its pixels (or its JPEG bytes) intact, a damaged codestream is refused with a reason while the
rest of its study arrives, and the effort is one the link pays for."""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from ingest.dicom_check import Refused, check_file
from siteagent import jpegxl, linkrate
from siteagent.cli import parse_args
from siteagent.compression import SitePolicy, compress_for_link
from studies.models import Instance
from tests.helpers import api_client, wrap_jpeg_as_dicom
from tests.paths import CT_HEAD, REAL_CXR, REAL_OTHER, RF_SHOULDER, TESTDATA

JPEG_FILM = (
    REAL_CXR / "CR_chest_PA_SIIM-ACR_NIH-CXR14" / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
)
CT_SLICE = CT_HEAD / "14.dcm"
LOSSY = {"1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91"}


# --- The corpus: every real image of the shared folder -----------------------------------------
def _corpus() -> list[str]:
    """Every real image (DICOM, and the PNG / JPEG films a site wraps), relative to the test
    images folder (the shared one, or the portable set)."""
    names = []
    for folder in (REAL_OTHER, REAL_CXR):
        if folder.is_dir():
            names += sorted(
                str(p.relative_to(TESTDATA))
                for p in folder.rglob("*")
                if p.suffix.lower() in (".dcm", ".png", ".jpeg", ".jpg")
            )
    return names


def png_as_dicom(png: Path, target: Path) -> Path:
    """A PNG film as a site wraps it: 8-bit grey Secondary Capture, uncompressed."""
    from PIL import Image

    with Image.open(png) as img:
        pixels = np.asarray(img.convert("L"))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.ConversionType = "CR", "DF"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(target, enforce_file_format=True)
    return target


def as_dicom(relative: str, tmp_path: Path) -> Path:
    source = TESTDATA / relative
    if source.suffix.lower() == ".png":
        return png_as_dicom(source, tmp_path / "film.dcm")
    if source.suffix.lower() in (".jpeg", ".jpg"):
        (tmp_path / "film.dcm").write_bytes(wrap_jpeg_as_dicom(source))
        return tmp_path / "film.dcm"
    return source


def frames_bytes(ds: Dataset) -> list[bytes]:
    return list(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames") or 1)))


def on_the_wire(source: Path, target: Path, effort: int = jpegxl.PROBE_EFFORT) -> jpegxl.Encoded | None:
    """What the agent sends as JPEG XL for `source` (whatever the link), saved at `target`."""
    ds = pydicom.dcmread(source)
    ts = str(ds.file_meta.TransferSyntaxUID)
    if ts == jpegxl.JPEG_BASELINE:
        wire = jpegxl.encode_jpeg_recompression(ds)
    else:
        wire = jpegxl.encode_lossless(ds, best_bytes=0, link_bytes_per_s=1, force_effort=effort)
    if wire is not None:
        wire.dataset.save_as(target, enforce_file_format=True)
    return wire


@pytest.mark.testdata
@pytest.mark.parametrize("relative", _corpus())
def test_every_real_image_reaches_the_archive_identical_through_jpeg_xl(relative, tmp_path):
    source = as_dicom(relative, tmp_path)
    original = pydicom.dcmread(source)
    ts = str(original.file_meta.TransferSyntaxUID)
    assert int(original.BitsAllocated) in (8, 16)  # the corpus is 8-16-bit, signed or not
    if ts in LOSSY:  # lossy pixels are never transcoded: they travel as they are
        assert (
            compress_for_link(source, tmp_path / "wire.dcm", SitePolicy(link_bytes_per_s=1)).codec == "as-is"
        )
        return
    wire = on_the_wire(source, tmp_path / "wire.dcm")
    assert wire is not None, f"{relative}: no JPEG XL made"
    sent = pydicom.dcmread(tmp_path / "wire.dcm")
    assert str(sent.file_meta.TransferSyntaxUID) == wire.syntax
    assert sent.SOPInstanceUID == original.SOPInstanceUID

    result = check_file(tmp_path / "wire.dcm", tmp_path / "clean.dcm")  # the centre's checker
    archived = pydicom.dcmread(tmp_path / "clean.dcm")
    assert result["restored_from"] == wire.syntax
    assert archived.SOPInstanceUID == original.SOPInstanceUID
    with pytest.raises(KeyError):  # the wire's pixel digest is not kept
        archived.private_block(jpegxl.DIGEST_GROUP, jpegxl.DIGEST_CREATOR)
    # Nothing but the pixel encoding changes (PlanarConfiguration may be added by the encoder).
    changed = {e.tag for e in original if e.tag != 0x7FE00010 and archived.get(e.tag) != e}
    assert not changed and {e.tag for e in archived} - {e.tag for e in original} <= {0x00280006}
    if ts == jpegxl.JPEG_BASELINE:  # JPEG recompression: the original JPEG, bit for bit
        assert str(archived.file_meta.TransferSyntaxUID) == jpegxl.JPEG_BASELINE
        assert frames_bytes(archived) == frames_bytes(original)
    else:
        assert str(archived.file_meta.TransferSyntaxUID) in (
            "1.2.840.10008.1.2.4.80",
            "1.2.840.10008.1.2.4.90",
        )
        assert np.array_equal(archived.pixel_array, original.pixel_array)
        assert archived.pixel_array.dtype == original.pixel_array.dtype


@pytest.mark.testdata
def test_the_jpeg_film_is_restored_to_the_very_same_file_bytes(tmp_path):
    wire = on_the_wire(JPEG_FILM, tmp_path / "wire.dcm")
    assert wire is not None and wire.syntax == jpegxl.JPEGXL_JPEG_RECOMPRESSION
    original = pydicom.dcmread(JPEG_FILM)
    assert wire.pixel_bytes < 0.9 * len(original.PixelData)  # measured 0.84
    check_file(tmp_path / "wire.dcm", tmp_path / "clean.dcm")
    archived = pydicom.dcmread(tmp_path / "clean.dcm")
    assert archived.PixelData == original.PixelData  # fragments, offsets table and padding included
    assert archived.pixel_array.tobytes() == original.pixel_array.tobytes()


# --- Files the centre cannot verify ------------------------------------------------------------
def _wire_ct(tmp_path: Path, name: str = "wire.dcm", **tags) -> Path:
    ds = pydicom.dcmread(CT_SLICE)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = tags.pop("SOPInstanceUID", generate_uid())
    for key, value in tags.items():
        setattr(ds, key, value)
    (tmp_path / "src").mkdir(exist_ok=True)
    ds.save_as(tmp_path / "src" / name, enforce_file_format=True)
    assert on_the_wire(tmp_path / "src" / name, tmp_path / name, effort=1) is not None
    return tmp_path / name


def _damage(path: Path, at: float = 0.5, length: int = 16) -> Path:
    """Flip bits inside the codestream (the file's SHA-256 is what the agent announced: damage
    made before sending, as a faulty encoder or a hand-made file would)."""
    ds = pydicom.dcmread(path)
    stream = bytearray(frames_bytes(ds)[0])
    start = int(len(stream) * at)
    for i in range(start, start + length):
        stream[i] ^= 0x5A
    raw = bytearray(path.read_bytes())
    original = frames_bytes(ds)[0]
    where = bytes(raw).index(original)
    raw[where : where + len(original)] = stream
    path.write_bytes(bytes(raw))
    return path


def _refusal(path: Path, tmp_path: Path) -> Refused:
    with pytest.raises(Refused) as caught:
        check_file(path, tmp_path / "clean.dcm")
    assert not (tmp_path / "clean.dcm").exists()  # nothing half-checked is written
    return caught.value


@pytest.mark.testdata
@pytest.mark.parametrize("at", [0.01, 0.5, 0.98])
def test_a_damaged_codestream_is_refused_with_a_reason(tmp_path, at):
    refusal = _refusal(_damage(_wire_ct(tmp_path), at=at), tmp_path)
    assert refusal.code in ("jpegxl_corrupt", "jpegxl_mismatch")


def _pydicom_decodes_as(monkeypatch, pixels_of) -> None:
    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(pixels_of))


@pytest.mark.testdata
def test_the_re_encoded_ct_is_proven_by_its_codec_alone_and_else_by_pydicom(tmp_path, monkeypatch):
    from ingest import jpegxl_restore

    wire = _wire_ct(tmp_path)
    source = pydicom.dcmread(CT_SLICE).pixel_array  # signed 16-bit: read back through a view
    real_pixels = pydicom.dataset.Dataset.pixel_array
    real_fast = jpegxl_restore.fast_frames

    def no_pydicom(ds):
        raise AssertionError("pydicom asked to decode")

    # 1. CharLS's own samples prove the JPEG-LS: pydicom's decoding is never asked.
    _pydicom_decodes_as(monkeypatch, no_pydicom)
    check_file(wire, tmp_path / "fast.dcm")
    # 2. When they are not the verified pixels, pydicom's decoding decides: here it agrees.
    monkeypatch.setattr(jpegxl_restore, "fast_frames", lambda ds: [f ^ 1 for f in real_fast(ds)])
    _pydicom_decodes_as(monkeypatch, real_pixels.fget)
    check_file(wire, tmp_path / "judged.dcm")
    # 3. Both disagree with the JPEG XL's pixels: nothing is stored.
    _pydicom_decodes_as(monkeypatch, lambda ds: real_pixels.fget(ds) + 1)
    assert _refusal(wire, tmp_path).code == "jpegxl_unsupported"
    monkeypatch.undo()
    for name in ("fast.dcm", "judged.dcm"):
        assert np.array_equal(pydicom.dcmread(tmp_path / name).pixel_array, source)


@pytest.mark.testdata
def test_a_file_without_the_sites_pixel_digest_is_refused(tmp_path):
    wire = _wire_ct(tmp_path)
    ds = pydicom.dcmread(wire)
    assert jpegxl.take_digest(ds)
    ds.save_as(wire, enforce_file_format=True)
    refusal = _refusal(wire, tmp_path)
    assert refusal.code == "jpegxl_unsupported" and "digest" in refusal.params["detail"]


@pytest.mark.testdata
def test_a_codestream_of_another_size_than_the_header_says_is_refused_before_decoding(tmp_path):
    wire = _wire_ct(tmp_path)
    ds = pydicom.dcmread(wire)
    ds.Rows = 256  # the codestream says 512
    ds.save_as(wire, enforce_file_format=True)
    refusal = _refusal(wire, tmp_path)
    assert refusal.code == "jpegxl_mismatch" and "512x512" in refusal.params["field"]


@pytest.mark.testdata
def test_a_declared_allocation_bomb_is_refused_before_any_decoding(tmp_path):
    wire = _wire_ct(tmp_path)
    ds = pydicom.dcmread(wire)
    ds.Rows = ds.Columns = 65535
    ds.NumberOfFrames = 1000
    ds.save_as(wire, enforce_file_format=True)
    assert _refusal(wire, tmp_path).code == "too_large"


@pytest.mark.testdata
def test_a_missing_frame_and_lossy_jpeg_xl_are_refused(tmp_path):
    wire = _wire_ct(tmp_path)
    ds = pydicom.dcmread(wire)
    ds.NumberOfFrames = 2
    ds.save_as(wire, enforce_file_format=True)
    assert _refusal(wire, tmp_path).code in ("jpegxl_mismatch", "jpegxl_corrupt")
    ds = pydicom.dcmread(_wire_ct(tmp_path, "lossy.dcm"))
    ds.file_meta.TransferSyntaxUID = jpegxl.JPEGXL_ANY
    ds.save_as(tmp_path / "lossy.dcm", enforce_file_format=True)
    assert _refusal(tmp_path / "lossy.dcm", tmp_path).code == "jpegxl_unsupported"


def test_the_codes_have_sentences_in_french_and_english():
    from django.utils import translation

    from ingest.jpegxl_restore import JpegXLCode
    from ingest.verdicts import MESSAGES, describe

    for code in JpegXLCode:
        assert code in MESSAGES
        with translation.override("fr"):
            assert "JPEG XL" in describe(code, {"detail": "x", "field": "y"})


@pytest.mark.testdata
@pytest.mark.django_db
def test_through_the_real_ingest_the_archive_holds_the_source_pixels_and_refuses_the_damaged_one(
    tech_a, orthanc_server, tmp_path
):
    """A representative study end to end into a real Orthanc: a signed 16-bit CT slice, an 8-bit
    fluoroscopy, a 10-bit CR and the JPEG film, plus one damaged codestream: four stored, in a
    syntax Orthanc 1.10 reads, the fifth refused with a reason."""
    study = generate_uid()
    sources, wires = [], []
    for i, path in enumerate((CT_SLICE, RF_SHOULDER, REAL_OTHER / "CR_tibia_Fuji_WG04-RG3" / "RG3_UNCR.dcm")):
        ds = pydicom.dcmread(path)
        ds.StudyInstanceUID = study
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(tmp_path / f"src{i}.dcm", enforce_file_format=True)
        sources.append(tmp_path / f"src{i}.dcm")
    film = pydicom.dcmread(JPEG_FILM)
    film.StudyInstanceUID = study
    film.SOPInstanceUID = film.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    film.save_as(tmp_path / "src3.dcm", enforce_file_format=True)
    sources.append(tmp_path / "src3.dcm")
    for i, source in enumerate(sources):
        assert on_the_wire(source, tmp_path / f"wire{i}.dcm", effort=1) is not None
        wires.append(tmp_path / f"wire{i}.dcm")
    wires.append(_damage(_wire_ct(tmp_path, "damaged.dcm", StudyInstanceUID=study)))

    files = [p.open("rb") for p in wires]
    try:
        answer = api_client(tech_a).post(
            reverse("api_upload"),
            {"files": files, "priority": "routine", "indication": "Douleur, chute"},
            format="multipart",
        )
    finally:
        for f in files:
            f.close()
    assert answer.status_code == 201, answer.content[:500]
    verdicts = answer.json()["verdicts"]
    assert [v["outcome"] for v in verdicts] == ["stored"] * 4 + ["refused"], verdicts
    assert verdicts[4]["code"] == "jpegxl_corrupt" and "JPEG XL" in verdicts[4]["reason"]

    client = orthanc_server.client()
    assert Instance.objects.count() == 4
    for source in sources:
        original = pydicom.dcmread(source)
        inst = Instance.objects.get(sop_instance_uid=original.SOPInstanceUID)
        archived = pydicom.dcmread(io.BytesIO(client.instance_file(inst.orthanc_id)))
        if str(original.file_meta.TransferSyntaxUID) == jpegxl.JPEG_BASELINE:
            assert archived.PixelData == original.PixelData
        else:
            assert str(archived.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.80"
            assert np.array_equal(archived.pixel_array, original.pixel_array)
        # Orthanc itself decodes what it stores (its viewers, its /preview): JPEG XL never reaches it.
        assert client.instance_tags(inst.orthanc_id)["SOPInstanceUID"] == original.SOPInstanceUID


# --- Choosing what to send, and at which effort ------------------------------------------------
MEGAPIXELS_CR, BEST_CR, PROBE_CR = 3.77, 1_673_000, 1_658_000  # the hip CR: JPEG-LS, JPEG XL effort 3


def test_on_a_fast_link_the_probe_is_not_worth_its_time():
    assert not jpegxl.worth_probing(best_bytes=BEST_CR, megapixels=MEGAPIXELS_CR, link_bytes_per_s=10_000_000)
    assert jpegxl.worth_probing(best_bytes=BEST_CR, megapixels=MEGAPIXELS_CR, link_bytes_per_s=64_000)
    # A machine measured four times slower than the table probes less.
    assert not jpegxl.worth_probing(
        best_bytes=BEST_CR, megapixels=MEGAPIXELS_CR, link_bytes_per_s=640_000, speed=4.0
    )


def test_at_512_kbits_a_higher_effort_is_not_worth_it_but_on_gprs_it_is():
    at = {"best_bytes": BEST_CR, "probe_bytes": PROBE_CR, "probe_seconds": 0.6, "megapixels": MEGAPIXELS_CR}
    assert jpegxl.choose_effort(link_bytes_per_s=64_000, **at) == jpegxl.PROBE_EFFORT
    assert jpegxl.choose_effort(link_bytes_per_s=2_000, **at) == 7
    assert jpegxl.choose_effort(link_bytes_per_s=2_000, speed=10.0, **at) == 5  # a slow PC: 5 beats 7


def test_a_large_image_measures_its_own_gain_and_a_noisy_one_stays_at_the_probe():
    at = {"best_bytes": BEST_CR, "probe_bytes": PROBE_CR, "probe_seconds": 0.6, "megapixels": MEGAPIXELS_CR}
    # The hip CR: a tile shows effort 5 wins 15 % (the tables say 8 %): worth it at 128 kbit/s.
    hip = {"size_vs_probe": {5: 0.85, 7: 0.85}, "seconds_per_megapixel": {5: 0.9, 7: 2.5}}
    assert jpegxl.choose_effort(link_bytes_per_s=16_000, **at, **hip) == 5
    # The noisy cat DX: nothing to win, whatever the link.
    cat = {"size_vs_probe": {5: 0.997, 7: 1.001}, "seconds_per_megapixel": {5: 1.5, 7: 3.0}}
    assert jpegxl.choose_effort(link_bytes_per_s=2_000, **at, **cat) == jpegxl.PROBE_EFFORT
    assert jpegxl.worth_sampling(probe_bytes=PROBE_CR, megapixels=MEGAPIXELS_CR, link_bytes_per_s=16_000)
    assert not jpegxl.worth_sampling(probe_bytes=PROBE_CR, megapixels=MEGAPIXELS_CR, link_bytes_per_s=640_000)
    assert not jpegxl.worth_sampling(probe_bytes=100_000, megapixels=0.26, link_bytes_per_s=100)  # a CT slice


def test_an_agent_that_encodes_while_sending_affords_a_higher_effort():
    ct = {"best_bytes": 114_000, "probe_bytes": 101_000, "probe_seconds": 0.05, "megapixels": 0.26}
    assert jpegxl.choose_effort(link_bytes_per_s=64_000, **ct) == jpegxl.PROBE_EFFORT
    assert jpegxl.choose_effort(link_bytes_per_s=64_000, pipelined=True, **ct) == 7
    # Pipelined encoding costs only what outruns the link.
    assert jpegxl.encoding_cost(0.5, 64_000, 64_000, pipelined=True) == 0
    assert jpegxl.encoding_cost(1.5, 64_000, 64_000, pipelined=True) == pytest.approx(0.5)
    assert jpegxl.encoding_cost(1.5, 64_000, 64_000, pipelined=False) == 1.5


@pytest.mark.parametrize("rate", [500, 2_000, 8_000, 64_000, 250_000, 1_000_000])
@pytest.mark.parametrize("megapixels", [0.26, 3.1, 8.0])
def test_the_chosen_effort_never_costs_more_time_than_it_saves(rate, megapixels):
    best = int(megapixels * 1e6 * 0.6)  # ~ JPEG-LS of a 12-bit image
    probe = int(best * 0.95)
    probe_s = jpegxl.SECONDS_PER_MEGAPIXEL[jpegxl.PROBE_EFFORT] * megapixels
    effort = jpegxl.choose_effort(
        best_bytes=best,
        probe_bytes=probe,
        probe_seconds=probe_s,
        megapixels=megapixels,
        link_bytes_per_s=rate,
    )
    if effort != jpegxl.PROBE_EFFORT:
        saved_s = (probe - probe * jpegxl.SIZE_VS_PROBE[effort]) / rate  # beyond what the probe saved
        assert jpegxl.SECONDS_PER_MEGAPIXEL[effort] * megapixels < saved_s
    if jpegxl.worth_probing(best_bytes=best, megapixels=megapixels, link_bytes_per_s=rate):
        assert probe_s <= best * (1 - jpegxl.PRIOR_RATIO) / rate


def test_the_link_rate_comes_from_the_last_transfers():
    db = sqlite3.connect(":memory:")
    assert linkrate.estimate(db) is None  # nothing timed yet: the agent assumes the default
    linkrate.record(db, 1000, 0.5)  # too small to say anything about the rate
    assert linkrate.estimate(db) is None
    linkrate.record(db, 640_000, 10.0)
    linkrate.record(db, 1_280_000, 20.0)
    assert linkrate.estimate(db) == pytest.approx(64_000)
    for _ in range(linkrate.SAMPLES):
        linkrate.record(db, 1_000_000, 1.0)  # the link got faster: the old samples stop counting
    assert linkrate.estimate(db) == pytest.approx(1_000_000)


@pytest.mark.testdata
def test_a_site_can_turn_jpeg_xl_off(tmp_path):
    on = compress_for_link(CT_SLICE, tmp_path / "on.dcm", SitePolicy(link_bytes_per_s=64_000))
    off = compress_for_link(CT_SLICE, tmp_path / "off.dcm", SitePolicy(jpegxl=False))
    assert on.codec == "jpegxl" and on.size < off.size
    assert off.codec == "jpegls"
    assert str(pydicom.dcmread(tmp_path / "off.dcm").file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.80"
    assert parse_args(["--server", "x", "--token", "t", "--no-jpegxl"]).jpegxl is False
    assert parse_args(["--server", "x", "--token", "t"]).jpegxl is True


@pytest.mark.testdata
def test_a_large_noisy_image_is_not_probed_when_its_tile_shows_nothing_to_win(monkeypatch):
    monkeypatch.setattr(jpegxl._speed, "factor", 1.0)  # the table's speed, whatever ran before
    cat = pydicom.dcmread(REAL_OTHER / "DX_veterinary_cat_thorax_deid-data" / "cat.dcm")
    layout = jpegxl.PixelLayout.of(cat)
    assert jpegxl.tile_ratio(cat.pixel_array, layout) > 0.97  # JPEG XL wins nothing on its noise
    started = time.perf_counter()
    assert (
        jpegxl.encode_lossless(cat, best_bytes=6_500_000, link_bytes_per_s=64_000, best_is_jpegls=True)
        is None
    )
    assert time.perf_counter() - started < 2  # the probe alone took 3-5 s here
    hip = pydicom.dcmread(REAL_OTHER / "CR_hip_Fuji_WG04-RG2" / "RG2_JLSL.dcm")
    assert jpegxl.tile_ratio(hip.pixel_array, jpegxl.PixelLayout.of(hip)) < 0.9


@pytest.mark.testdata
def test_an_agent_encoding_while_sending_measures_effort_5_where_a_tile_misjudges_it(monkeypatch):
    import imagecodecs

    monkeypatch.setattr(jpegxl._speed, "factor", 1.0)
    cat = pydicom.dcmread(REAL_OTHER / "DX_veterinary_cat_thorax_deid-data" / "cat.dcm")
    jpegls = len(imagecodecs.jpegls_encode(cat.pixel_array))
    sent = jpegxl.encode_lossless(
        cat, best_bytes=jpegls, link_bytes_per_s=64_000, best_is_jpegls=True, pipelined=True
    )
    # Its tile says effort 5 wins nothing over the probe; the whole image at 5 wins about 1 %.
    assert sent is not None and sent.effort == 5
    assert sent.pixel_bytes < 0.992 * jpegls
    # Only where the link hides it with room to spare: the cat's 100 s at 512 kbit/s, not its
    # 6.5 s at 8 Mbit/s; a CT slice's 1.6 s at 512 kbit/s, not on a machine 4 times slower.
    free = jpegxl.free_to_try
    assert free(megapixels=8.0, sent_bytes=6_500_000, link_bytes_per_s=64_000, spent=1.0)
    assert not free(megapixels=8.0, sent_bytes=6_500_000, link_bytes_per_s=1_000_000, spent=1.0)
    assert free(megapixels=0.26, sent_bytes=100_000, link_bytes_per_s=64_000, spent=0.05)
    assert not free(megapixels=0.26, sent_bytes=100_000, link_bytes_per_s=64_000, spent=0.2, speed=4.0)


@pytest.mark.testdata
def test_on_a_fast_link_the_agent_sends_what_it_sent_before(tmp_path):
    fast = compress_for_link(CT_SLICE, tmp_path / "fast.dcm", SitePolicy(link_bytes_per_s=100_000_000))
    assert fast.codec == "jpegls"


def test_the_codestream_header_gives_the_image_size_without_decoding():
    import imagecodecs

    for rows, columns in [(1, 1), (8, 8), (17, 33), (512, 512), (480, 640), (1760, 2140), (2, 3000)]:
        pixels = (np.arange(rows * columns, dtype=np.uint16) % 1024).reshape(rows, columns)
        stream = bytes(imagecodecs.jpegxl_encode(pixels, lossless=True, effort=1))
        assert jpegxl.codestream_dimensions(stream) == (columns, rows)
    with pytest.raises(ValueError):
        jpegxl.codestream_dimensions(b"\xff\xd8\xff\xe0 a JPEG")
