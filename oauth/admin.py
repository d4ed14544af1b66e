from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from oauth.models import Application, Membership, Organization, User

admin.site.register(User, UserAdmin)


class MembershipInline(admin.TabularInline[Membership, Organization]):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin[Organization]):
    list_display = ["name", "id", "created_at"]
    search_fields = ["id", "name"]
    readonly_fields = ["id", "created_at"]
    inlines = [MembershipInline]


# Registered by django-oauth-toolkit, through OAUTH2_PROVIDER["APPLICATION_ADMIN_CLASS"].
class ApplicationAdmin(admin.ModelAdmin[Application]):
    list_display = ["name", "id", "organization", "client_type", "created"]
    search_fields = ["id", "name", "client_id"]
    list_filter = ["client_type"]
    readonly_fields = ["id", "client_id", "created", "updated"]
    exclude = ["client_secret"]
