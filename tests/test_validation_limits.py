"""The validator's child process is bounded: a file that blows its limits is refused alone."""

from ingest.validation import Limits, check_files
from ingest.verdicts import MESSAGES
from tests.paths import CT_HEAD, REAL_OTHER

CAT = REAL_OTHER / "DX_veterinary_cat_thorax_deid-data" / "cat.dcm"


def test_a_file_over_the_memory_limit_is_refused_and_the_others_still_get_verdicts(tmp_path):
    tight = Limits(memory_bytes=230 * 1024**2, cpu_seconds=20)
    small = CT_HEAD / "01.dcm"
    verdicts = check_files([small, CAT, small], tmp_path, tight)
    assert [v.ok for v in verdicts] == [True, False, True]
    assert verdicts[1].code in ("exceeded_limits", "too_large", "undecodable")
    assert verdicts[1].code in MESSAGES


def test_a_file_over_the_size_limit_is_refused_without_being_parsed(tmp_path):
    verdicts = check_files([CAT], tmp_path, Limits(max_file_bytes=1024))
    assert verdicts[0].code == "file_too_large" and not verdicts[0].ok
