from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import Site, User


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "region", "phone", "email")
    search_fields = ("code", "name", "region")


@admin.register(User)
class JolibaUserAdmin(UserAdmin):
    list_display = ("username", "first_name", "last_name", "role", "site", "is_active")
    list_filter = ("role", "site", "is_active")
    fieldsets = (*(UserAdmin.fieldsets or ()), ("Joliba", {"fields": ("role", "site", "phone")}))
    add_fieldsets = (*UserAdmin.add_fieldsets, ("Joliba", {"fields": ("role", "site")}))
