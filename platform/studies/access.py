"""Who may see which study: the one place that decides, used by every view and API."""

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User

from .models import Study


def studies_visible_to(user: User) -> QuerySet[Study]:
    if not user.is_authenticated or not user.is_active:
        return Study.objects.none()
    if user.is_joliba_admin or user.is_radiologist:
        return Study.objects.all()
    if user.is_technician and user.site_id:
        return Study.objects.filter(site_id=user.site_id)
    return Study.objects.none()


def get_study_for_user(user: User, pk: int) -> Study:
    """The study if this user may see it, else 404 (never 403: do not confirm it exists)."""
    try:
        return studies_visible_to(user).select_related("site").get(pk=pk)
    except (Study.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def can_read(user: User) -> bool:
    """May write and sign reports."""
    return user.is_authenticated and user.is_active and user.is_radiologist
