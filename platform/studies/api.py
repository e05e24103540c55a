"""REST API (token for machines, session for pages). Same services and access rules as pages."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from ingest.archive import get_archive
from ingest.models import FileVerdict, Upload
from ingest.services import ingest_upload
from orthanc.client import OrthancError
from reports.models import Report
from reports.pdf import signed_report_pdf_response
from reports.services import save_report

from .access import can_read, get_study_for_user, studies_visible_to
from .models import Instance, Priority, Study
from .services import claim_study, mark_delivered
from .uploads import spooled


class InstanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields = ["id", "sop_instance_uid", "series_instance_uid", "instance_number", "modality"]


class StudySerializer(serializers.ModelSerializer):
    site = serializers.SlugRelatedField(slug_field="code", read_only=True)
    instances = InstanceSerializer(many=True, read_only=True)
    report_signed = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = [
            "id", "study_instance_uid", "site", "source", "patient_name", "patient_id",
            "patient_sex", "patient_birth_date", "accession_number", "modality", "body_part",
            "description", "study_date", "indication", "priority", "status", "created_at",
            "received_at", "pre_read_at", "queued_at", "reading_started_at", "reported_at",
            "delivered_at", "instances", "report_signed",
        ]

    def get_report_signed(self, study: Study) -> bool:
        report = getattr(study, "report", None)
        return bool(report and report.is_signed)


class VerdictSerializer(serializers.ModelSerializer):
    study = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = FileVerdict
        fields = ["filename", "size", "sha256", "outcome", "code", "reason", "sop_instance_uid",
                  "study"]


class UploadSerializer(serializers.ModelSerializer):
    verdicts = VerdictSerializer(many=True, read_only=True)

    class Meta:
        model = Upload
        fields = ["id", "created_at", "priority", "indication", "verdicts"]


class UploadRequestSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
    indication = serializers.CharField(max_length=2000)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.ROUTINE)


class ReportSerializer(serializers.ModelSerializer):
    sign = serializers.BooleanField(write_only=True, default=False)
    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = Report
        fields = ["findings", "conclusion", "sign", "signed_at", "author"]
        read_only_fields = ["signed_at"]


class StudyList(generics.ListAPIView):
    serializer_class = StudySerializer

    def get_queryset(self):
        return studies_visible_to(self.request.user).prefetch_related("instances")


class StudyDetail(generics.RetrieveAPIView):
    serializer_class = StudySerializer

    def get_object(self):
        return get_study_for_user(self.request.user, self.kwargs["pk"])


@extend_schema(request={"multipart/form-data": UploadRequestSerializer},
               responses={201: UploadSerializer})
@api_view(["POST"])
@parser_classes([MultiPartParser])
def upload_study(request):
    """Send the DICOM files of a study; every file gets a verdict (accepted or refused, why)."""
    if not request.user.is_technician:
        raise PermissionDenied("Seuls les techniciens d'un site envoient des examens.")
    data = UploadRequestSerializer(data={
        "files": request.FILES.getlist("files"),
        "indication": request.data.get("indication", ""),
        "priority": request.data.get("priority", Priority.ROUTINE),
    })
    data.is_valid(raise_exception=True)
    with spooled(data.validated_data["files"]) as incoming:
        sent = ingest_upload(
            site=request.user.site, user=request.user, files=incoming,
            indication=data.validated_data["indication"],
            priority=data.validated_data["priority"],
        )
    return Response(UploadSerializer(sent).data, status=status.HTTP_201_CREATED)


@extend_schema(request=None, responses={200: StudySerializer})
@api_view(["POST"])
def claim(request, pk: int):
    """Take a study for reading (atomic: 409 if a colleague has it)."""
    if not can_read(request.user):
        raise PermissionDenied
    study = get_study_for_user(request.user, pk)
    if not claim_study(study=study, radiologist=request.user):
        return Response({"detail": "Déjà en lecture par un confrère."}, status=409)
    return Response(StudySerializer(study).data)


@extend_schema(request=ReportSerializer, responses={200: ReportSerializer})
@api_view(["GET", "PUT"])
def report(request, pk: int):
    """Read the report (signed only, for a site) or write/sign it (the reading radiologist)."""
    study = get_study_for_user(request.user, pk)
    existing = getattr(study, "report", None)
    if request.method == "GET":
        if not existing or not (existing.is_signed or can_read(request.user)):
            raise Http404
        if existing.is_signed and request.user.is_technician:
            mark_delivered(study)
        return Response(ReportSerializer(existing).data)
    body = ReportSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        saved = save_report(
            study=study, author=request.user, findings=body.validated_data.get("findings", ""),
            conclusion=body.validated_data.get("conclusion", ""), sign=body.validated_data["sign"],
        )
    except DjangoPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    except DjangoValidationError as exc:
        raise ValidationError(exc.messages) from None
    return Response(ReportSerializer(saved).data)


@extend_schema(responses={(200, "application/pdf"): bytes})
@api_view(["GET"])
def report_pdf_api(request, pk: int):
    return signed_report_pdf_response(user=request.user, study=get_study_for_user(request.user, pk))


@extend_schema(responses={(200, "image/png"): bytes})
@api_view(["GET"])
def preview(request, pk: int, instance_pk: int):
    study = get_study_for_user(request.user, pk)
    try:
        instance = study.instances.get(pk=instance_pk)
        png = get_archive().instance_preview_png(instance.orthanc_id)
    except (Instance.DoesNotExist, OrthancError):
        raise Http404 from None
    return HttpResponse(png, content_type="image/png")
