from django.urls import path

from . import views

# Mounted under worklist/ beside the worklist's own routes (joliba/urls.py).
urlpatterns = [
    path("team/", views.team, name="team_load"),
    path("opinions/", views.opinion_list, name="opinions"),
    path("opinions/<int:opinion_pk>/", views.opinion, name="opinion"),
    path("<int:pk>/hand-over/", views.hand_over, name="hand_over"),
    path("<int:pk>/reassign/", views.reassign, name="reassign"),
    path("<int:pk>/consult/", views.consult, name="consult"),
    path("<int:pk>/opinion/", views.ask_opinion, name="ask_opinion"),
    path("<int:pk>/same-patient/<int:other_pk>/", views.judge_patient, name="judge_patient"),
]
