"""The platform's URLs plus two new routes nobody has decided about: the access matrix must name
them (tests/test_access_matrix.py::test_the_walk_sees_every_include_and_a_new_route_fails)."""

from django.http import HttpResponse
from django.urls import include, path

from joliba.urls import urlpatterns as platform


def _new(request, pk=None):
    return HttpResponse("new")


urlpatterns = [
    *platform,
    path("new/", include([path("named/", _new, name="matrix_new_named")])),
    path("new/<int:pk>/unnamed/", _new),
]
