from django.urls import path

from . import views

urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("<int:pk>/claim/", views.claim, name="claim"),
    path("<int:pk>/read/", views.read, name="read"),
]
