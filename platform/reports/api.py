"""Report API: read it (signed, for a site), write and sign it (the radiologist reading)."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from studies.access import get_study_for_user, signed_in

from .models import Report
from .pdf import report_pdf_response
from .services import open_report, save_report


class ReportSerializer(serializers.ModelSerializer):
    sign = serializers.BooleanField(write_only=True, default=False)
    author = serializers.CharField(source="author.username", read_only=True)

    class Meta:
        model = Report
        fields = ["findings", "conclusion", "sign", "signed_at", "author"]
        read_only_fields = ["signed_at"]


@extend_schema(request=ReportSerializer, responses={200: ReportSerializer})
@api_view(["GET", "PUT"])
def report(request: Request, pk: int) -> Response:
    """Read the report (signed only, for a site) or write/sign it (the reading radiologist)."""
    study = get_study_for_user(request.user, pk)
    if request.method == "GET":
        return Response(ReportSerializer(open_report(user=signed_in(request), study=study)).data)
    body = ReportSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    try:
        saved = save_report(
            study=study,
            author=signed_in(request),
            findings=body.validated_data.get("findings", ""),
            conclusion=body.validated_data.get("conclusion", ""),
            sign=body.validated_data["sign"],
        )
    except DjangoPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    except DjangoValidationError as exc:
        raise ValidationError(exc.messages) from None
    return Response(ReportSerializer(saved).data)


@extend_schema(responses={(200, "application/pdf"): bytes})
@api_view(["GET"])
def report_pdf(request: Request, pk: int) -> HttpResponse:
    report = open_report(user=signed_in(request), study=get_study_for_user(request.user, pk))
    if not report.is_signed:
        raise Http404
    response = report_pdf_response(report)
    response["Cache-Control"] = "no-store"
    return response
