"""REST API of studies (token for machines, session for pages). Same rules as the pages:
studies.access decides who sees what, studies.lifecycle every change of status."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Site, User
from orthanc.client import OrthancError

from . import access, lifecycle
from .archive import get_archive
from .lifecycle import Transition
from .models import Instance, Study
from .renditions import preview_webp


class InstanceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Instance
        fields = ["id", "sop_instance_uid", "series_instance_uid", "instance_number", "modality"]


class EventSerializer(serializers.Serializer):
    transition = serializers.CharField()
    from_status = serializers.CharField()
    to_status = serializers.CharField()
    at = serializers.DateTimeField()


class StudySerializer(serializers.ModelSerializer):
    site: serializers.SlugRelatedField[Site] = serializers.SlugRelatedField(slug_field="code", read_only=True)
    instances = InstanceSerializer(many=True, read_only=True)
    events = EventSerializer(many=True, read_only=True)
    received_at = serializers.DateTimeField(read_only=True)
    reported_at = serializers.DateTimeField(read_only=True)
    delivered_at = serializers.DateTimeField(read_only=True)
    report_signed = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = [
            "id",
            "study_instance_uid",
            "site",
            "source",
            "patient_name",
            "patient_id",
            "patient_sex",
            "patient_birth_date",
            "accession_number",
            "modality",
            "body_part",
            "description",
            "study_date",
            "indication",
            "priority",
            "status",
            "expected_instances",
            "created_at",
            "received_at",
            "reported_at",
            "delivered_at",
            "events",
            "instances",
            "report_signed",
        ]

    def get_report_signed(self, study: Study) -> bool:
        report = getattr(study, "report", None)
        return bool(report and report.is_signed)


class StudyList(generics.ListAPIView):
    serializer_class = StudySerializer

    def get_queryset(self):
        return access.studies_visible_to(self.request.user).prefetch_related("instances", "events")


class StudyDetail(generics.RetrieveAPIView):
    serializer_class = StudySerializer

    def get_object(self):
        return access.get_study_for_user(self.request.user, self.kwargs["pk"])


class MoveSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(required=False, help_text="reassign, hand-over: the radiologist's id")
    reason = serializers.CharField(required=False, max_length=40, help_text="return: the reason code")


def _move(request: Request, pk: int, event: str) -> Response:
    study = access.get_study_for_user(request.user, pk)
    body = MoveSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    assignee = None
    if "assignee" in body.validated_data:
        assignee = User.objects.filter(pk=body.validated_data["assignee"]).first()
    try:
        lifecycle.transition(
            study,
            event,
            actor=access.signed_in(request),
            assignee=assignee,
            reason_code=body.validated_data.get("reason", ""),
        )
    except lifecycle.TransitionRefused as exc:
        status = {
            "taken": 409,
            "not_allowed_now": 409,
            "full": 409,
            "assignee_full": 409,
            "no_reason": 400,
            "no_assignee": 400,
        }.get(exc.code, 403)
        return Response({"code": exc.code, "detail": exc.message}, status=status)
    return Response(StudySerializer(study).data)


@extend_schema(request=None, responses={200: StudySerializer})
@api_view(["POST"])
def claim(request: Request, pk: int) -> Response:
    """Take a complete study for reading (atomic: 409 if a colleague has it or your hands are
    full; 404 if you may not read it: its modality or its site is not yours)."""
    return _move(request, pk, Transition.CLAIM)


@extend_schema(request=None, responses={200: StudySerializer})
@api_view(["POST"])
def release(request: Request, pk: int) -> Response:
    """Give a study back to the worklist (the radiologist holding it, or an admin)."""
    return _move(request, pk, Transition.RELEASE)


@extend_schema(request=MoveSerializer, responses={200: StudySerializer})
@api_view(["POST"])
def return_study(request: Request, pk: int) -> Response:
    """Not diagnostic: back to the site with a reason (`reason`: a studies.models.ReturnReason)."""
    return _move(request, pk, Transition.RETURN)


@extend_schema(request=MoveSerializer, responses={200: StudySerializer})
@api_view(["POST"])
def reassign(request: Request, pk: int) -> Response:
    """Give a study being read to another radiologist (admin)."""
    return _move(request, pk, Transition.REASSIGN)


@extend_schema(request=MoveSerializer, responses={200: StudySerializer})
@api_view(["POST"])
def hand_over(request: Request, pk: int) -> Response:
    """The radiologist holding a study passes it to a colleague who may read it (`assignee`)."""
    return _move(request, pk, Transition.HAND_OVER)


@extend_schema(responses={(200, "image/webp"): bytes})
@api_view(["GET"])
def preview(request: Request, pk: int, instance_pk: int) -> HttpResponse:
    study = access.get_study_for_user(request.user, pk)
    try:
        data = get_archive().instance_file(study.instances.get(pk=instance_pk).orthanc_id)
    except (Instance.DoesNotExist, OrthancError):
        raise Http404 from None
    return HttpResponse(preview_webp(data), content_type="image/webp")
