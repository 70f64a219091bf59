from django.contrib import admin

from blacklist_portal.admin import ReadOnlyAdmin, portal_admin

from .models import AuditEvent


@admin.register(AuditEvent, site=portal_admin)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["seq", "occurred_at", "actor", "institution", "action", "target_type", "target_id"]
    list_filter = ["action"]
    search_fields = ["action", "target_type", "target_id"]
    list_select_related = ["actor", "institution"]
    show_full_result_count = False
