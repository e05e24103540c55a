"""Machine tokens in the Django admin: listed, searched, revoked (an action); never added or
edited here (a secret is shown once, on the page that issues it: « Jetons des agents »), never
deleted (a revoked token stays on record). The hash is not shown either."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import service
from .models import MachineToken


class RevokedFilter(admin.SimpleListFilter):
    title = _("révoqué")
    parameter_name = "revoked"

    def lookups(self, request, model_admin):
        return [("yes", _("Oui")), ("no", _("Non"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(revoked_at__isnull=True)
        return queryset


@admin.register(MachineToken)
class MachineTokenAdmin(admin.ModelAdmin):
    SHOWN = (
        "name",
        "prefix",
        "user",
        "site",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
        "revoked_by",
    )  # not `digest`: nothing derived from the secret is shown
    list_display = list(SHOWN[:-1])  # the list leaves out who revoked (the page shows it)
    list_filter = [RevokedFilter, "site"]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user", "site", "created_by"]
    fields = SHOWN
    readonly_fields = SHOWN
    actions = ["revoke_tokens"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: MachineToken | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: MachineToken | None = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tokens.change_machinetoken")

    @admin.action(description=_("Révoquer les jetons choisis"), permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[MachineToken]) -> None:
        revoked = sum(service.revoke(token, by=request.user, request=request) for token in queryset)  # type: ignore[arg-type]
        self.message_user(
            request,
            ngettext("%(n)d jeton révoqué.", "%(n)d jetons révoqués.", revoked) % {"n": revoked},
            messages.SUCCESS,
        )
