from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from .events import announce
from .models import Modality, ReaderProfile, Site, User


class SecondFactorAdminSite(admin.AdminSite):
    """The admin site opens only to a session that proved the second factor (when
    JOLIBA_2FA_REQUIRED): its login is the platform's (django-two-factor-auth patches it)."""

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not settings.JOLIBA_2FA_REQUIRED or request.user.is_verified()  # type: ignore[union-attr]


admin.site.__class__ = SecondFactorAdminSite


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "region", "phone", "email")
    search_fields = ("code", "name", "region")


class ReaderProfileForm(forms.ModelForm):
    # The modalities as tick boxes: the admin chooses from the vocabulary, never types codes.
    modalities = forms.MultipleChoiceField(
        label=_("modalités lues"),
        choices=Modality.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = ReaderProfile
        fields = ("modalities", "all_sites", "sites", "max_in_hand")
        widgets = {"sites": forms.CheckboxSelectMultiple}


class ReaderProfileInline(admin.StackedInline):
    model = ReaderProfile
    form = ReaderProfileForm
    can_delete = True
    extra = 0
    max_num = 1
    verbose_name = _("profil de lecture (radiologues)")


@admin.register(User)
class JolibaUserAdmin(UserAdmin):
    list_display = ("username", "first_name", "last_name", "role", "site", "is_active")
    list_filter = ("role", "site", "is_active")
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Joliba", {"fields": ("role", "site", "phone")}))
    add_fieldsets = (*UserAdmin.add_fieldsets, ("Joliba", {"fields": ("role", "site")}))
    inlines = (ReaderProfileInline,)
    actions = ("remove_second_factor",)

    @admin.action(description=_("Retirer la double authentification (téléphone perdu)"))
    def remove_second_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        """A lost phone: the user's TOTP devices and backup codes are deleted, on the record; they
        enrol a new phone at their next sign-in (docs/authentication.md)."""
        for user in queryset:
            removed = TOTPDevice.objects.filter(user=user).delete()[0]
            removed += StaticDevice.objects.filter(user=user).delete()[0]
            announce("otp.removed", request=request, obj=user, detail={"devices": removed})
        self.message_user(
            request, _("Double authentification retirée : enrôlement au prochain accès."), messages.SUCCESS
        )


@admin.register(ReaderProfile)
class ReaderProfileAdmin(admin.ModelAdmin):
    form = ReaderProfileForm
    list_display = ("user", "modalities", "all_sites", "max_in_hand")
    list_filter = ("all_sites", "sites")
    search_fields = ("user__username", "user__last_name")
    fields = ("user", "modalities", "all_sites", "sites", "max_in_hand")
