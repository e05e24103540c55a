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
