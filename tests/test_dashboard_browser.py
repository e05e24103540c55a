"""The dashboard in a real chromium: on a 360 px phone nothing overflows sideways, the page
breaks no CSP rule (the charts are inline SVG without style), the period form works without
JavaScript; screenshots for the closing note (test-artifacts/dashboard.png, dashboard-phone.png)."""

from __future__ import annotations

import pytest

from preread.models import ShadowModel, ShadowResult
from tests.helpers import chromium, log_in
from tests.paths import ARTIFACTS
from tests.test_dashboard import world  # noqa: F401  (fixtures: the constructed data)
from tests.test_dashboard_ai import cases  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1100, "height": 900}


def test_the_dashboard_on_a_phone_and_a_desktop(live_server, world, cases, admin_user):  # noqa: F811
    trial = ShadowModel.objects.create(name="seuil-0-5", threshold=0.5)
    for name in ("tp1", "fn1", "fp1", "tn1"):
        study = cases[name]
        ShadowResult.objects.create(
            shadow=trial, study=study, status="scored", urgency=study.prereads.get().urgency,
            flagged=study.prereads.get().urgency >= 0.5, model_name="pneumo", model_version="1.0",
        )  # fmt: skip
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        page = browser.new_page(viewport=PHONE, locale="fr-FR", java_script_enabled=False)
        blocked: list[str] = []
        page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        log_in(page, live_server.url, "admin_a", "pw-admin_a")
        page.goto(f"{live_server.url}/dashboard/")
        page.select_option("#id_days", "90")  # the GET form, without JavaScript
        page.click(".dash-filters button")
        page.wait_for_url("**/dashboard/?*days=90*")
        assert page.locator("#t-ai table").count() == 1 and page.locator("svg.chart").count() == 3
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"] + 1, f"the page is {width} px wide on a 360 px phone"
        page.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)

        wide = browser.new_page(viewport=DESKTOP, locale="fr-FR")
        wide.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
        log_in(wide, live_server.url, "admin_a", "pw-admin_a")
        wide.goto(f"{live_server.url}/dashboard/?days=30")
        assert "Tableau de bord du coordinateur" in wide.content()
        wide.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    assert blocked == []
