"""Every code the pre-read can store has its sentence in French and in English."""

from django.utils import translation

from inference.reasons import MESSAGES_EN
from preread.reasons import MESSAGES, render


def test_every_library_code_has_a_platform_sentence_with_the_same_parameters():
    import re

    placeholders = re.compile(r"%\((\w+)\)s")
    for code, english in MESSAGES_EN.items():
        assert code in MESSAGES, code
        assert set(placeholders.findall(str(MESSAGES[code]))) == set(placeholders.findall(english)), code


def test_a_reason_is_rendered_in_the_readers_language():
    params = {"body_part": "HAND", "allowed": "CHEST"}
    with translation.override("fr"):
        assert render("wrong_body_part", params) == "Région HAND hors du champ du modèle (CHEST)."
    with translation.override("en"):
        assert render("wrong_body_part", params) == "Body part HAND is outside the model's scope (CHEST)."
        assert render("clipped", {"percent": 12}) == "12 % of pixels saturated: burnt-out areas, detail lost."
    assert render("no_such_code") == "no_such_code"
