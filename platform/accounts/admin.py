from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _

from .models import Modality, ReaderProfile, Site, User


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


@admin.register(ReaderProfile)
class ReaderProfileAdmin(admin.ModelAdmin):
    form = ReaderProfileForm
    list_display = ("user", "modalities", "all_sites", "max_in_hand")
    list_filter = ("all_sites", "sites")
    search_fields = ("user__username", "user__last_name")
    fields = ("user", "modalities", "all_sites", "sites", "max_in_hand")
