from django.contrib import admin

from .models import ReportExport, ReportTemplate, ReportVersion


@admin.register(ReportTemplate)
class ReportTemplateAdmin(admin.ModelAdmin):
    list_display = ["code", "name_fr", "modalities", "body_parts", "active"]
    list_filter = ["active"]


@admin.register(ReportVersion)
class ReportVersionAdmin(admin.ModelAdmin):
    """Signed versions are read-only: a change is a new version, made from the reading side."""

    list_display = ["report", "number", "kind", "author_name", "signed_at", "critical_category"]
    readonly_fields = [f.name for f in ReportVersion._meta.fields]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False  # viewing stays (view permission); a POST answers 403, never the model's refusal


@admin.register(ReportExport)
class ReportExportAdmin(admin.ModelAdmin):
    list_display = ["version", "state", "attempts", "tried_at", "done_at"]
    list_filter = ["state"]
