"""Mounted under /studies/<pk>/ (joliba/urls.py)."""

from django.urls import path

from . import views

urlpatterns = [
    path("viewer.json", views.manifest, name="viewer_manifest"),
    path("images/<int:instance_pk>/r/<str:name>.webp", views.rendition, name="viewer_rendition"),
    path("images/<int:instance_pk>/original.dcm", views.original, name="viewer_original"),
]
