from django.urls import path

from . import views

urlpatterns = [
    path("", views.upload, name="upload"),
    path("<uuid:upload_id>/", views.upload_result, name="upload_result"),
]
