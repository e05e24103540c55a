"""Report API: read it (the latest signed version and its history; the draft for radiologists),
write and sign it (the radiologist reading), amend it (its signer: a new version with a reason)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from studies import access
from studies.access import get_study_for_user, signed_in

from .models import SECTIONS, Abnormality, CriticalCategory, Language, Report, ReportVersion, VersionKind
from .services import amend_report, open_report, save_report
from .views import pdf_response


class VersionSerializer(serializers.ModelSerializer):
    turnaround_seconds = serializers.SerializerMethodField()

    class Meta:
        model = ReportVersion
        fields = [
            "number", "kind", "reason", *SECTIONS, "addendum", "language", "critical_category", "abnormality",
            "author_name", "author_title", "signed_at", "provenance", "turnaround_seconds",
        ]  # fmt: skip

    def get_turnaround_seconds(self, version: ReportVersion) -> float | None:
        turnaround = version.turnaround
        return turnaround.total_seconds() if turnaround else None


class ReportWriteSerializer(serializers.Serializer):
    indication = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    technique = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    findings = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    conclusion = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    addendum = serializers.CharField(required=False, allow_blank=True, max_length=5000)
    language = serializers.ChoiceField(choices=Language.choices, required=False)
    critical_category = serializers.ChoiceField(
        choices=[("", ""), *CriticalCategory.choices], required=False, allow_blank=True
    )
    abnormality = serializers.ChoiceField(
        choices=[("", ""), *Abnormality.choices], required=False, allow_blank=True
    )
    sign = serializers.BooleanField(default=False)
    accept_ai = serializers.BooleanField(default=False)
    # On a signed report: a new version.
    kind = serializers.ChoiceField(choices=[VersionKind.AMENDMENT, VersionKind.ADDENDUM], required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000)


def _shape(report: Report, *, with_draft: bool) -> dict[str, Any]:
    versions = list(report.versions.select_related("report__study").order_by("number"))
    latest = versions[-1] if versions else None
    shown: Any = latest if latest else report
    data: dict[str, Any] = {name: getattr(shown, name) for name in SECTIONS}
    data.update(
        critical_category=shown.critical_category,
        abnormality=shown.abnormality,
        language=shown.language,
        signed_at=latest.signed_at if latest else None,
        author=(latest.author_name if latest else report.author.username),
        version=latest.number if latest else None,
        versions=VersionSerializer(versions, many=True).data,
    )
    if with_draft:
        data["draft"] = {
            **{name: getattr(report, name) for name in SECTIONS},
            "language": report.language,
            "critical_category": report.critical_category,
            "abnormality": report.abnormality,
            "saved_at": report.updated_at,
        }
    return data


@extend_schema(request=ReportWriteSerializer, responses={200: dict})
@api_view(["GET", "PUT"])
def report(request: Request, pk: int) -> Response:
    """GET: the latest signed version and every version (a site sees only signed ones).
    PUT: save the draft, or sign it (`sign`; `accept_ai` when the text came from the AI); on a
    signed report, `kind` (amendment|addendum) and `reason` sign a new version."""
    user = signed_in(request)
    study = get_study_for_user(request.user, pk)
    if request.method == "GET":
        found = open_report(user=user, study=study)
        return Response(_shape(found, with_draft=access.may_see_ai_output(user)))
    body = ReportWriteSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    data = body.validated_data
    sections = {name: data[name] for name in SECTIONS if name in data}
    try:
        if "kind" in data:
            amend_report(
                study=study,
                author=user,
                kind=data["kind"],
                reason=data.get("reason", ""),
                sections=sections,
                addendum=data.get("addendum", ""),
                critical_category=data.get("critical_category"),
                accept_ai=data["accept_ai"],
            )
        else:
            save_report(
                study=study,
                author=user,
                sign=data["sign"],
                accept_ai=data["accept_ai"],
                reason=data.get("reason", ""),
                language=data.get("language"),
                critical_category=data.get("critical_category"),
                abnormality=data.get("abnormality"),
                **sections,
            )
    except DjangoPermissionDenied as exc:
        raise PermissionDenied(str(exc)) from None
    except DjangoValidationError as exc:
        raise ValidationError(exc.messages) from None
    saved = Report.objects.select_related("author").get(study=study)
    return Response(_shape(saved, with_draft=True))


@extend_schema(responses={(200, "application/pdf"): bytes})
@api_view(["GET"])
def report_pdf(request: Request, pk: int) -> HttpResponse:
    found = open_report(user=signed_in(request), study=get_study_for_user(request.user, pk))
    if not found.is_signed:
        raise Http404
    return pdf_response(found, request.query_params.get("version"))
