from django.urls import path

from . import views

urlpatterns = [
    path("studies/<int:pk>/deidentified/", views.deidentify_study, name="deidentify_study"),
    path("privacy/patient-export/", views.export_patient, name="patient_export"),
]
