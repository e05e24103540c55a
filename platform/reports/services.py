"""Writes of the reports app: drafting, signing, amending, and a site opening its signed report.

Signing writes, in one transaction: the immutable version, its export row (the copy for
Orthanc, finished by a task or, failing that, by the periodic sweep), and the lifecycle move.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.http import Http404
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from accounts.models import User
from inference.draft import ENGLISH as DRAFT_EN
from inference.draft import FRENCH as DRAFT_FR
from preread.selectors import current_preread
from studies import access, lifecycle
from studies.lifecycle import Transition
from studies.models import Status, Study
from studies.selectors import has_lossy_images

from .labels import words
from .models import (
    SECTIONS,
    Abnormality,
    CriticalCategory,
    Language,
    Provenance,
    Report,
    ReportExport,
    ReportTemplate,
    ReportVersion,
    VersionKind,
)

# Sent once the signature is committed: sender=ReportVersion, version_id, study_id,
# critical_category ("" when none). Issue 9 (alerts) listens here.
version_signed = Signal()

AI_LINE_MIN_CHARS = 12  # shorter lines ("- RAS") say too little to tell who wrote them
AI_SIMILARITY = 0.6  # a section this close to the AI draft is the AI's text, edited


@dataclass(frozen=True)
class AIDraft:
    """The AI's draft findings as the editor offers them, and who made them."""

    texts: dict[str, str]  # language → the draft body (without its label line)
    source: str  # "<model> <version>"
    label: str  # the draft's own label line (« Brouillon IA — modèle … — à vérifier »)

    def text(self, language: str) -> str:
        return self.texts.get(language) or self.texts.get(Language.FRENCH, "")


def ai_draft_of(study: Study) -> AIDraft | None:
    ai = current_preread(study)
    if ai is None or not ai.is_scored or not ai.draft_fr:
        return None
    bodies = {}
    for language, text in ((Language.FRENCH, ai.draft_fr), (Language.ENGLISH, ai.draft_en)):
        lines = text.split("\n")[1:]  # without the label line
        body = "\n".join(line for line in lines if not _is_viewer_hint(line)).strip()
        if body:
            bodies[str(language)] = body
    if not bodies:
        return None
    return AIDraft(texts=bodies, source=f"{ai.model_name} {ai.model_version}", label=ai.draft_label)


# The draft's « Zones signalées sur l'image : 2 (calque à afficher) » is a hint for the viewer's
# overlay, meaningless on paper: it never goes into the report.
VIEWER_HINTS = [tuple(t.regions.split("{count}", 1)) for t in (DRAFT_FR, DRAFT_EN)]


def _is_viewer_hint(line: str) -> bool:
    return any(line.startswith(head) and line.endswith(tail) for head, tail in VIEWER_HINTS)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def section_provenance(text: str, ai: AIDraft | None) -> str:
    """Who wrote a section: the AI unedited, the AI edited, or the radiologist.

    AI text, unedited: the section equals a draft body (spaces and case aside). Edited: one of
    the draft's lines (≥ 12 characters) is still in it word for word, or the whole is at least
    60 % similar to a draft body. Anything else is the radiologist's."""
    section = _norm(text)
    if ai is None or not section:
        return Provenance.RADIOLOGIST
    edited = False
    for body in ai.texts.values():
        whole = _norm(body)
        if section == whole:
            return f"{Provenance.AI}:{ai.source}"
        lines = [_norm(line) for line in body.splitlines()]
        if any(len(line) >= AI_LINE_MIN_CHARS and line in section for line in lines):
            edited = True
        elif difflib.SequenceMatcher(None, whole, section).ratio() >= AI_SIMILARITY:
            edited = True
    return f"{Provenance.AI_EDITED}:{ai.source}" if edited else Provenance.RADIOLOGIST


def provenance_of(sections: dict[str, str], ai: AIDraft | None) -> dict[str, str]:
    return {name: section_provenance(sections.get(name, ""), ai) for name in SECTIONS}


def needs_ai_acceptance(provenance: dict[str, str]) -> bool:
    return any(source.startswith(Provenance.AI) for source in provenance.values())


def choose_template(study: Study) -> ReportTemplate | None:
    """The most specific active template for the study's modality and body part."""
    scored = [
        (t.match_score(study.modality or "", study.body_part or ""), t)
        for t in ReportTemplate.objects.filter(active=True)
    ]
    scored = [(score, t) for score, t in scored if score]
    return max(scored, key=lambda st: (st[0], -st[1].pk))[1] if scored else None


def radiologist_language(user: User | None = None) -> str:
    """The language a new report starts in: the radiologist's active language."""
    return Language.ENGLISH if (get_language() or "fr").startswith("en") else Language.FRENCH


def initial_sections(study: Study, *, template: ReportTemplate | None, language: str) -> dict[str, str]:
    """A new draft: the indication from the site, the template's text, the AI's findings (the
    editor labels them as the AI's until signed or replaced)."""
    sections = {name: template.text(name, language) if template else "" for name in SECTIONS}
    sections["indication"] = study.indication.strip()
    ai = ai_draft_of(study)
    if ai is not None:
        sections["findings"] = ai.text(language)
    return sections


def apply_template(report: Report, template: ReportTemplate, language: str) -> None:
    """Switch the draft to another template or language: a section the radiologist has not
    changed from the previous template (or left empty) takes the new template's text."""
    old = report.template
    for name in ("technique", "findings", "conclusion"):
        current = _norm(getattr(report, name))
        untouched = not current or (
            old is not None and current in (_norm(old.text(name, lang)) for lang in Language.values)
        )
        if untouched:
            setattr(report, name, template.text(name, language))
    report.template = template
    report.language = language


def change_template(*, study: Study, author: User, template: ReportTemplate, language: str) -> Report:
    """The radiologist picks another template or language in the editor."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if not access.may_sign_reports(author, study):
            raise PermissionDenied(_("Prenez d'abord cet examen en lecture."))
        report = Report.objects.filter(study=study).first()
        if report is None:
            report = new_draft(study, author=author, language=language)
        if language not in Language.values:
            raise ValidationError(_("Langue du compte rendu inconnue."))
        apply_template(report, template, language)
        report.author = author
        report.save()
    return report


def new_draft(study: Study, *, author: User, language: str | None = None) -> Report:
    """An unsaved draft as the editor first shows it."""
    language = language or radiologist_language(author)
    template = choose_template(study)
    return Report(
        study=study,
        author=author,
        template=template,
        language=language,
        **initial_sections(study, template=template, language=language),
    )


def _check_sections(conclusion: str, critical_category: str, language: str) -> None:
    if critical_category and critical_category not in CriticalCategory.values:
        raise ValidationError(_("Catégorie de résultat critique inconnue."))
    if language not in Language.values:
        raise ValidationError(_("Langue du compte rendu inconnue."))


def save_report(
    *,
    study: Study,
    author: User,
    findings: str | None = None,
    conclusion: str | None = None,
    sign: bool = False,
    indication: str | None = None,
    technique: str | None = None,
    language: str | None = None,
    critical_category: str | None = None,
    abnormality: str | None = None,
    template: ReportTemplate | None = None,
    accept_ai: bool = False,
    reason: str = "",
) -> Report:
    """Write (and optionally sign) the draft of a study the author is reading.

    Signing text that came from the AI needs `accept_ai`; a study signed before and reopened by
    new images is signed again as an amendment, which needs a `reason`. A refused signature
    raises ValidationError and changes nothing (the caller may then save the draft)."""
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if not access.may_sign_reports(author, study):
            raise PermissionDenied(_("Prenez d'abord cet examen en lecture."))
        report = Report.objects.filter(study=study).first()
        if report is None:
            report = new_draft(study, author=author, language=language)
        if template is not None:
            report.template = template
        report.author = author
        if findings is not None:
            report.findings = findings.strip()
        if conclusion is not None:
            report.conclusion = conclusion.strip()
        if indication is not None:
            report.indication = indication.strip()
        if technique is not None:
            report.technique = technique.strip()
        if language is not None:
            report.language = language
        if critical_category is not None:
            report.critical_category = critical_category
        if abnormality is not None:
            if abnormality and abnormality not in Abnormality.values:
                raise ValidationError(_("Réponse « normal ou anormal » inconnue."))
            report.abnormality = abnormality
        _check_sections(report.conclusion, report.critical_category, report.language)
        if sign:
            if not report.conclusion:
                raise ValidationError(_("Une conclusion est nécessaire pour signer."))
            previous = report.latest if report.pk else None
            kind = VersionKind.AMENDMENT if previous else VersionKind.ORIGINAL
            if previous and not reason.strip():
                raise ValidationError(_("Ce compte rendu a déjà été signé : dites pourquoi il change."))
            report.save()
            _sign_version(report, author=author, kind=kind, reason=reason, accept_ai=accept_ai)
            lifecycle.transition(study, Transition.SIGN, actor=author)
        else:
            report.save()
    return report


def _sign_version(
    report: Report,
    *,
    author: User,
    kind: str,
    reason: str = "",
    addendum: str = "",
    accept_ai: bool,
    provenance: dict[str, str] | None = None,
) -> ReportVersion:
    sections = {name: getattr(report, name) for name in SECTIONS}
    if provenance is None:
        provenance = provenance_of(sections, ai_draft_of(report.study))
    if addendum:
        provenance["addendum"] = section_provenance(addendum, ai_draft_of(report.study))
    if needs_ai_acceptance(provenance) and not accept_ai:
        raise ValidationError(
            _(
                "Ce texte vient en partie du brouillon de l'IA : cochez « J'ai relu et j'accepte le "
                "texte proposé par l'IA » pour le signer sous votre responsabilité, ou réécrivez-le."
            )
        )
    latest = report.versions.order_by("-number").first()
    version = ReportVersion.objects.create(
        report=report,
        number=(latest.number + 1) if latest else 1,
        kind=kind,
        reason=reason.strip(),
        addendum=addendum.strip(),
        author=author,
        author_name=author.get_full_name() or author.username,
        author_title=words(report.language)["radiologist"],  # in the document's language
        signed_at=timezone.now(),
        provenance=provenance,
        ai_accepted_by=author if needs_ai_acceptance(provenance) else None,
        on_lossy_images=has_lossy_images(report.study),
        **sections,
        language=report.language,
        critical_category=report.critical_category,
        abnormality=report.abnormality,
    )
    _queue_export(version)
    return version


def _queue_export(version: ReportVersion) -> None:
    from pydicom.uid import generate_uid

    from .tasks import export_report_version

    export = ReportExport.objects.create(
        version=version, pdf_sop_instance_uid=generate_uid(), sr_sop_instance_uid=generate_uid()
    )
    export_id, version_id, study_id = export.pk, version.pk, version.report.study_id
    category = version.critical_category
    transaction.on_commit(lambda: export_report_version.delay(export_id))
    transaction.on_commit(
        lambda: version_signed.send(
            ReportVersion, version_id=version_id, study_id=study_id, critical_category=category
        )
    )


def amend_report(
    *,
    study: Study,
    author: User,
    kind: str,
    reason: str,
    sections: dict[str, str] | None = None,
    addendum: str = "",
    critical_category: str | None = None,
    accept_ai: bool = False,
) -> ReportVersion:
    """A new signed version of a signed report: an amendment (the sections rewritten) or an
    addendum (text added, the sections unchanged). The earlier versions stay as they were.
    The study goes back to `reported` (lifecycle "amend"), so the site opens it again."""
    if kind not in (VersionKind.AMENDMENT, VersionKind.ADDENDUM):
        raise ValidationError(_("Choisissez rectificatif ou addendum."))
    if not reason.strip():
        raise ValidationError(_("Le motif de la nouvelle version est obligatoire."))
    with transaction.atomic():
        study = Study.objects.select_for_update().get(pk=study.pk)
        if not access.may_amend_report(author, study):
            raise PermissionDenied(_("Seul le radiologue signataire peut compléter ce compte rendu."))
        report = Report.objects.select_for_update().filter(study=study).first()
        latest = report.latest if report else None
        if report is None or latest is None:
            raise ValidationError(_("Il n'y a pas encore de compte rendu signé."))
        for name in SECTIONS:  # the draft restarts from the signed text
            setattr(report, name, getattr(latest, name))
        report.language = latest.language
        report.critical_category = latest.critical_category
        report.abnormality = latest.abnormality  # an amendment keeps the structured answer
        if critical_category is not None:
            report.critical_category = critical_category
        if kind == VersionKind.AMENDMENT:
            for name, text in (sections or {}).items():
                if name in SECTIONS:
                    setattr(report, name, text.strip())
            if not report.conclusion:
                raise ValidationError(_("Une conclusion est nécessaire pour signer."))
            if all(getattr(report, n) == getattr(latest, n) for n in SECTIONS) and (
                report.critical_category == latest.critical_category
            ):
                raise ValidationError(_("Le rectificatif ne change rien au compte rendu signé."))
        elif not addendum.strip():
            raise ValidationError(_("Écrivez le texte de l'addendum."))
        _check_sections(report.conclusion, report.critical_category, report.language)
        report.author = author
        report.save()
        # An amendment keeps the provenance of the sections it leaves as they were.
        ai = ai_draft_of(study)
        provenance = {
            name: latest.provenance.get(name, Provenance.RADIOLOGIST)
            if getattr(report, name) == getattr(latest, name)
            else section_provenance(getattr(report, name), ai)
            for name in SECTIONS
        }
        version = _sign_version(
            report,
            author=author,
            kind=kind,
            reason=reason,
            addendum=addendum,
            accept_ai=accept_ai or latest.ai_accepted_by_id == author.pk,
            provenance=provenance,
        )
        lifecycle.transition(study, Transition.AMEND, actor=author)
    return version


def open_report(*, user: User, study: Study) -> Report:
    """The report of a study as this user may see it, or 404. When a technician of the site
    opens the signed report, the study is delivered: the one place where that happens, whether
    by the page, the PDF or the API."""
    report = Report.objects.filter(study=study).select_related("author", "study__site").first()
    if report is None or not access.may_see_report(user, study, signed=report.is_signed):
        raise Http404
    if report.is_signed and study.status == Status.REPORTED and access.opening_delivers_report(user, study):
        try:
            lifecycle.transition(study, Transition.DELIVER, actor=user)
        except lifecycle.TransitionRefused:  # opened twice at once: delivered by the other
            pass
    return report
