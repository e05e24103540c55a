from django.contrib import admin

from .models import Alert, AlertAttempt, GatewayState, NotificationSettings, OnCallEntry, SiteAlertSettings


class AttemptInline(admin.TabularInline):
    model = AlertAttempt
    extra = 0
    readonly_fields = [
        "started_at",
        "finished_at",
        "outcome",
        "backend",
        "gateway_id",
        "error_code",
        "error",
        "dlr_status",
        "dlr_at",
    ]
    can_delete = False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "category", "channel", "address", "status", "attempts", "acked_at"]
    list_filter = ["status", "kind", "category", "channel"]
    search_fields = ["chain", "address", "dedupe_key"]
    readonly_fields = [f.name for f in Alert._meta.fields]
    inlines = [AttemptInline]


@admin.register(OnCallEntry)
class OnCallEntryAdmin(admin.ModelAdmin):
    list_display = ["role", "position", "user", "active"]
    list_editable = ["position", "active"]
    list_filter = ["role", "active"]


admin.site.register(NotificationSettings)
admin.site.register(SiteAlertSettings)
admin.site.register(GatewayState)
