from django.urls import path

from . import views

urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("<int:pk>/", views.study_detail, name="study_detail"),
    path("<int:pk>/images/<int:instance_pk>/preview.webp", views.instance_preview, name="instance_preview"),
]
