"""Logs carry no patient identifiers: the filter on every handler (health/logs.py), and a whole
ingest, pre-read, renditions and signed report logged at DEBUG through the production handler."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import pydicom
import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from health.logs import REDACTED, RedactPatientData, logging_config, redact
from studies.models import Study
from tests.helpers import api_client, dicom_copy, wait_for
from tests.paths import CT_HEAD

NAME, GIVEN, PATIENT_ID, BIRTH = "KEITA", "MARIAMTEST", "JLB-778899", "19840312"


@pytest.mark.parametrize(
    ("line", "leak"),
    [
        ("null value violates: Failing row contains (12, KEITA^MARIAMTEST, JLB-778899, F).", "KEITA"),
        ("duplicate key: DETAIL:  Key (patient_id)=(JLB-778899) already exists.", "JLB-778899"),
        ("(0010, 0010) Patient's Name                      PN: 'KEITA^MARIAMTEST'", "KEITA"),
        ("(0010,0030) Patient's Birth Date DA: '19840312'", "19840312"),
        ("could not match patient_name=KEITA^MARIAMTEST for study 12", "KEITA"),
        ("{'PatientID': 'JLB-778899', 'PatientBirthDate': '19840312'}", "JLB-778899"),
        ('{"patient_birth_date": "19840312", "study": 4}', "19840312"),
        ("PatientName: Keita Mariam, priority stat", "Keita"),
        ("names differ: KEITA^MARIAMTEST vs KEITA^M", "MARIAMTEST"),
    ],
)
def test_it_masks_the_forms_patient_data_takes_in_log_text(line, leak):
    masked = redact(line)
    assert leak not in masked and REDACTED in masked, masked


def test_it_keeps_what_an_operator_needs():
    line = "transfer 0b7c9e2a refused: too_large (size=2147483649, max=2147483648) for site kayes"
    assert redact(line) == line
    assert redact("alert 17: send failed") == "alert 17: send failed"
    marker = "    return self.cursor.execute(sql, params)\n           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^"
    assert redact(marker) == marker  # Python's traceback markers are not names


def test_extra_fields_arguments_and_tracebacks_are_masked_before_any_handler_formats_them():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactPatientData())
    handler.setFormatter(logging.Formatter("%(message)s %(patient_id)s %(context)s"))
    log = logging.getLogger("tests.redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        try:
            raise ValueError(f"Failing row contains (3, {NAME}^{GIVEN}, {PATIENT_ID}).")
        except ValueError:
            log.exception(
                "could not record %s", {"PatientName": f"{NAME}^{GIVEN}"},
                extra={"patient_id": PATIENT_ID, "context": {"birth_date": BIRTH, "study": 4}},
            )  # fmt: skip
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "could not record" in text and "ValueError" in text and "'study': 4" in text
    for value in (NAME, GIVEN, PATIENT_ID, BIRTH):
        assert value not in text, text


@pytest.mark.django_db(transaction=True)
@pytest.mark.orthanc
def test_an_ingest_and_a_signed_report_log_no_patient_identifier(tech_a, radiologist, tmp_path, settings):
    """The production handler (JSON lines, the filter) at DEBUG on every logger, tasks run in this
    process (eagerly) so the pre-read, the renditions, the alerts and the report's export to
    Orthanc log here too; then no name, ID or birth date from the file appears in the output."""
    from joliba.celery import app

    paths = [
        dicom_copy(
            CT_HEAD / f"{i:02d}.dcm", tmp_path / f"{i}.dcm", PatientName=f"{NAME}^{GIVEN}",
            PatientID=PATIENT_ID, PatientBirthDate=BIRTH,
        )
        for i in (1, 2)
    ]  # fmt: skip
    assert pydicom.dcmread(paths[0]).PatientID == PATIENT_ID
    stream = io.StringIO()
    logging.config.dictConfig(logging_config(json_lines=True, level="DEBUG"))
    (handler,) = logging.getLogger().handlers
    handler.setStream(stream)
    for name in ("django", "django.request", "celery", "kombu", "ingest", "reports", "uploads", "preread"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    app.conf.task_always_eager = True
    settings.CELERY_TASK_ALWAYS_EAGER = True
    try:
        files = [p.open("rb") for p in paths]
        try:
            sent = api_client(tech_a).post(
                reverse("api_upload"),
                {"files": files, "indication": "Céphalées", "priority": "stat"},
                format="multipart",
            )
        finally:
            for f in files:
                f.close()
        assert sent.status_code == 201, sent.content
        study = Study.objects.get()
        assert study.patient_name == f"{NAME}^{GIVEN}"  # the facts are stored, not logged
        wait_for(lambda: Study.objects.get(pk=study.pk).status == "queued", timeout=60)
        dr = api_client(radiologist)
        assert dr.post(reverse("api_claim", args=[study.pk])).status_code == 200
        signed = dr.put(
            reverse("api_report", args=[study.pk]),
            {"findings": "Pas d'hématome.", "conclusion": "Normal.", "sign": True},
            format="json",
        )
        assert signed.status_code == 200, signed.content
        assert dr.get(reverse("api_report_pdf", args=[study.pk])).status_code == 200
        # A refusal that names the file's own facts in its exception (a duplicate's IntegrityError).
        logging.getLogger("ingest").error("refused: Key (patient_id)=(%s) already exists.", PATIENT_ID)
    finally:
        app.conf.task_always_eager = False
        logging.config.dictConfig(django_settings.LOGGING)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    assert len(lines) >= 5, lines  # the pipeline did log (tasks, requests, the refusal above)
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    text = stream.getvalue()
    assert "refused: Key (patient_id)=(" in text
    for value in (NAME, GIVEN, PATIENT_ID, BIRTH):
        assert value not in text, [line for line in lines if value in json.dumps(line)][:3]
