"""The checker's fast pixel decoding (ingest.pixel_decode) gives pydicom's verdict, faster.

Files from pydicom's own test set and pydicom-data (installed with the test extra): always here.
Each is checked intact, then with its first frame's codestream cut in half (refused as truncated:
its end marker is gone), with bytes flipped, with a run of zeros and replaced by noise; the
checker's verdict with the fast path must be the verdict pydicom's decoding alone gives.
"""

from __future__ import annotations

import random
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, generate_frames

from ingest import dicom_check, pixel_decode

COMPRESSED = [
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "emri_small_jpeg_2k_lossless.dcm",  # JPEG 2000 lossless, 10 frames
    "JPEG2000.dcm",  # JPEG 2000
    "SC_rgb_jpeg_dcmtk.dcm",  # JPEG baseline, colour: pydicom's decoder only
    "JPEG-LL.dcm",  # JPEG lossless: pydicom's decoder only
]


def _verdict(path, out) -> str:
    try:
        dicom_check.check_file(path, out)
        return "ok"
    except dicom_check.Refused as refused:
        return refused.code


def _damaged(source, tmp_path, kind: str, rng: random.Random):
    ds = pydicom.dcmread(source)
    count = int(ds.get("NumberOfFrames") or 1)
    frames = list(generate_frames(ds.PixelData, number_of_frames=count))
    first = bytearray(frames[0])
    if kind == "cut":
        first = first[: len(first) // 2]
    elif kind == "flipped":
        for _ in range(20):
            first[rng.randrange(len(first))] ^= 0xFF
    elif kind == "zeros":
        first[len(first) // 3 : len(first) // 3 + 200] = bytes(200)
    else:
        first = bytearray(rng.randbytes(len(first)))
    frames[0] = bytes(first)
    ds.PixelData = encapsulate(frames, has_bot=count > 1)
    path = tmp_path / f"{kind}-{source.name}"
    ds.save_as(path)
    return path


@pytest.mark.parametrize("name", COMPRESSED)
def test_a_damaged_codestream_gets_the_verdict_pydicom_gives(name, tmp_path, monkeypatch):
    source = Path(get_testdata_file(name))
    rng = random.Random(name)
    cases = [source] + [_damaged(source, tmp_path, k, rng) for k in ("cut", "flipped", "zeros", "noise")]
    fast = [_verdict(p, tmp_path / "fast.dcm") for p in cases]
    monkeypatch.setattr(pixel_decode, "decodes_fast", lambda ds: False)
    pydicom_only = [_verdict(p, tmp_path / "slow.dcm") for p in cases]
    assert fast == pydicom_only
    assert fast[0] == "ok" and fast[4] != "ok"  # intact: accepted; noise: refused


@pytest.mark.parametrize("name", COMPRESSED[:3])
def test_the_syntaxes_sites_send_decode_on_the_fast_path(name):
    assert pixel_decode.decodes_fast(pydicom.dcmread(get_testdata_file(name)))


@pytest.mark.parametrize("name", COMPRESSED[3:])
def test_jpeg_stays_with_pydicom_whose_decoder_refuses_flipped_bytes(name):
    # libjpeg-turbo decoded these streams with 20 bytes flipped; pydicom's decoder refuses them.
    assert not pixel_decode.decodes_fast(pydicom.dcmread(get_testdata_file(name)))


@pytest.mark.parametrize(
    ("name", "code"),
    [
        # CharLS and pydicom's JPEG decoders decode these with the frame's second half missing
        # (a partial image): the missing end marker refuses them.
        ("MR_small_jpeg_ls_lossless.dcm", "truncated"),
        ("SC_rgb_jpeg_dcmtk.dcm", "truncated"),
        ("JPEG-LL.dcm", "truncated"),
        # OpenJPEG refuses these cuts itself.
        ("emri_small_jpeg_2k_lossless.dcm", "undecodable"),
        ("JPEG2000.dcm", "undecodable"),
    ],
)
def test_a_codestream_cut_short_is_never_accepted(name, code, tmp_path):
    source = Path(get_testdata_file(name))
    cut = _damaged(source, tmp_path, "cut", random.Random(name))
    with pytest.raises(dicom_check.Refused) as refused:
        dicom_check.check_file(cut, tmp_path / "out.dcm")
    assert refused.value.code == code
    if code == "truncated":
        assert refused.value.params == {"frame": 1}


@pytest.mark.parametrize("tail", [b"", b"\x00", b"\xff", b"\x00\xd3\x0c\x99"])
def test_bytes_after_the_end_marker_are_no_cut(tail, tmp_path):
    # Writers pad after EOI/EOC, and the real 96-frame XA leaves up to four bytes more.
    ds = pydicom.dcmread(get_testdata_file("MR_small_jpeg_ls_lossless.dcm"))
    (frame,) = generate_frames(ds.PixelData, number_of_frames=1)
    stream = frame[: frame.rindex(pixel_decode.END_MARKER) + 2]
    ds.PixelData = encapsulate([stream + tail])
    path = tmp_path / "tail.dcm"
    ds.save_as(path)
    assert pixel_decode.first_cut_frame(ds) is None
    assert _verdict(path, tmp_path / "out.dcm") == "ok"
    ds.PixelData = encapsulate([stream[:-2] + tail])  # the same without its marker
    assert pixel_decode.first_cut_frame(ds) == 1
