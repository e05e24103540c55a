"""A signed report version as a small PDF (≤ 50 kB with its key image), for printing at the site.

Written in the report's language, with the hospital's header, the patient and dates as people
write them (studies.formatting), the sections with a note wherever the text came from the AI,
the addenda, the signature, the version line and one small key image.
"""

from __future__ import annotations

import io
import logging
from xml.sax.saxutils import escape

from django.core.cache import cache
from django.http import HttpResponse
from django.utils import timezone
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table

from orthanc.client import OrthancError
from studies.archive import get_archive
from studies.formatting import age_on, dicom_date, person_name, sex_label
from studies.models import Study

from .labels import CRITICAL, words
from .models import Report, ReportVersion, VersionKind

log = logging.getLogger(__name__)

KEY_IMAGE_SIDE = 240  # px: enough to recognise the exam, a few kB as JPEG
KEY_IMAGE_QUALITY = 60


def key_image_jpeg(study: Study) -> bytes | None:
    """A small JPEG of the study's first image (cached), or None when there is none to show."""
    instance = study.instances.order_by("series_instance_uid", "instance_number", "pk").first()
    if instance is None:
        return None
    key = f"reports:key-image:{instance.pk}"
    cached = cache.get(key)
    if cached is not None:
        return cached or None
    try:
        from PIL import Image as PILImage

        from studies.renditions import preview_webp

        webp = preview_webp(get_archive().instance_file(instance.orthanc_id), side=KEY_IMAGE_SIDE)
        image = PILImage.open(io.BytesIO(webp)).convert("L")
        image.thumbnail((KEY_IMAGE_SIDE, KEY_IMAGE_SIDE))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=KEY_IMAGE_QUALITY, optimize=True)
        data = out.getvalue()
    except OrthancError:
        return None  # the archive is away: the report prints without its image, not never
    except Exception:  # an image the renderer cannot draw must not stop the report
        log.warning("no key image for study %s", study.pk, exc_info=True)
        data = b""
    cache.set(key, data, 24 * 3600)
    return data or None


def _header(study: Study, w: dict[str, str]) -> str:
    site = study.site
    if site is None:
        return escape(study.institution or "—")
    parts = [f"<b>{escape(site.name)}</b>", escape(site.region)]
    if site.phone:
        parts.append(f"{w['phone']} {escape(site.phone)}")
    return " · ".join(parts)


def report_pdf(report: Report, version: ReportVersion | None = None) -> bytes:
    """The PDF of a signed version (the latest by default)."""
    version = version or report.latest
    if version is None:
        raise ValueError("an unsigned report has no PDF")
    study = report.study
    lang = version.language
    w = words(lang)
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontSize=10, leading=13)
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10, textColor="#444444")
    heading = ParagraphStyle("h", parent=styles["Heading3"], spaceBefore=6, spaceAfter=2)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=w["title"],
        author="Joliba",
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        pageCompression=1,
    )

    def para(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(text).replace("\n", "<br/>"), style)

    birth = dicom_date(study.patient_birth_date, lang)
    age = age_on(study.patient_birth_date, study.study_date)
    patient = person_name(study.patient_name) or "—"
    facts = [f"{w['patient']} : <b>{escape(patient)}</b>"]
    if birth:
        facts.append(f"{w['born']} {escape(birth)}" + (f" ({age} {w['age']})" if age is not None else ""))
    if study.patient_sex:
        facts.append(f"{w['sex']} {escape(sex_label(study.patient_sex, lang))}")
    if study.patient_id:
        facts.append(f"{w['id']} {escape(study.patient_id)}")
    exam = f"{w['exam']} : {escape(' '.join(filter(None, [study.modality, study.description])) or '—')}"
    if study.study_date:
        exam += f" {w['of']} {escape(dicom_date(study.study_date, lang))}"
    case = f"{w['case']} {escape(str(getattr(study, 'case_code', '') or study.pk))}"
    if study.accession_number:
        case += f" · {w['accession']} {escape(study.accession_number)}"

    top = [
        Paragraph(_header(study, w), body),
        Paragraph(w["title"], styles["Title"]),
        Paragraph(" · ".join(facts), body),
        Paragraph(exam, body),
        Paragraph(case, body),
    ]
    image = key_image_jpeg(study)
    if image:
        side = 38 * mm
        picture = Image(io.BytesIO(image), width=side, height=side, kind="proportional")
        story: list = [
            Table(
                [[top, picture]], colWidths=[None, side + 4 * mm], style=[("VALIGN", (0, 0), (-1, -1), "TOP")]
            )
        ]
    else:
        story = list(top)
    story.append(Spacer(1, 6))
    for section in ("indication", "technique", "findings", "conclusion"):
        text = getattr(version, section)
        if not text and section != "conclusion":
            continue
        story.append(Paragraph(w[section], heading))
        story.append(para(text or "—"))
        if note := version.ai_note(section):
            story.append(para(note, small))
    if version.critical_category:
        story.append(
            para(f"{w['critical']} : {CRITICAL[lang if lang == 'en' else 'fr'][version.critical_category]}")
        )
    versions = list(report.versions.filter(number__lte=version.number).order_by("number"))
    for earlier in versions:
        if earlier.kind == VersionKind.ADDENDUM and earlier.addendum:
            when = timezone.localtime(earlier.signed_at).strftime("%d/%m/%Y %H:%M")
            story.append(Paragraph(f"{w['addendum']} — {when}, Dr {escape(earlier.author_name)}", heading))
            story.append(para(earlier.addendum))
            if note := earlier.ai_note("addendum"):
                story.append(para(note, small))
    signed = timezone.localtime(version.signed_at).strftime("%d/%m/%Y %H:%M")
    story += [
        Spacer(1, 10),
        Paragraph(
            f"{w['signed_by']} <b>Dr {escape(version.author_name)}</b>, {escape(version.author_title)}, "
            f"{w['on']} {signed}",
            body,
        ),
        *([para(w["on_lossy_images"], body)] if version.on_lossy_images else []),
        para(_version_line(versions, w), small),
    ]
    doc.build(story)
    return buffer.getvalue()


def _version_line(versions: list[ReportVersion], w: dict[str, str]) -> str:
    """« Version 2 (rectificatif, motif : …) · Historique : v1 original 14/03/2022 10:02 ; … »"""
    current = versions[-1]
    line = f"{w['version']} {current.number} ({current.kind_word}"
    line += f", {w['reason']} : {current.reason})" if current.reason else ")"
    if len(versions) > 1:
        past = "; ".join(
            f"v{v.number} {v.kind_word} {timezone.localtime(v.signed_at).strftime('%d/%m/%Y %H:%M')}"
            for v in versions
        )
        line += f" · {w['history']} : {past}"
    return line


def report_pdf_response(report: Report) -> HttpResponse:
    response = HttpResponse(report_pdf(report), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="compte-rendu-{report.study_id}.pdf"'
    return response
