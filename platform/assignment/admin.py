from django.contrib import admin

from .models import PatientLink, SecondOpinion, Shift


@admin.register(Shift)
class ShiftAdmin(admin.ModelAdmin):
    """The rota: an admin adds, moves and removes on-shift periods here."""

    list_display = ("radiologist", "starts_at", "ends_at", "note")
    list_filter = ("radiologist",)
    date_hierarchy = "starts_at"
    ordering = ("-starts_at",)


@admin.register(SecondOpinion)
class SecondOpinionAdmin(admin.ModelAdmin):
    list_display = ("study", "asked_by", "asked_of", "asked_at", "answered_at")
    readonly_fields = ("study", "asked_by", "asked_of", "question", "answer", "asked_at", "answered_at")

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # asked from the reading page, by the radiologist holding the study


@admin.register(PatientLink)
class PatientLinkAdmin(admin.ModelAdmin):
    list_display = ("site_a", "site_b", "verdict", "decided_by", "decided_at")
    list_filter = ("verdict",)
