"""French first, English second."""

import pytest


@pytest.mark.django_db
def test_pages_are_french_by_default_and_english_on_request(client):
    french = client.get("/accounts/login/")
    assert "Se connecter" in french.content.decode()
    english = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Log in" in english.content.decode()
    assert "Se connecter" not in english.content.decode()


@pytest.mark.django_db
def test_pages_are_small_and_compressed(client, tech_a):
    client.force_login(tech_a)
    page = client.get("/studies/send/", HTTP_ACCEPT_ENCODING="gzip")
    assert page.status_code == 200
    assert page["Content-Encoding"] == "gzip"
    assert len(page.content) < 60_000


def test_the_english_catalogue_is_complete():
    """The .po file is the one source of English: every message translated, none fuzzy (a fuzzy
    entry is ignored at run time, so the page would show French)."""
    from tests.paths import REPO

    text = (REPO / "platform/joliba/locale/en/LC_MESSAGES/django.po").read_text(encoding="utf-8")
    entries = [e for e in text.split("\n\n") if "\nmsgid " in "\n" + e or e.startswith("msgid ")]
    assert len(entries) > 200
    fuzzy = [e for e in entries if "#, fuzzy" in e and 'msgid ""\nmsgstr ""\n"Project' not in e]
    assert not fuzzy, fuzzy[:3]
    untranslated = [e for e in entries if e.rstrip().endswith('msgstr ""') and 'msgid ""' not in e]
    assert not untranslated, untranslated[:3]
