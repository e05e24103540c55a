"""De-identification of DICOM instances for teaching and research exports.

The DICOM Basic Application Level Confidentiality Profile (PS3.15 Annex E, Table E.1-1, as in
the 2024d edition of the standard) with the **Retain Longitudinal Temporal Information with Full
Dates Option**: dates and times of the study and its acquisitions are kept as they were (a
teaching case keeps its real chronology; the patient's birth date does not, it is emptied), and
`LongitudinalTemporalInformationModified` says UNMODIFIED.

The table below is written out by hand from Table E.1-1 with the attributes' keywords (checked
against pydicom's dictionary by the tests). Actions, as the standard names them:

    D  replace with a dummy value of the same VR (never empty)
    Z  replace with an empty value (or a consistent pseudonym, for the patient's name and ID)
    X  remove
    K  keep
    C  clean (not used by the Basic Profile's column without options)
    U  replace a UID by another, consistently: a keyed hash of the original (HMAC-SHA-256 with a
       key from the deployment's secret), so the same study exported twice gets the same UIDs
       and the references between instances still hold

Combinations (X/Z, X/D, Z/D, X/Z/D, X/Z/U*) are resolved here, one rule for all, to the one
that keeps the data set conformant and leaves no value behind: "U*" (a sequence of references)
keeps the sequence and replaces every UID inside it; otherwise a lone D gives a dummy value,
any combination with Z gives an empty value, and X alone removes. For a sequence, D and Z give an
empty sequence (no item can carry an unchecked value).

Always, on every level of every sequence: private attributes removed, curve data (50xx) and
overlay data and comments (60xx,3000 / 60xx,4000) removed, UIDs replaced. Added: Patient Identity
Removed = YES, De-identification Method and its Code Sequence (113100 Basic Application
Confidentiality Profile, 113106 Retain Longitudinal Temporal Information Full Dates Option).
Pixel data is never touched: text burned into the pixels is not removed, which is why studies
that may carry it are flagged (privacy.burned_in) and an export of them needs a confirmation.

Beyond the profile (stricter, never looser): the File Meta's Source/Sending/Receiving AE titles
are dropped, and the veterinary Responsible Person / Organization (an animal's owner and clinic)
are removed as the profile says for them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID

STANDARD_EDITION = "DICOM PS3.15 2024d, Annex E, Table E.1-1"
METHOD = "PS3.15 E Basic Profile, Retain Long. Full Dates (Joliba)"  # LO: at most 64 characters
PROFILE_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
)

# Keyword → action in the Basic Profile column of Table E.1-1.
BASIC_PROFILE: dict[str, str] = {
    "AccessionNumber": "Z",
    "AcquisitionComments": "X",
    "AcquisitionContextSequence": "X",
    "AcquisitionDate": "X/Z",
    "AcquisitionDateTime": "X/Z/D",
    "AcquisitionDeviceProcessingDescription": "X/D",
    "AcquisitionFieldOfViewLabel": "D",
    "AcquisitionProtocolDescription": "X",
    "AcquisitionTime": "X/Z",
    "AcquisitionUID": "U",
    "ActualHumanPerformersSequence": "X",
    "AdditionalPatientHistory": "X",
    "AddressTrial": "X",
    "AdmissionID": "X",
    "AdmittingDate": "X",
    "AdmittingDiagnosesCodeSequence": "X",
    "AdmittingDiagnosesDescription": "X",
    "AdmittingTime": "X",
    "AffectedSOPInstanceUID": "X",
    "Allergies": "X",
    "AnnotationGroupDescription": "X",
    "AnnotationGroupLabel": "D",
    "AnnotationGroupUID": "U",
    "ApprovalStatusDateTime": "X",
    "Arbitrary": "X",
    "AuthorObserverSequence": "X",
    "BarcodeValue": "X",
    "BeamDescription": "X",
    "BolusDescription": "X",
    "BranchOfService": "X",
    "CameraOwnerName": "X",
    "CassetteID": "X",
    "CommentsOnThePerformedProcedureStep": "X",
    "ConcatenationUID": "U",
    "ConfidentialityConstraintOnPatientDataDescription": "X",
    "ConsultingPhysicianIdentificationSequence": "X",
    "ConsultingPhysicianName": "X",
    "ContainerIdentifier": "Z",
    "ContentCreatorIdentificationCodeSequence": "X",
    "ContentCreatorName": "Z",
    "ContentDate": "Z/D",
    "ContentSequence": "X",
    "ContentTime": "Z/D",
    "ContextGroupExtensionCreatorUID": "U",
    "ContrastBolusAgent": "Z/D",
    "ContributionDescription": "X",
    "CountryOfResidence": "X",
    "CreatorVersionUID": "U",
    "CurrentPatientLocation": "X",
    "CurveDate": "X",
    "CurveTime": "X",
    "CustodialOrganizationSequence": "X",
    "DataSetTrailingPadding": "X",
    "Date": "X",
    "DateOfLastCalibration": "X",
    "DateOfSecondaryCapture": "X",
    "DateTime": "X/D",
    "DerivationDescription": "X",
    "DetectorID": "X/D",
    "DeviceAlternateIdentifier": "X/Z/D",
    "DeviceDescription": "X",
    "DeviceLabel": "X/D",
    "DeviceSerialNumber": "X/Z/D",
    "DeviceUID": "U",
    "DigitalSignatureUID": "X",
    "DigitalSignaturesSequence": "X",
    "DimensionOrganizationUID": "U",
    "DischargeDate": "X",
    "DischargeDiagnosisDescription": "X",
    "DischargeTime": "X",
    "DistributionAddress": "X",
    "DistributionName": "X",
    "DoseReferenceUID": "U",
    "EndAcquisitionDateTime": "X/D",
    "EthnicGroup": "X",
    "ExpectedCompletionDateTime": "X",
    "FailedSOPInstanceUIDList": "U",
    "FiducialUID": "U",
    "FillerOrderNumberImagingServiceRequest": "Z",
    "FrameComments": "X",
    "FrameOfReferenceUID": "U",
    "GantryID": "X",
    "GeneratorID": "X",
    "GraphicAnnotationSequence": "D",
    "HumanPerformerName": "X",
    "HumanPerformerOrganization": "X",
    "IconImageSequence": "X",
    "IdentifyingComments": "X",
    "ImageComments": "X",
    "ImagePresentationComments": "X",
    "ImagingServiceRequestComments": "X",
    "Impressions": "X",
    "InstanceCoercionDateTime": "X",
    "InstanceCreationDate": "X/D",
    "InstanceCreationTime": "X/Z/D",
    "InstanceCreatorUID": "U",
    "InstitutionAddress": "X",
    "InstitutionCodeSequence": "X/Z/D",
    "InstitutionName": "X/Z/D",
    "InstitutionalDepartmentName": "X",
    "InstitutionalDepartmentTypeCodeSequence": "X",
    "InsurancePlanIdentification": "X",
    "IntendedRecipientsOfResultsIdentificationSequence": "X",
    "InterpretationApproverSequence": "X",
    "InterpretationAuthor": "X",
    "InterpretationDiagnosisDescription": "X",
    "InterpretationIDIssuer": "X",
    "InterpretationRecorder": "X",
    "InterpretationText": "X",
    "InterpretationTranscriber": "X",
    "IrradiationEventUID": "U",
    "IssuerOfAdmissionID": "X",
    "IssuerOfPatientID": "X",
    "IssuerOfServiceEpisodeID": "X",
    "LabelText": "X",
    "LargePaletteColorLookupTableUID": "U",
    "LastMenstrualDate": "X",
    "MAC": "X",
    "MediaStorageSOPInstanceUID": "U",
    "MedicalAlerts": "X",
    "MedicalRecordLocator": "X",
    "MilitaryRank": "X",
    "ModifiedAttributesSequence": "X",
    "ModifiedImageDescription": "X",
    "ModifyingDeviceID": "X",
    "NameOfPhysiciansReadingStudy": "X",
    "NamesOfIntendedRecipientsOfResults": "X",
    "ObservationDateTime": "X",
    "Occupation": "X",
    "OperatorIdentificationSequence": "X",
    "OperatorsName": "X/Z/D",
    "OrderCallbackPhoneNumber": "X",
    "OrderEnteredBy": "X",
    "OrderEntererLocation": "X",
    "OriginalAttributesSequence": "X",
    "OtherPatientIDs": "X",
    "OtherPatientIDsSequence": "X",
    "OtherPatientNames": "X",
    "ParticipantSequence": "X",
    "PatientAddress": "X",
    "PatientAge": "X",
    "PatientBirthDate": "Z",
    "PatientBirthName": "X",
    "PatientBirthTime": "X",
    "PatientComments": "X",
    "PatientID": "Z",
    "PatientInstitutionResidence": "X",
    "PatientInsurancePlanCodeSequence": "X",
    "PatientMotherBirthName": "X",
    "PatientName": "Z",
    "PatientPrimaryLanguageCodeSequence": "X",
    "PatientPrimaryLanguageModifierCodeSequence": "X",
    "PatientReligiousPreference": "X",
    "PatientSex": "Z",
    "PatientSexNeutered": "X/Z",
    "PatientSize": "X",
    "PatientState": "X",
    "PatientTelecomInformation": "X",
    "PatientTelephoneNumbers": "X",
    "PatientTransportArrangements": "X",
    "PatientWeight": "X",
    "PerformedLocation": "X",
    "PerformedProcedureStepDescription": "X",
    "PerformedProcedureStepEndDate": "X",
    "PerformedProcedureStepEndDateTime": "X",
    "PerformedProcedureStepEndTime": "X",
    "PerformedProcedureStepID": "X",
    "PerformedProcedureStepStartDate": "X",
    "PerformedProcedureStepStartDateTime": "X",
    "PerformedProcedureStepStartTime": "X",
    "PerformedStationAETitle": "X",
    "PerformedStationGeographicLocationCodeSequence": "X",
    "PerformedStationName": "X",
    "PerformedStationNameCodeSequence": "X",
    "PerformingPhysicianIdentificationSequence": "X",
    "PerformingPhysicianName": "X",
    "PersonAddress": "X",
    "PersonIdentificationCodeSequence": "D",
    "PersonName": "D",
    "PersonTelecomInformation": "X",
    "PersonTelephoneNumbers": "X",
    "PhysicianApprovingInterpretation": "X",
    "PhysiciansOfRecord": "X",
    "PhysiciansOfRecordIdentificationSequence": "X",
    "PhysiciansReadingStudyIdentificationSequence": "X",
    "PlacerOrderNumberImagingServiceRequest": "Z",
    "PlateID": "X",
    "PreMedication": "X",
    "PregnancyStatus": "X",
    "ProtocolName": "X/D",
    "ReasonForStudy": "X",
    "ReasonForTheImagingServiceRequest": "X",
    "ReferencedDigitalSignatureSequence": "X",
    "ReferencedFrameOfReferenceUID": "U",
    "ReferencedGeneralPurposeScheduledProcedureStepTransactionUID": "U",
    "ReferencedImageSequence": "X/Z/U*",
    "ReferencedPatientAliasSequence": "X",
    "ReferencedPatientPhotoSequence": "X",
    "ReferencedPatientSequence": "X",
    "ReferencedPerformedProcedureStepSequence": "X/Z/D",
    "ReferencedSOPInstanceMACSequence": "X",
    "ReferencedSOPInstanceUID": "U",
    "ReferencedStudySequence": "X/Z",
    "ReferringPhysicianAddress": "X",
    "ReferringPhysicianIdentificationSequence": "X",
    "ReferringPhysicianName": "Z",
    "ReferringPhysicianTelephoneNumbers": "X",
    "RegionOfResidence": "X",
    "RelatedFrameOfReferenceUID": "U",
    "RequestAttributesSequence": "X",
    "RequestedContrastAgent": "X",
    "RequestedProcedureComments": "X",
    "RequestedProcedureDescription": "X/Z",
    "RequestedProcedureID": "X",
    "RequestedProcedureLocation": "X",
    "RequestedSOPInstanceUID": "U",
    "RequestingPhysician": "X",
    "RequestingService": "X",
    "RequestingServiceCodeSequence": "X",
    "ResponsibleOrganization": "X",
    "ResponsiblePerson": "X",
    "ResultsComments": "X",
    "ResultsDistributionListSequence": "X",
    "ResultsIDIssuer": "X",
    "ReviewerName": "X/Z",
    "ScheduledHumanPerformersSequence": "X",
    "ScheduledPatientInstitutionResidence": "X",
    "ScheduledPerformingPhysicianIdentificationSequence": "X",
    "ScheduledPerformingPhysicianName": "X",
    "ScheduledProcedureStepDescription": "X",
    "ScheduledProcedureStepEndDate": "X",
    "ScheduledProcedureStepEndTime": "X",
    "ScheduledProcedureStepID": "X",
    "ScheduledProcedureStepLocation": "X",
    "ScheduledProcedureStepStartDate": "X",
    "ScheduledProcedureStepStartTime": "X",
    "ScheduledStationAETitle": "X",
    "ScheduledStationGeographicLocationCodeSequence": "X",
    "ScheduledStationName": "X",
    "ScheduledStationNameCodeSequence": "X",
    "ScheduledStudyLocation": "X",
    "ScheduledStudyLocationAETitle": "X",
    "SeriesDate": "X/D",
    "SeriesDescription": "X",
    "SeriesInstanceUID": "U",
    "SeriesTime": "X/D",
    "ServiceEpisodeDescription": "X",
    "ServiceEpisodeID": "X",
    "SmokingStatus": "X",
    "SOPInstanceUID": "U",
    "SourceImageSequence": "X/Z/U*",
    "SourceSerialNumber": "X",
    "SpecialNeeds": "X",
    "SpecimenAccessionNumber": "X",
    "SpecimenUID": "U",
    "StartAcquisitionDateTime": "X/D",
    "StationName": "X/Z/D",
    "StorageMediaFileSetUID": "U",
    "StudyComments": "X",
    "StudyDate": "Z",
    "StudyDescription": "X",
    "StudyID": "Z",
    "StudyIDIssuer": "X",
    "StudyInstanceUID": "U",
    "StudyTime": "Z",
    "SynchronizationFrameOfReferenceUID": "U",
    "TargetUID": "U",
    "TelephoneNumberTrial": "X",
    "TemplateExtensionCreatorUID": "U",
    "TemplateExtensionOrganizationUID": "U",
    "TextComments": "X",
    "TextString": "X",
    "Time": "X",
    "TimeOfLastCalibration": "X",
    "TimeOfSecondaryCapture": "X",
    "TimezoneOffsetFromUTC": "X",
    "TopicAuthor": "X",
    "TopicKeywords": "X",
    "TopicSubject": "X",
    "TopicTitle": "X",
    "TrackingUID": "U",
    "TransactionUID": "U",
    "UDISequence": "X",
    "UID": "U",
    "UniqueDeviceIdentifier": "X",
    "VerifyingObserverIdentificationCodeSequence": "Z",
    "VerifyingObserverName": "D",
    "VerifyingObserverSequence": "D",
    "VerifyingOrganization": "X",
    "VisitComments": "X",
}

# The Retain Longitudinal Temporal Information with Full Dates Option column: K for these.
RETAINED_DATES = frozenset(
    {
        "AcquisitionDate",
        "AcquisitionDateTime",
        "AcquisitionTime",
        "AdmittingDate",
        "AdmittingTime",
        "ApprovalStatusDateTime",
        "ContentDate",
        "ContentTime",
        "CurveDate",
        "CurveTime",
        "Date",
        "DateOfLastCalibration",
        "DateOfSecondaryCapture",
        "DateTime",
        "DischargeDate",
        "DischargeTime",
        "EndAcquisitionDateTime",
        "ExpectedCompletionDateTime",
        "InstanceCoercionDateTime",
        "InstanceCreationDate",
        "InstanceCreationTime",
        "LastMenstrualDate",
        "ObservationDateTime",
        "PerformedProcedureStepEndDate",
        "PerformedProcedureStepEndDateTime",
        "PerformedProcedureStepEndTime",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartDateTime",
        "PerformedProcedureStepStartTime",
        "ScheduledProcedureStepEndDate",
        "ScheduledProcedureStepEndTime",
        "ScheduledProcedureStepStartDate",
        "ScheduledProcedureStepStartTime",
        "SeriesDate",
        "SeriesTime",
        "StartAcquisitionDateTime",
        "StudyDate",
        "StudyTime",
        "Time",
        "TimeOfLastCalibration",
        "TimeOfSecondaryCapture",
    }
)

# Repeating groups the table lists by mask: curve data (50xx,xxxx) and overlay data and
# comments (60xx,3000), (60xx,4000): removed.
_OVERLAY_REMOVED = (0x3000, 0x4000)

# A dummy value per VR for "D" (never empty, valid for the VR).
DUMMY: dict[str, Any] = {
    "PN": "ANONYMOUS",
    "LO": "ANONYMOUS",
    "SH": "ANONYMOUS",
    "LT": "ANONYMOUS",
    "ST": "ANONYMOUS",
    "UT": "ANONYMOUS",
    "UC": "ANONYMOUS",
    "CS": "ANONYMOUS",
    "AE": "ANONYMOUS",
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "AS": "000D",
    "IS": "0",
    "DS": "0",
}

# Values that stay pseudonymous but consistent within the deployment's exports (Z allows "a
# dummy value consistent with the VR"): a research set can still tell two patients apart.
PSEUDONYMOUS = frozenset({"PatientID", "PatientName"})


MAX_DEPTH = 32  # nested sequences; real objects stay under 10 (ingest refuses deeper ones too)


class DeidentificationError(Exception):
    """The file cannot be de-identified (not DICOM, unreadable): a verdict, not a crash."""


def effective_action(keyword: str) -> str:
    """The one action applied for a keyword under this profile and option ("" if unlisted)."""
    if keyword in RETAINED_DATES:
        return "K"
    action = BASIC_PROFILE.get(keyword, "")
    if not action or action in {"D", "Z", "X", "K", "U"}:
        return action
    if "U*" in action:
        return "U*"
    return "Z" if "Z" in action else ("D" if action == "Z/D" else "X")


@dataclass
class Deidentifier:
    """Applies the profile with one key: the same key gives the same replacement UIDs and
    pseudonyms (an export of the same study is consistent with the previous one)."""

    key: bytes
    report: dict[str, int] = field(default_factory=lambda: {"removed": 0, "emptied": 0, "replaced": 0})

    def uid(self, original: str) -> str:
        """A UID under 2.25 (PS3.5 B.2: a UUID as a decimal integer) from a keyed hash."""
        digest = hmac.new(self.key, b"uid:" + original.strip().encode(), hashlib.sha256).digest()
        return f"2.25.{int.from_bytes(digest[:16], 'big')}"

    def pseudonym(self, original: str) -> str:
        digest = hmac.new(self.key, b"patient:" + original.strip().encode(), hashlib.sha256).hexdigest()
        return f"JOLIBA-{digest[:10].upper()}"

    # --- the walk ------------------------------------------------------------------------------
    def apply(self, ds: Dataset, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise DeidentificationError("sequences nested too deep")
        for tag in list(ds.keys()):
            elem = ds[tag]
            if self._drop_always(tag):
                del ds[tag]
                self.report["removed"] += 1
                continue
            keyword = keyword_for_tag(tag)
            action = effective_action(keyword) if keyword else ""
            if elem.VR == "UI" and not action and keyword.endswith("UID") and self._is_instance_uid(keyword):
                action = "U"
            self._act(ds, elem, keyword, action)
            if tag in ds and ds[tag].VR == "SQ":
                for item in ds[tag].value or []:
                    self.apply(item, depth + 1)

    @staticmethod
    def _is_instance_uid(keyword: str) -> bool:
        # Class, transfer syntax and coding scheme UIDs identify nobody and are kept.
        return not any(part in keyword for part in ("Class", "TransferSyntax", "CodingScheme", "Context"))

    @staticmethod
    def _drop_always(tag: BaseTag) -> bool:
        group, element = tag.group, tag.element
        if tag.is_private:
            return True
        if 0x5000 <= group <= 0x50FF:  # curve data
            return True
        return 0x6000 <= group <= 0x60FF and group % 2 == 0 and element in _OVERLAY_REMOVED

    def _act(self, ds: Dataset, elem: DataElement, keyword: str, action: str) -> None:
        if action in ("", "K", "U*"):
            return
        if action == "X":
            del ds[elem.tag]
            self.report["removed"] += 1
        elif action == "U":
            self._replace_uids(elem)
        elif elem.VR == "SQ":  # D or Z on a sequence: no item may carry an unchecked value
            elem.value = Sequence([])
            self.report["emptied"] += 1
        elif action == "Z":
            if keyword in PSEUDONYMOUS and not elem.is_empty:
                elem.value = self.pseudonym(str(elem.value))
                self.report["replaced"] += 1
            else:
                elem.value = None
                self.report["emptied"] += 1
        elif action == "D":
            dummy = DUMMY.get(elem.VR)
            if dummy is None:  # a binary or numeric VR: no text to put, the value goes
                del ds[elem.tag]
                self.report["removed"] += 1
            else:
                elem.value = dummy
                self.report["replaced"] += 1

    def _replace_uids(self, elem: DataElement) -> None:
        if elem.VR != "UI" or elem.is_empty:
            return
        if elem.VM > 1:
            elem.value = [self.uid(str(v)) for v in elem.value]
        else:
            elem.value = self.uid(str(elem.value))
        self.report["replaced"] += 1


def _mark(ds: Dataset) -> None:
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = METHOD
    codes = []
    for value, meaning in PROFILE_CODES:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        codes.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(codes)
    ds.LongitudinalTemporalInformationModified = "UNMODIFIED"


def _file_meta(original: FileMetaDataset | None, ds: Dataset, deid: Deidentifier) -> FileMetaDataset:
    """A new File Meta: the transfer syntax and classes of the original, the instance's new
    UID; no AE titles (who sent it to whom) and no private information."""
    meta = FileMetaDataset()
    old = original or FileMetaDataset()
    sop_class = old.get("MediaStorageSOPClassUID") or ds.get("SOPClassUID") or "1.2.840.10008.5.1.4.1.1.7"
    instance = ds.get("SOPInstanceUID") or deid.uid(str(old.get("MediaStorageSOPInstanceUID", "")))
    meta.MediaStorageSOPClassUID = UID(str(sop_class))
    meta.MediaStorageSOPInstanceUID = UID(str(instance))
    meta.TransferSyntaxUID = UID(str(old.get("TransferSyntaxUID") or "1.2.840.10008.1.2"))
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    return meta


@dataclass(frozen=True)
class Result:
    data: bytes
    study_instance_uid: str  # the new one
    burned_in: bool  # the instance says, or looks like, it may carry burned-in text


def deidentify_bytes(data: bytes, *, key: bytes) -> Result:
    """One DICOM file in, its de-identified copy out. Raises DeidentificationError on a file
    that is not DICOM or cannot be read: the caller reports it, nothing half-done is written."""
    try:
        ds = dcmread(BytesIO(data), force=True)
        ds.remove_private_tags()  # also done on every level below; this settles the parse
        if "PixelData" not in ds and "SOPInstanceUID" not in ds:
            raise DeidentificationError("not a DICOM image")
    except (
        InvalidDicomError,
        OSError,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        RecursionError,
    ) as exc:
        raise DeidentificationError(f"{exc.__class__.__name__}: {str(exc)[:120]}") from exc
    from .burned_in import may_carry_burned_in

    burned = may_carry_burned_in(ds)
    deid = Deidentifier(key=key)
    try:
        deid.apply(ds)
        _mark(ds)
        ds.file_meta = _file_meta(getattr(ds, "file_meta", None), ds, deid)
        ds.preamble = b"\0" * 128  # a preamble may carry anything (a viewer's banner, a name)
        out = BytesIO()
        ds.save_as(out, enforce_file_format=True)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
        raise DeidentificationError(f"{exc.__class__.__name__}: {str(exc)[:120]}") from exc
    return Result(
        data=out.getvalue(), study_instance_uid=str(ds.get("StudyInstanceUID", "")), burned_in=burned
    )


def walk(ds: Dataset) -> Iterator[DataElement]:
    """Every element of a data set, sequences' items included (for checks and tests)."""
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value or []:
                yield from walk(item)
