"""Portal records in the admin: which legal entities each user works (exception scope)."""

from __future__ import annotations

from django.contrib import admin

from portal.models import UserLegalEntity


@admin.register(UserLegalEntity)
class UserLegalEntityAdmin(admin.ModelAdmin):
    list_display = ["user", "legal_entity"]
    list_filter = ["legal_entity"]
    search_fields = ["user__username", "legal_entity"]
