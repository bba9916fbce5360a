from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from portal.models import Guardian, Organisation, Student, User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "role", "is_active", "is_staff", "last_login"]
    list_filter = ["role", "is_active", "is_staff"]
    fieldsets = [
        *BaseUserAdmin.fieldsets,
        (
            "Portal",
            {
                "fields": [
                    "role",
                    "guardian",
                    "student",
                    "recovery_email",
                    "recovery_email_verified_at",
                    "activated_at",
                    "must_change_password",
                    "language",
                ]
            },
        ),
    ]
    raw_id_fields = ["guardian", "student"]


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "type", "identifier", "active"]
    search_fields = ["name", "identifier"]


@admin.register(Student)
class StudentAdmin(admin.ModelAdmin):
    list_display = ["student_number", "family_name", "given_name", "grade", "school", "active"]
    search_fields = ["student_number", "family_name", "given_name"]
    exclude = ["birth_date"]


@admin.register(Guardian)
class GuardianAdmin(admin.ModelAdmin):
    list_display = [
        "family_name",
        "given_name",
        "role",
        "email_shared",
        "unprovisioned_reason",
        "active",
    ]
    list_filter = ["role", "email_shared", "unprovisioned_reason", "active"]
    search_fields = ["family_name", "given_name", "email_normalised"]
