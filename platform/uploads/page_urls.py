"""Pages of the resumable upload (mounted at /send/)."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.send_page, name="send"),
]
