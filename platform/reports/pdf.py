"""A signed report as a small PDF (a few kB), for printing at the site."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from django.http import HttpResponse
from django.utils import timezone
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer

from .models import Report


def report_pdf(report: Report) -> bytes:
    study = report.study
    styles = getSampleStyleSheet()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, title="Compte rendu", author="Joliba")

    def para(text: str, style: str = "BodyText") -> Paragraph:
        return Paragraph(escape(text).replace("\n", "<br/>"), styles[style])

    signed = timezone.localtime(report.signed_at).strftime("%d/%m/%Y %H:%M")
    story = [
        para("Compte rendu d'imagerie / Imaging report", "Title"),
        para(f"Site : {study.site.name if study.site else '—'}"),
        para(
            f"Patient : {study.patient_name} — ID {study.patient_id} — né(e) le "
            f"{study.patient_birth_date or '?'} — sexe {study.patient_sex or '?'}"
        ),
        para(f"Examen : {study.modality} {study.description} du {study.study_date or '?'}"),
        para(f"Indication : {study.indication or '—'}"),
        Spacer(1, 12),
        para("Résultats", "Heading2"),
        para(report.findings or "—"),
        para("Conclusion", "Heading2"),
        para(report.conclusion),
        Spacer(1, 18),
        para(f"Signé par Dr {report.author.get_full_name() or report.author.username} le {signed}"),
    ]
    doc.build(story)
    return buffer.getvalue()


def report_pdf_response(report: Report) -> HttpResponse:
    response = HttpResponse(report_pdf(report), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="compte-rendu-{report.study_id}.pdf"'
    return response
