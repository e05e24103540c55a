"""Where the test images live: the shared folder when it is there, else a portable set.

The shared images (real radiographs, CT series, the edge-case corpus) live in `../shared/testdata/`
beside the checkout, or wherever JOLIBA_TESTDATA points; they are never copied into the repository.
Without them (a fresh clone), TESTDATA points at a *portable set* that conftest builds at session
start (tests/portable.py) in the same layout, holding only what any machine can have: byte-identical
copies of the shared files that pydicom and pydicom-data ship, files derived from those exactly as
the shared ones were, and labelled stand-ins (a real CT slice made into a series, a real chest
radiograph made into the shape of the shared one). A test that needs a file the portable set lacks
is marked `@pytest.mark.testdata` (or calls `testdata_file()`): it is skipped, with a reason, when
the shared folder is absent.
"""

import os
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_TESTDATA = Path(os.environ.get("JOLIBA_TESTDATA") or REPO.parent / "shared" / "testdata")
HAVE_SHARED_TESTDATA = SHARED_TESTDATA.is_dir()
PORTABLE_TESTDATA = REPO / ".testdata-portable"
TESTDATA = SHARED_TESTDATA if HAVE_SHARED_TESTDATA else PORTABLE_TESTDATA

EDGE_CASES = TESTDATA / "edge_cases"
REAL_OTHER = TESTDATA / "real_other"
REAL_CXR = TESTDATA / "real_cxr"
CT_HEAD = REAL_OTHER / "CT_head_series_GE_gantry-tilt_dcm_qa_ct"  # 01.dcm … 28.dcm, one study
RF_SHOULDER = REAL_OTHER / "RF_shoulder_orthanc" / "KarstenHilbertRF.dcm"
TIBIA = REAL_OTHER / "CR_tibia_Fuji_WG04-RG3" / "RG3_UNCR.dcm"  # 1760², 10 bits in 16, uncompressed
ARTIFACTS = Path(os.environ.get("JOLIBA_TEST_ARTIFACTS", REPO / "test-artifacts"))

# Per-test skip reasons end with NOT_FOUND; the session's last line adds WHERE_THEY_GO once.
NOT_FOUND = f"shared test images not found at {SHARED_TESTDATA}"
WHERE_THEY_GO = "put them at ../shared/testdata beside the checkout, or set JOLIBA_TESTDATA=/path/to/testdata"


def testdata_file(relative: str) -> Path:
    """TESTDATA / relative, for use inside a test or fixture: skips the test when the file is in
    neither the shared folder nor the portable set."""
    return required(TESTDATA / relative)


testdata_file.__test__ = False  # type: ignore[attr-defined]  # not a test, whatever its name


def required(path: Path) -> Path:
    """`path` (a test image under TESTDATA), or the test skipped, naming the file it needs."""
    if not path.exists():
        import pytest

        pytest.skip(
            f"needs {path.relative_to(TESTDATA) if path.is_relative_to(TESTDATA) else path} ({NOT_FOUND})"
        )
    return path


# --- The portable set --------------------------------------------------------------------------
# Files of the shared folder that pydicom (its wheel's test files) or pydicom-data (PyPI, installed
# with the `test` extra, no download at run time) ship byte for byte, under the same names.
PACKAGED = {
    **{
        f"edge_cases/pydicom/{name}": name
        for name in (
            "ExplVR_BigEnd.dcm",
            "ExplVR_BigEndNoMeta.dcm",
            "GDCMJ2K_TextGBR.dcm",
            "J2K_pixelrep_mismatch.dcm",
            "JPEG-lossy.dcm",
            "JPEG2000-embedded-sequence-delimiter.dcm",
            "JPEGLSNearLossless_16.dcm",
            "JPGExtended.dcm",
            "MR_small_RLE.dcm",
            "MR_small_bigendian.dcm",
            "MR_small_jp2klossless.dcm",
            "MR_small_jpeg_ls_lossless.dcm",
            "MR_truncated.dcm",
            "SC_jpeg_no_color_transform.dcm",
            "SC_rgb_jpeg_dcmtk.dcm",
            "SC_rgb_rle.dcm",
            "SC_rgb_small_odd_big_endian.dcm",
            "UN_sequence.dcm",
            "badVR.dcm",
            "empty_charset_LEI.dcm",
            "image_dfl.dcm",
            "meta_missing_tsyntax.dcm",
            "nested_priv_SQ.dcm",
            "no_meta.dcm",
            "no_meta_group_length.dcm",
            "priv_SQ.dcm",
            "rtplan_truncated.dcm",
        )
    },
    **{
        f"edge_cases/pydicom-data/{name}": name
        for name in (
            "JPEG-LL.dcm",
            "OBXXXX1A_rle.dcm",
            "bad_sequence.dcm",
            "eCT_Supplemental.dcm",
            "emri_small_jpeg_2k_lossless_too_short.dcm",
            "explicit_VR-UN.dcm",
            "gdcm-US-ALOKA-16_big.dcm",
        )
    },
    "real_other/CR_tibia_Fuji_WG04-RG3/RG3_UNCR.dcm": "RG3_UNCR.dcm",
    "real_other/CR_tibia_Fuji_WG04-RG3/RG3_J2KR.dcm": "RG3_J2KR.dcm",
    "real_other/CR_tibia_Fuji_WG04-RG3/RG3_J2KI.dcm": "RG3_J2KI.dcm",
}
# Shared files made from packaged ones, the same way (MANIFEST.md of the shared folder): same bytes.
TRUNCATED = {
    "edge_cases/derived/RG3_UNCR_truncated60pct.dcm": ("real_other/CR_tibia_Fuji_WG04-RG3/RG3_UNCR.dcm", 0.6),
    "edge_cases/derived/RG3_J2KR_truncated70pct.dcm": ("real_other/CR_tibia_Fuji_WG04-RG3/RG3_J2KR.dcm", 0.7),
}
# Stand-ins: NOT the shared files, real images of the same kind, under names of their own. The
# constants below pick the shared file when there is one, the stand-in otherwise.
STANDINS = PORTABLE_TESTDATA / "standins"
PORTABLE_VERSION = "2"

if HAVE_SHARED_TESTDATA:
    CT_SERIES = CT_HEAD
    CHEST_PA_1024 = (
        REAL_CXR
        / "CR_chest_PA_SIIM-ACR_NIH-CXR14"
        / "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm"
    )
    FILM_PHOTO = REAL_CXR / "pediatric_labelled" / "normal" / "NORMAL2-IM-1427-0001.jpeg"
else:
    # 28 copies of the real 512² head CT slice pydicom-data ships (693_UNCR.dcm), one study.
    CT_SERIES = CT_HEAD = STANDINS / "ct_series"
    # pydicom-data's real chest PA (NEMA WG04 RG1, 15-bit CR) as the shared one is: 1024², 8-bit,
    # JPEG baseline Secondary Capture, Modality CR, no window tags.
    CHEST_PA_1024 = STANDINS / "chest_pa_1024.dcm"
    FILM_PHOTO = STANDINS / "chest_film.jpeg"  # the same chest as a JPEG, as a phone photo arrives


def build_portable_testdata(root: Path = PORTABLE_TESTDATA) -> Path:
    """Build the portable set once (idempotent, safe if two sessions race); returns its folder."""
    import shutil
    import tempfile

    stamp = root / "MANIFEST.md"
    if stamp.exists() and stamp.read_text().startswith(f"<!-- portable set v{PORTABLE_VERSION} -->"):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".testdata-portable-", dir=root.parent))
    work.chmod(0o755)
    try:
        rows = _build_into(work)
        (work / "MANIFEST.md").write_text(
            f"<!-- portable set v{PORTABLE_VERSION} -->\n# Portable test images\n\nBuilt by "
            "tests/paths.py when the shared folder is absent. Same layout as the shared folder for "
            "the files that are byte-identical to it; stand-ins under standins/.\n\n"
            "| path | what it is |\n|---|---|\n" + "".join(f"| {p} | {what} |\n" for p, what in rows)
        )
        if root.exists():
            shutil.rmtree(root)
        try:
            work.rename(root)
        except OSError:  # another session won the race with the same content
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root


def _build_into(work: Path) -> list[tuple[str, str]]:
    import shutil

    from pydicom.data import get_testdata_file

    rows = []
    for relative, name in PACKAGED.items():
        found = get_testdata_file(name, download=False)  # never fetched from the network
        if found is None:
            continue  # pydicom-data not installed: the tests that need it skip or fail loudly
        (work / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(found, work / relative)
        source = "pydicom-data" if "data_store" in str(found) else "pydicom"
        rows.append((relative, f"identical to the shared file: {name} from {source}"))
    for relative, (source, fraction) in TRUNCATED.items():
        if (work / source).exists():
            data = (work / source).read_bytes()
            (work / relative).parent.mkdir(parents=True, exist_ok=True)
            (work / relative).write_bytes(data[: int(len(data) * fraction)])
            rows.append((relative, f"identical to the shared file: first {fraction:.0%} of {source}"))
    standins = work / STANDINS.relative_to(PORTABLE_TESTDATA)
    standins.mkdir(parents=True, exist_ok=True)
    rows += _build_ct_series(standins / "ct_series")
    rows += _build_chest(standins / "chest_pa_1024.dcm", standins / "chest_film.jpeg")
    return [(str(Path(p).relative_to(work)) if Path(p).is_absolute() else p, what) for p, what in rows]


def _deterministic_uid(*parts: str) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["joliba-portable-testdata", *parts])


def _build_ct_series(folder: Path) -> list[tuple[str, str]]:
    import pydicom
    from pydicom.data import get_testdata_file

    source = get_testdata_file("693_UNCR.dcm", download=False)
    if source is None:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    study, series = _deterministic_uid("ct", "study"), _deterministic_uid("ct", "series")
    for number in range(1, 29):
        ds = pydicom.dcmread(source)
        for element in list(ds):
            if element.tag.element == 0 and element.tag.group != 2:
                del ds[element.tag]  # group lengths go stale once UIDs change; they are optional
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _deterministic_uid("ct", str(number))
        ds.InstanceNumber = number
        z = 5.0 * (number - 1)
        ds.ImagePositionPatient = [-122.5, -112.4, z]
        ds.SliceLocation = z
        ds.StudyDescription = "Stand-in: pydicom-data 693_UNCR.dcm x 28"
        ds.save_as(folder / f"{number:02d}.dcm", enforce_file_format=True)
    return [
        (
            str(folder),
            "stand-in for the shared head CT series: 28 copies of pydicom-data's "
            "693_UNCR.dcm (a real 512² head CT slice, CQ500), one study, one series",
        )
    ]


def _build_chest(dicom_path: Path, jpeg_path: Path) -> list[tuple[str, str]]:
    import io

    import numpy as np
    import pydicom
    from PIL import Image
    from pydicom.data import get_testdata_file

    from tests.helpers import wrap_jpeg_as_dicom

    source = get_testdata_file("RG1_UNCR.dcm", download=False)
    if source is None:
        return []
    ds = pydicom.dcmread(source)
    pixels = ds.pixel_array.astype(np.float64)
    side = min(pixels.shape)  # centre square, then 1024²
    top, left = (pixels.shape[0] - side) // 2, (pixels.shape[1] - side) // 2
    pixels = pixels[top : top + side, left : left + side]
    low, high = np.percentile(pixels, [0.5, 99.5])
    grey = 1.0 - np.clip((pixels - low) / (high - low), 0.0, 1.0)  # MONOCHROME1: low values are white
    image = Image.fromarray((grey * 255).round().astype(np.uint8), "L").resize((1024, 1024), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    jpeg_path.write_bytes(buffer.getvalue())
    dicom_path.write_bytes(
        wrap_jpeg_as_dicom(
            jpeg_path,
            ConversionType="WSD",
            PatientSex="F",
            PatientAge="064Y",
            PatientID="9RG1",
            PatientName="CompressedSamples^RG1",
            StudyInstanceUID=_deterministic_uid("cxr", "study"),
            SeriesInstanceUID=_deterministic_uid("cxr", "series"),
            SOPInstanceUID=_deterministic_uid("cxr", "sop"),
            StudyDescription="Stand-in: pydicom-data RG1_UNCR.dcm, 1024² 8-bit JPEG",
        )
    )
    return [
        (
            str(dicom_path),
            "stand-in for the shared 1024² chest PA: pydicom-data's RG1_UNCR.dcm (real "
            "chest PA CR, NEMA WG04), centre square, 1024², 8-bit, JPEG baseline SC",
        ),
        (str(jpeg_path), "stand-in for the shared film photo: the same chest as a JPEG"),
    ]


def available(names: Iterable[str], folder: Path) -> list[str]:
    """Which of `names` (files under `folder`) a corpus test should send: all of them with the shared
    folder (one missing then fails the test), those the portable set has without it."""
    names = list(names)
    return names if HAVE_SHARED_TESTDATA else [n for n in names if (folder / n).is_file()]
