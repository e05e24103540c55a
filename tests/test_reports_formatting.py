"""Names and dates as a report prints them, from DICOM PN and DA values."""

import pytest

from reports.labels import duration
from studies.formatting import age_on, dicom_date, person_name, sex_label


@pytest.mark.parametrize(
    ("pn", "expected"),
    [
        ("COULIBALY^Awa", "COULIBALY Awa"),
        ("Coulibaly^Awa^Maria", "COULIBALY Awa Maria"),
        ("Traoré^Moussa^^Dr", "Dr TRAORÉ Moussa"),
        ("DIARRA^Sekou^^^Jr", "DIARRA Sekou, Jr"),
        ("KEITA", "KEITA"),
        ("^Fanta", "Fanta"),
        ("  SIDIBE ^ Oumou  ", "SIDIBE Oumou"),
        ("Yamada^Tarou=山田^太郎=やまだ^たろう", "YAMADA Tarou"),
        ("", ""),
        ("^^^^", "^^^^".replace("^", " ").strip()),
    ],
)
def test_it_writes_a_person_name_family_first(pn, expected):
    assert person_name(pn) == expected


@pytest.mark.parametrize(
    ("da", "fr", "en"),
    [
        ("20220314", "14/03/2022", "14 Mar 2022"),
        ("1980.01.02", "02/01/1980", "2 Jan 1980"),
        ("20220230", "20220230", "20220230"),  # no such day: shown as it came, never dropped
        ("2022", "2022", "2022"),
        ("", "", ""),
    ],
)
def test_it_writes_a_dicom_date_for_people(da, fr, en):
    assert dicom_date(da) == fr
    assert dicom_date(da, "en") == en


def test_age_on_the_exam_date():
    assert age_on("19800315", "20220314") == 41
    assert age_on("19800314", "20220314") == 42
    assert age_on("", "20220314") is None
    assert age_on("20230101", "20220314") is None


def test_sex_and_durations():
    assert sex_label("F") == "féminin" and sex_label("M", "en") == "male" and sex_label("X") == "X"
    assert duration(14 * 60 + 5) == "14 min"
    assert duration(2 * 3600 + 5 * 60) == "2 h 05 min"
    assert duration(3 * 86400 + 4 * 3600) == "3 j 4 h"
