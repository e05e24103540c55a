from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import IsAuthenticated

from health.views import metrics
from joliba.security import csp_report
from studies.views import home

urlpatterns = [
    path("", home, name="home"),
    path(
        "accounts/", include("accounts.urls")
    ),  # auth: login with a second factor, account, reset (first: wins)
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("studies/send/", include("ingest.urls")),
    path("studies/<int:pk>/", include("reports.urls")),
    path("studies/<int:pk>/", include("viewer.urls")),
    path("studies/", include("studies.urls")),
    path("", include("privacy.urls")),  # integrity: de-identified export, patient export
    path("send/", include("uploads.page_urls")),
    path("worklist/", include("worklist.urls")),
    path("worklist/", include("assignment.urls")),
    path("", include("alerts.urls")),
    path("audit/", include("audit.urls")),
    path("tokens/", include("tokens.urls")),
    path("health/", include("health.urls")),  # ops: liveness and readiness (docs/operations.md)
    path("metrics", metrics, name="metrics"),  # ops: Prometheus, loopback or token (docs/operations.md)
    path("dashboard/", include("dashboard.urls")),  # ops: the coordinator's dashboard
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[IsAuthenticated]), name="schema"),
    path("csp-report/", csp_report, name="csp_report"),
    path("api/v1/uploads/", include("uploads.urls")),
    path("api/v1/", include("joliba.api_urls")),
]
