"""A signed report as two DICOM objects stored with its study: an Encapsulated PDF (what a site
prints) and a Basic Text SR (the text, readable by any PACS or RIS), both UTF-8 (ISO_IR 192).

Built with pydicom directly: highdicom (checked, 0.2x) writes Comprehensive/Enhanced SR with the
TID 1500 measurement templates and image IODs, but neither the Basic Text SR nor an encapsulated
document, so it would be a dependency for nothing here.

Both objects carry the platform's marker (Manufacturer « Joliba », their SOP classes), so the
changes feed knows them as the platform's own report objects and never records them as images
(which would reopen the study). No Django here: plain values in, bytes out.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
REPORT_SOP_CLASSES = frozenset({ENCAPSULATED_PDF, BASIC_TEXT_SR})
REPORT_MODALITIES = frozenset({"DOC", "SR"})
MANUFACTURER = "Joliba"
MODEL_NAME = "Joliba reports"
PDF_SERIES_NUMBER = 9901
SR_SERIES_NUMBER = 9902


def is_platform_report(tags: Mapping[str, str]) -> bool:
    """Whether an archived instance is one of the platform's report objects: the marker
    (Manufacturer) and a report SOP class — or, where only series tags are known, the modality
    those classes have (DOC, SR)."""
    if (tags.get("Manufacturer") or "").strip() != MANUFACTURER:
        return False
    sop_class = (tags.get("SOPClassUID") or "").strip()
    if sop_class:
        return sop_class in REPORT_SOP_CLASSES
    return (tags.get("Modality") or "").strip().upper() in REPORT_MODALITIES


@dataclass(frozen=True)
class ReportObject:
    """What both objects say: the study's identity as the archive holds it, and the version."""

    study_tags: Mapping[str, str]  # PatientName, PatientID, ..., StudyInstanceUID, StudyDate ...
    version_number: int
    kind: str  # original | amendment | addendum
    signed_at: datetime
    author_name: str  # as printed
    author_pn: str  # as a DICOM PN: Family^Given
    institution: str
    title: str
    language: str = "fr"
    predecessor: tuple[str, str] | None = None  # (series UID, SOP instance UID) of the previous SR


def series_uid(study_instance_uid: str, kind: str) -> str:
    """One series per study for the PDFs, one for the SRs: the same UID every time."""
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=[study_instance_uid, f"joliba-report-{kind}"]))


def _base(obj: ReportObject, sop_class: str, sop_instance_uid: str, kind: str):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_instance_uid
    tags = obj.study_tags
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex"):
        setattr(ds, keyword, tags.get(keyword, ""))
    for keyword in ("StudyDate", "StudyTime", "AccessionNumber", "StudyID", "StudyDescription"):
        setattr(ds, keyword, tags.get(keyword, ""))
    ds.ReferringPhysicianName = tags.get("ReferringPhysicianName", "")
    ds.StudyInstanceUID = tags["StudyInstanceUID"]
    ds.SeriesInstanceUID = series_uid(tags["StudyInstanceUID"], kind)
    ds.InstanceNumber = obj.version_number
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MODEL_NAME
    ds.InstitutionName = obj.institution[:64]
    stamp = obj.signed_at
    ds.ContentDate = ds.InstanceCreationDate = stamp.strftime("%Y%m%d")
    ds.ContentTime = ds.InstanceCreationTime = stamp.strftime("%H%M%S")
    ds.SeriesDate, ds.SeriesTime = ds.ContentDate, ds.ContentTime
    return ds


def _bytes(ds) -> bytes:
    import pydicom

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def encapsulated_pdf(obj: ReportObject, pdf: bytes, *, sop_instance_uid: str) -> bytes:
    """The PDF as an Encapsulated PDF instance (PS3.3 A.45.1) of the study."""
    ds = _base(obj, ENCAPSULATED_PDF, sop_instance_uid, "pdf")
    ds.Modality = "DOC"
    ds.SeriesNumber = PDF_SERIES_NUMBER
    ds.SeriesDescription = "Compte rendu (PDF)" if obj.language == "fr" else "Report (PDF)"
    ds.ConversionType = "WSD"  # workstation
    ds.BurnedInAnnotation = "YES"  # the patient's name is printed in it
    ds.DocumentTitle = obj.title[:64]
    ds.ConceptNameCodeSequence = []
    ds.AcquisitionDateTime = obj.signed_at.strftime("%Y%m%d%H%M%S")
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf + (b"\0" if len(pdf) % 2 else b"")  # OB: even length
    ds.EncapsulatedDocumentLength = len(pdf)
    return _bytes(ds)


def _code(value: str, scheme: str, meaning: str):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


# TID 2000 section headings (CID 7001) and their text items (CID 7002).
HEADINGS = {
    "indication": (("121109", "Indications for Procedure"), ("121109", "Indications for Procedure")),
    "technique": (("121064", "Current Procedure Descriptions"), ("121065", "Procedure Description")),
    "findings": (("121070", "Findings"), ("121071", "Finding")),
    "conclusion": (("121076", "Conclusions"), ("121077", "Conclusion")),
    "addendum": (("121078", "Addendum"), ("121078", "Addendum")),
}
COMMENT = ("121106", "Comment")


def basic_text_sr(obj: ReportObject, *, sop_instance_uid: str, sections: list[tuple[str, str, str]]) -> bytes:
    """The report's text as a Basic Text SR (PS3.3 A.35.1): a root container (LOINC 18748-4,
    diagnostic imaging report), one container per section with its text, and a comment where an
    AI text was accepted. `sections` are (name in HEADINGS, text, note)."""
    from pydicom.dataset import Dataset

    ds = _base(obj, BASIC_TEXT_SR, sop_instance_uid, "sr")
    ds.Modality = "SR"
    ds.SeriesNumber = SR_SERIES_NUMBER
    ds.SeriesDescription = "Compte rendu (SR)" if obj.language == "fr" else "Report (SR)"
    ds.ReferencedPerformedProcedureStepSequence = []
    ds.PerformedProcedureCodeSequence = []
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "VERIFIED"
    observer = Dataset()
    observer.VerifyingObserverName = obj.author_pn[:64]
    observer.VerifyingObserverIdentificationCodeSequence = []
    observer.VerifyingOrganization = obj.institution[:64] or MANUFACTURER
    observer.VerificationDateTime = obj.signed_at.strftime("%Y%m%d%H%M%S")
    ds.VerifyingObserverSequence = [observer]
    if obj.predecessor:
        ref_sop = Dataset()
        ref_sop.ReferencedSOPClassUID = BASIC_TEXT_SR
        ref_sop.ReferencedSOPInstanceUID = obj.predecessor[1]
        ref_series = Dataset()
        ref_series.SeriesInstanceUID = obj.predecessor[0]
        ref_series.ReferencedSOPSequence = [ref_sop]
        ref_study = Dataset()
        ref_study.StudyInstanceUID = ds.StudyInstanceUID
        ref_study.ReferencedSeriesSequence = [ref_series]
        ds.PredecessorDocumentsSequence = [ref_study]
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = [_code("18748-4", "LN", "Diagnostic Imaging Report")]
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource, template.TemplateIdentifier = "DCMR", "2000"
    ds.ContentTemplateSequence = [template]
    ds.ContentSequence = []
    for name, text, note in sections:
        if not text.strip():
            continue
        heading, element = HEADINGS[name]
        container = Dataset()
        container.RelationshipType = "CONTAINS"
        container.ValueType = "CONTAINER"
        container.ConceptNameCodeSequence = [_code(heading[0], "DCM", heading[1])]
        container.ContinuityOfContent = "SEPARATE"
        container.ContentSequence = [_text(element, text)]
        if note:
            container.ContentSequence.append(_text(COMMENT, note))
        ds.ContentSequence.append(container)
    return _bytes(ds)


def _text(concept: tuple[str, str], text: str):
    from pydicom.dataset import Dataset

    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.ConceptNameCodeSequence = [_code(concept[0], "DCM", concept[1])]
    item.TextValue = text
    return item
