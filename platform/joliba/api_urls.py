from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token

from studies import api

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api_token"),
    path("studies/", api.StudyList.as_view(), name="api_studies"),
    path("studies/upload/", api.upload_study, name="api_upload"),
    path("studies/<int:pk>/", api.StudyDetail.as_view(), name="api_study"),
    path("studies/<int:pk>/claim/", api.claim, name="api_claim"),
    path("studies/<int:pk>/report/", api.report, name="api_report"),
    path("studies/<int:pk>/report.pdf", api.report_pdf_api, name="api_report_pdf"),
    path("studies/<int:pk>/images/<int:instance_pk>.png", api.preview, name="api_preview"),
]
