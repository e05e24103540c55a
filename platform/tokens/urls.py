from django.urls import path

from . import views

app_name = "tokens"

urlpatterns = [
    path("", views.token_list, name="list"),
    path("new/", views.issue, name="issue"),
    path("<int:pk>/revoke/", views.revoke, name="revoke"),
]
