from django.urls import path

from . import tus

urlpatterns = [
    path("", tus.uploads, name="tus_uploads"),
    path("manifests/", tus.manifests, name="tus_manifests"),
    path("<uuid:upload_id>/", tus.upload_detail, name="tus_upload"),
]
