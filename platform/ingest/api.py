"""The plain sending through the API (multipart): every file gets a verdict."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from studies.access import may_send_for_site
from studies.models import Priority, Study

from .incoming import spooled
from .models import FileVerdict, Submission
from .quota import LimitExceeded, admitted_request, check_rate
from .services import receive_submission
from .verdicts import describe


class VerdictSerializer(serializers.ModelSerializer):
    study: serializers.PrimaryKeyRelatedField[Study] = serializers.PrimaryKeyRelatedField(read_only=True)
    # Rendered from the code in the request's language (ingest.verdicts); "" for a plain acceptance.
    reason = serializers.CharField(read_only=True)

    class Meta:
        model = FileVerdict
        fields = ["filename", "size", "sha256", "outcome", "code", "reason", "sop_instance_uid", "study"]


class SubmissionSerializer(serializers.ModelSerializer):
    verdicts = VerdictSerializer(many=True, read_only=True)

    class Meta:
        model = Submission
        fields = ["id", "created_at", "priority", "indication", "verdicts"]


class UploadRequestSerializer(serializers.Serializer):
    # An empty file is a file like any other: the ingest gives it its own verdict ("empty").
    files = serializers.ListField(child=serializers.FileField(allow_empty_file=True), allow_empty=False)
    indication = serializers.CharField(max_length=2000)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.ROUTINE)


@extend_schema(
    request={"multipart/form-data": UploadRequestSerializer}, responses={201: SubmissionSerializer}
)
@api_view(["POST"])
@parser_classes([MultiPartParser])
def upload_study(request):
    """Send the DICOM files of a study; every file gets a verdict (accepted or refused, why)."""
    if not may_send_for_site(request.user):
        raise PermissionDenied(describe("forbidden"))
    user = request.user
    try:
        # The limits of every route (ingest.quota): rate, request size, site quota, daily budget.
        check_rate(request, "upload_api", {"user": user.pk, "site": user.site_id})
        with admitted_request(request, user.site_id, route="api"):
            data = UploadRequestSerializer(
                data={
                    "files": request.FILES.getlist("files"),
                    "indication": request.data.get("indication", ""),
                    "priority": request.data.get("priority", Priority.ROUTINE),
                }
            )
            data.is_valid(raise_exception=True)
            with spooled(data.validated_data["files"]) as incoming:
                sent = receive_submission(
                    site=user.site,
                    sender=user,
                    files=incoming,
                    indication=data.validated_data["indication"],
                    priority=data.validated_data["priority"],
                )
    except LimitExceeded as exc:
        response = Response({"code": exc.code, "reason": exc.reason}, status=exc.status)
        if exc.retry_after is not None:
            response["Retry-After"] = str(max(1, int(exc.retry_after)))
        return response
    return Response(SubmissionSerializer(sent).data, status=status.HTTP_201_CREATED)
