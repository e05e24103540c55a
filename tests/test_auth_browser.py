"""A radiologist signs in on a phone-sized screen (360 px) in a real chromium: the password, then
the TOTP code her phone computes (tests.helpers.totp_code, django_otp.oath), and reaches the
worklist; the code page fits the screen. Screenshots are kept as test artefacts."""

import pytest

from tests.helpers import chromium, totp_code
from tests.paths import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 740}


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_radiologist_signs_in_with_totp_on_a_360px_phone(live_server, radiologist):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        phone = browser.new_context(locale="fr-FR", viewport=PHONE).new_page()
        phone.goto(f"{live_server.url}/worklist/")
        assert "/accounts/login/" in phone.url
        phone.fill("#id_auth-username", "dr_a")
        phone.fill("#id_auth-password", "pw-dr_a")
        phone.click("button[type=submit]")
        phone.wait_for_selector("#id_token-otp_token")
        assert "code à 6 chiffres" in phone.content() and _fits(phone)
        phone.screenshot(path=str(ARTIFACTS / "auth-totp-step-360px.png"), full_page=True)
        phone.fill(
            "#id_token-otp_token",
            "000000" if totp_code(radiologist.totpdevice_set.get()) != "000000" else "1",
        )
        phone.click("button[type=submit]")
        phone.wait_for_selector(".errorlist, .msg.error")
        assert "/accounts/login/" in phone.url and "Liste de travail" not in phone.content()  # nothing opens
        phone.wait_for_timeout(1100)  # django-otp's throttle after a wrong code
        phone.fill("#id_token-otp_token", totp_code(radiologist.totpdevice_set.get()))
        phone.click("button[type=submit]")
        phone.wait_for_selector("h1:has-text('Liste de travail')")
        assert phone.url.endswith("/worklist/") and _fits(phone)
        phone.screenshot(path=str(ARTIFACTS / "auth-worklist-after-totp-360px.png"), full_page=True)
