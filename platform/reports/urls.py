from django.urls import path

from . import views

# Mounted under studies/<int:pk>/.
urlpatterns = [
    path("report/", views.report_page, name="report"),
    path("report/edit/", views.edit_report, name="report_edit"),
    path("report/sign/", views.sign_report, name="report_sign"),
    path("report/amend/", views.amend, name="report_amend"),
    path("report.pdf", views.report_pdf_view, name="report_pdf"),
]
