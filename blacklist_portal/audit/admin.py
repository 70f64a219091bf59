from django.contrib import admin

from blacklist_portal.admin import portal_admin

from .models import AuditEvent


@admin.register(AuditEvent, site=portal_admin)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["seq", "occurred_at", "actor", "institution", "action", "target_type", "target_id"]
    list_filter = ["action"]
    search_fields = ["action", "target_type", "target_id"]
    list_select_related = ["actor", "institution"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
