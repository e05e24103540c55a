"""The second factor (TOTP, backup codes): a radiologist or admin signed in with the password alone
opens no study, image, viewer data or API route until the code is entered; enrolment with a real
TOTP code; backup codes work once; technicians are not asked; JOLIBA_2FA_REQUIRED off opens all."""

from __future__ import annotations

import base64
import datetime
import inspect
import time
from binascii import unhexlify

import pytest
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.api import record
from tests.alerts_support import new_study
from tests.auth_support import (
    is_verified,
    post_backup_code,
    post_code,
    post_password,
    shows_code_step,
    signed_in_user_id,
)
from tests.helpers import login_verified, totp_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def audit_log(monkeypatch):
    """The second-factor events the audit trail is told to record (accounts announces them,
    audit.receivers records them; here, the calls; sign-ins and sign-outs left out)."""
    calls: list[tuple[str, dict]] = []

    def spy(action, **kwargs):
        inspect.signature(record).bind(action, **kwargs)  # what the real one would accept
        if action.startswith("otp."):
            calls.append((action, kwargs))

    monkeypatch.setattr("audit.receivers.record", spy)
    return calls


def _patient_urls(study):
    return {
        "study page": reverse("study_detail", args=[study.pk]),
        "image": reverse("instance_preview", args=[study.pk, 1]),
        "viewer data": reverse("viewer_manifest", args=[study.pk]),
        "worklist": reverse("worklist"),
        "study list": reverse("study_list"),
    }


def test_it_keeps_a_radiologist_without_the_second_factor_out_of_every_patient_page(
    client, site_a, radiologist
):
    study = new_study(site_a)
    client.force_login(radiologist, verified=False)
    for what, url in _patient_urls(study).items():
        answer = client.get(url)
        assert answer.status_code == 302, what
        assert answer["Location"].startswith(reverse("verify_second_factor") + "?next="), what
    api = client.get(reverse("api_study", args=[study.pk]))
    assert api.status_code == 403
    assert api.json()["code"] == "second_factor_required"
    assert "Double authentification requise" in api.json()["detail"]
    pdf = client.get(reverse("api_report_pdf", args=[study.pk]))
    assert pdf.status_code == 403 and pdf.json()["code"] == "second_factor_required"


def test_it_opens_them_once_a_real_totp_code_is_entered(client, settings, site_a, radiologist, audit_log):
    settings.OTP_TOTP_THROTTLE_FACTOR = 60  # a wrong code: 60 s before the next try (1 s by default)
    study = new_study(site_a)
    client.force_login(radiologist, verified=False)
    device = TOTPDevice.objects.get(user=radiologist)
    wrong = f"{(int(totp_code(device)) + 1) % 1_000_000:06d}"
    refused = client.post(reverse("verify_second_factor"), {"code": wrong, "next": "/"})
    assert refused.status_code == 200 and "Code incorrect." in refused.content.decode()
    assert [a for a, _ in audit_log] == ["otp.failed"]
    assert client.get(reverse("study_detail", args=[study.pk])).status_code == 302

    next_url = reverse("study_detail", args=[study.pk])
    code = totp(unhexlify(device.key), step=device.step, drift=device.drift)  # the phone's code now
    # django-otp throttles the device after a wrong code (the factor, doubling with each failure).
    hurried = client.post(reverse("verify_second_factor"), {"code": f"{code:06d}", "next": next_url})
    assert "Trop de codes erronés" in hurried.content.decode() and not is_verified(client)
    device.refresh_from_db()  # a minute later (time travel: the failure moved back 61 s)
    device.throttling_failure_timestamp -= datetime.timedelta(seconds=61)
    device.save()
    answer = client.post(reverse("verify_second_factor"), {"code": f"{code:06d}", "next": next_url})
    assert answer.status_code == 302 and answer["Location"] == next_url
    assert client.get(next_url).status_code == 200
    assert client.get(reverse("api_study", args=[study.pk])).status_code == 200
    # The image view is reached (the archive is off in this test: 404 from the view, not the gate).
    assert client.get(reverse("instance_preview", args=[study.pk, 1])).status_code == 404


def test_the_full_login_asks_the_code_and_refuses_a_wrong_one(client, site_a, radiologist, audit_log):
    first = post_password(client, "dr_a", "pw-dr_a")
    assert shows_code_step(first) and signed_in_user_id(client) is None
    assert "code à 6 chiffres" in first.content.decode()
    wrong = post_code(
        client, "000000" if totp_code(radiologist.totpdevice_set.get()) != "000000" else "111111"
    )
    assert shows_code_step(wrong) and signed_in_user_id(client) is None
    assert [(a, k["actor"], k["outcome"]) for a, k in audit_log] == [("otp.failed", radiologist, "failed")]
    assert audit_log[0][1]["request"] is not None  # the client address goes on the record
    time.sleep(1.1)  # the throttle after a wrong code
    done = post_code(client, totp_code(radiologist.totpdevice_set.get()))
    assert done.status_code == 302
    assert signed_in_user_id(client) == radiologist.pk and is_verified(client)
    assert client.get(reverse("worklist")).status_code == 200


def test_a_technician_signs_in_with_the_password_alone(client, site_a, tech_a):
    answer = post_password(client, "tech_a", "pw-tech_a")
    assert answer.status_code == 302 and signed_in_user_id(client) == tech_a.pk
    assert not is_verified(client)
    assert client.get(reverse("study_list")).status_code == 200


def test_a_radiologist_without_a_phone_is_sent_to_enrol_and_enrols_with_a_real_code(
    client, django_user_model, site_a, audit_log
):
    newcomer = django_user_model.objects.create_user(
        username="dr_new", password="pw-dr_new", role="radiologist"
    )
    answer = post_password(client, "dr_new", "pw-dr_new")
    assert answer.status_code == 302 and signed_in_user_id(client) == newcomer.pk
    gate = client.get(reverse("study_list"))
    assert gate.status_code == 302 and gate["Location"].startswith(reverse("two_factor:setup"))

    setup = reverse("two_factor:setup")
    welcome = client.get(setup)
    assert welcome.status_code == 200 and "application d'authentification" in welcome.content.decode()
    step = client.post(setup, {"setup_view-current_step": "welcome"})
    assert step.status_code == 200 and "saisissez cette clé à la main" in step.content.decode()
    key = client.session["django_two_factor-qr_secret_key"]  # the key the page shows, base32
    assert key.replace(" ", "") in step.content.decode().replace(" ", "")
    assert client.get(reverse("two_factor:qr"))["Content-Type"].startswith("image/svg+xml")
    code = totp(base64.b32decode(key))
    done = client.post(setup, {"setup_view-current_step": "generator", "generator-token": f"{code:06d}"})
    assert done.status_code == 302 and done["Location"].startswith(reverse("two_factor:backup_tokens"))
    assert TOTPDevice.objects.filter(user=newcomer, confirmed=True).count() == 1
    assert is_verified(client)
    assert [a for a, _ in audit_log] == ["otp.enrolled"]
    assert client.get(reverse("study_list")).status_code == 200


def test_backup_codes_work_once(client, site_a, radiologist, audit_log):
    login_verified(client, radiologist)
    page = client.post(reverse("two_factor:backup_tokens"))
    assert page.status_code == 302
    codes = [t.token for t in StaticDevice.objects.get(user=radiologist).token_set.all()]
    assert len(codes) == 10
    shown = client.get(page["Location"]).content.decode()
    assert all(c in shown for c in codes) and "Codes de secours" in shown
    client.logout()

    post_password(client, "dr_a", "pw-dr_a")
    answer = post_backup_code(client, codes[0])
    assert answer.status_code == 302 and is_verified(client)
    client.logout()

    post_password(client, "dr_a", "pw-dr_a")
    again = post_backup_code(client, codes[0])
    assert again.status_code == 200 and signed_in_user_id(client) is None
    # On the verification page too, a used code is refused and an unused one accepted.
    client.force_login(radiologist, verified=False)
    assert client.post(reverse("verify_second_factor"), {"code": codes[0]}).status_code == 200
    assert not is_verified(client)
    time.sleep(2.1)  # two wrong codes: the backup device is throttled for 2 s
    assert client.post(reverse("verify_second_factor"), {"code": codes[1].upper()}).status_code == 302
    assert is_verified(client)


def test_the_admin_site_asks_the_second_factor_of_every_staff_user(client, admin_user, tech_a):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user, verified=False)
    gate = client.get("/admin/")
    assert gate.status_code == 302 and gate["Location"].startswith(reverse("verify_second_factor"))
    client.force_login(admin_user)
    assert client.get("/admin/").status_code == 200

    tech_a.is_staff = True
    tech_a.save()
    client.force_login(tech_a, verified=False)
    gate = client.get("/admin/")
    assert gate.status_code == 302 and gate["Location"].startswith(reverse("two_factor:setup"))


def test_the_admin_removes_a_lost_phone_on_the_record(client, admin_user, radiologist, audit_log):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    answer = client.post(
        reverse("admin:accounts_user_changelist"),
        {"action": "remove_second_factor", "_selected_action": [radiologist.pk]},
    )
    assert answer.status_code == 302
    assert not TOTPDevice.objects.filter(user=radiologist).exists()
    assert ("otp.removed", radiologist) in [(a, k.get("obj")) for a, k in audit_log]


def test_with_the_requirement_off_a_password_alone_opens_everything(client, settings, site_a, radiologist):
    settings.JOLIBA_2FA_REQUIRED = False
    study = new_study(site_a)
    client.force_login(radiologist, verified=False)
    assert client.get(reverse("study_detail", args=[study.pk])).status_code == 200
    assert client.get(reverse("api_study", args=[study.pk])).status_code == 200


def test_machine_tokens_are_not_asked_a_second_factor(site_a, radiologist):
    from tests.helpers import api_client

    study = new_study(site_a)
    assert api_client(radiologist).get(reverse("api_study", args=[study.pk])).status_code == 200


def test_the_admin_never_shows_a_totp_key(client, admin_user, radiologist):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    device = TOTPDevice.objects.get(user=radiologist)
    page = client.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))
    assert page.status_code == 200
    assert device.key not in page.content.decode()
    assert base64.b32encode(unhexlify(device.key)).decode() not in page.content.decode()
