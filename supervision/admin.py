"""Read-only admin for platform admins. Complaints, violations, sanctions and alerts change
only through supervision.services (with their audit rows); complainants' names and contacts
(encrypted) are never shown here, and evidence is downloaded only through the portal's
permission-checked, audited view."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from blacklist_portal.admin import portal_admin

from .models import Complaint, ComplaintReminder, QueryAlert, Sanction, Violation, ViolationEvidence


class _ReadOnly:
    def has_module_permission(self, request):
        return self.admin_site.has_permission(request)

    def has_view_permission(self, request, obj=None):
        return self.admin_site.has_permission(request)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Complaint, site=portal_admin)
class ComplaintAdmin(_ReadOnly, SimpleHistoryAdmin):
    list_display = ["receipt_no", "member", "status", "channel", "received_at", "due_at", "assignee"]
    list_filter = ["status", "channel"]
    list_select_related = ["member", "assignee"]
    search_fields = ["receipt_no"]
    show_full_result_count = False
    fields = [
        "receipt_no", "member", "complainant_name_masked", "channel", "summary", "description", "taken_by",
        "received_at", "due_at", "status", "assignee", "reply", "replied_at", "replied_by", "closed_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("complainant_name", "complainant_contact")


@admin.register(ComplaintReminder, site=portal_admin)
class ComplaintReminderAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["complaint", "kind", "step", "sent_at"]
    list_filter = ["kind"]
    list_select_related = ["complaint"]
    show_full_result_count = False


class EvidenceInline(_ReadOnly, admin.TabularInline):
    model = ViolationEvidence
    fields = ["original_name", "kind", "size", "sha256", "uploaded_by", "uploaded_at"]
    readonly_fields = fields
    extra = 0


@admin.register(Violation, site=portal_admin)
class ViolationAdmin(_ReadOnly, SimpleHistoryAdmin):
    list_display = ["member", "type", "recorded_at", "recorded_by", "alert"]
    list_filter = ["type"]
    list_select_related = ["member", "recorded_by"]
    show_full_result_count = False
    fields = ["member", "type", "description", "alert", "recorded_by", "recorded_at"]
    readonly_fields = fields
    inlines = [EvidenceInline]


@admin.register(Sanction, site=portal_admin)
class SanctionAdmin(_ReadOnly, SimpleHistoryAdmin):
    list_display = ["member", "kind", "fine_amount", "starts_on", "ends_on", "lifted_at", "recorded_at"]
    list_filter = ["kind"]
    list_select_related = ["member"]
    show_full_result_count = False
    fields = [
        "violation", "member", "kind", "fine_amount", "suspends_queries", "suspends_reporting", "starts_on",
        "ends_on", "reason", "recorded_by", "recorded_at", "lifted_at", "lifted_by", "lift_reason",
    ]
    readonly_fields = fields


@admin.register(QueryAlert, site=portal_admin)
class QueryAlertAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["rule", "member", "day", "status", "created_at", "handled_by"]
    list_filter = ["rule", "status"]
    list_select_related = ["member", "handled_by"]
    show_full_result_count = False
    # The linked queries are listed on the portal's alert page (a spike links thousands).
    fields = ["rule", "member", "day", "key", "details", "status", "created_at", "handled_by", "handled_at", "note"]
    readonly_fields = fields
