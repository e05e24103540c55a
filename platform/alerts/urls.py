from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("a/<str:token>/", views.acknowledge_link, name="ack"),  # short: it goes in an SMS
    path("alerts/", views.board, name="board"),
    path("alerts/<int:pk>/resend/", views.resend, name="resend"),
    path("alerts/duty/", views.duty, name="duty"),
    path("alerts/phone/<int:pk>/done/", views.phone_done, name="phone_done"),
    path("alerts/settings/", views.my_settings, name="settings"),
    path("alerts/kannel/incoming/", views.kannel_incoming, name="kannel_incoming"),
    path("alerts/kannel/dlr/", views.kannel_dlr, name="kannel_dlr"),
]
