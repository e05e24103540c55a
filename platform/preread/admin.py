from functools import partial

from django.contrib import admin
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from .models import ImageResult, PreRead, ShadowModel
from .tasks import rerun_preread


class ImageResultInline(admin.TabularInline):
    model = ImageResult
    extra = 0
    can_delete = False
    fields = (
        "instance",
        "status",
        "urgency",
        "critical_flags",
        "model_name",
        "model_version",
        "reason_code",
        "reason_params",
    )
    readonly_fields = fields


@admin.register(PreRead)
class PreReadAdmin(admin.ModelAdmin):
    list_display = [
        "study",
        "status",
        "model_name",
        "model_version",
        "urgency",
        "is_current",
        "attempts",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "is_current", "model_name", "demo"]
    readonly_fields = [f.name for f in PreRead._meta.fields]
    inlines = [ImageResultInline]
    actions = ["run_again"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description=_("Relancer la pré-lecture avec les modèles actuels"))
    def run_again(self, request, queryset) -> None:
        for study_id in set(queryset.values_list("study_id", flat=True)):
            transaction.on_commit(partial(rerun_preread.delay, study_id))
        self.message_user(request, _("Pré-lecture relancée (l'historique est conservé)."))


@admin.register(ShadowModel)
class ShadowModelAdmin(admin.ModelAdmin):
    """Models and thresholds under trial (shadow mode, docs/dashboard.md): measured on live
    cases by the dashboard, never shown to readers nor used to rank."""

    list_display = ["name", "package_dir", "threshold", "active", "created_at"]
    list_filter = ["active"]
