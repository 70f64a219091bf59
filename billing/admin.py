from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from blacklist_portal.admin import AuditedModelAdmin, portal_admin

from .models import PriceRule, PriceSchedule


class PriceRuleInline(admin.TabularInline):
    model = PriceRule
    extra = 3


@admin.register(PriceSchedule, site=portal_admin)
class PriceScheduleAdmin(SimpleHistoryAdmin, AuditedModelAdmin):
    """Prices: a new schedule with a future start date replaces the current one then. A
    schedule already in force is not edited (that would rewrite what past fees meant)."""

    list_display = ["name", "effective_from", "created_by"]
    inlines = [PriceRuleInline]

    def has_change_permission(self, request, obj=None):
        from django.utils import timezone

        if obj is not None and obj.effective_from <= timezone.now():
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
