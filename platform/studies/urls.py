from django.urls import path

from . import views

urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("send/", views.upload, name="upload"),
    path("send/<uuid:upload_id>/", views.upload_result, name="upload_result"),
    path("<int:pk>/", views.study_detail, name="study_detail"),
    path("<int:pk>/images/<int:instance_pk>.png", views.instance_preview, name="instance_preview"),
    path("<int:pk>/report.pdf", views.report_pdf_view, name="report_pdf"),
]
