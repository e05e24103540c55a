from django.urls import path

from . import views

urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("rows/", views.worklist_rows, name="worklist_rows"),
    path("<int:pk>/claim/", views.claim, name="claim"),
    path("<int:pk>/release/", views.release, name="release"),
    path("<int:pk>/return/", views.return_study, name="return_study"),
    path("<int:pk>/read/", views.read, name="read"),
    path("<int:pk>/images/<int:instance_pk>/heatmap.png", views.heatmap, name="ai_heatmap"),
]
