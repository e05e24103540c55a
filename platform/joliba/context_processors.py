from django.http import HttpRequest

from studies import access


def navigation(request: HttpRequest) -> dict[str, dict[str, bool]]:
    """What the header offers this user, as studies.access decides."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {
            "nav": {"may_read": False, "may_send": False, "may_see_load": False, "may_manage_alerts": False}
        }
    return {
        "nav": {
            "may_read": access.may_read_studies(user),
            "may_send": access.may_send_for_site(user),
            "may_see_load": access.may_see_team_load(user),
            "may_manage_alerts": access.may_manage_alerts(user),
            "may_manage_tokens": access.may_open_tokens_page(user),  # absent above: false
            "may_see_audit": access.may_see_audit(user),
            "may_see_dashboard": access.may_see_dashboard(user),
            "may_export_patient": access.may_export_patient(user),
        }
    }
