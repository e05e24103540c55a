from django.urls import path

from ingest import api as ingest_api
from reports import api as reports_api
from studies import api as studies_api
from tokens import api as tokens_api

urlpatterns = [
    path("auth/token/", tokens_api.obtain_token, name="api_token"),
    path("studies/", studies_api.StudyList.as_view(), name="api_studies"),
    path("studies/upload/", ingest_api.upload_study, name="api_upload"),
    path("studies/<int:pk>/", studies_api.StudyDetail.as_view(), name="api_study"),
    path("studies/<int:pk>/claim/", studies_api.claim, name="api_claim"),
    path("studies/<int:pk>/release/", studies_api.release, name="api_release"),
    path("studies/<int:pk>/reassign/", studies_api.reassign, name="api_reassign"),
    path("studies/<int:pk>/hand-over/", studies_api.hand_over, name="api_hand_over"),
    path("studies/<int:pk>/return/", studies_api.return_study, name="api_return"),
    path("studies/<int:pk>/report/", reports_api.report, name="api_report"),
    path("studies/<int:pk>/report.pdf", reports_api.report_pdf, name="api_report_pdf"),
    path("studies/<int:pk>/images/<int:instance_pk>/preview.webp", studies_api.preview, name="api_preview"),
]
