from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

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
    path("send/", include("uploads.page_urls")),
    path("worklist/", include("worklist.urls")),
    path("worklist/", include("assignment.urls")),
    path("", include("alerts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/uploads/", include("uploads.urls")),
    path("api/v1/", include("joliba.api_urls")),
]
