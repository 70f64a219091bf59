"""Read-only admin for platform admins. Disputes move only through disputes.services, and the
applicant's name and contact (encrypted) are never shown here; attachments are downloaded
only through the permission-checked, audited portal view."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from blacklist_portal.admin import portal_admin

from .models import Attachment, Dispute, DisputeEvent, Reminder


class _ReadOnly:
    """Viewable by whoever the portal's admin site lets in (verified platform admins: roles
    carry capabilities, not Django's per-model permissions); never changed here."""

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


class EventInline(_ReadOnly, admin.TabularInline):
    model = DisputeEvent
    fields = ["at", "action", "from_status", "to_status", "actor", "note"]
    readonly_fields = fields
    extra = 0


class AttachmentInline(_ReadOnly, admin.TabularInline):
    model = Attachment
    fields = ["original_name", "kind", "size", "sha256", "uploaded_by", "uploaded_at"]
    readonly_fields = fields
    extra = 0


@admin.register(Dispute, site=portal_admin)
class DisputeAdmin(_ReadOnly, SimpleHistoryAdmin):
    list_display = ["receipt_no", "status", "claim_type", "channel", "received_at", "decision_due_at", "assignee", "decision"]
    list_filter = ["status", "claim_type", "channel", "decision"]
    list_select_related = ["assignee"]
    search_fields = ["receipt_no"]
    show_full_result_count = False
    fields = [
        "receipt_no", "subject", "claim_type", "description", "applicant_name_masked", "channel",
        "filed_by_member", "taken_by", "status", "assignee", "received_at", "decision_due_at",
        "extension_reason", "verification_due_at", "verification_answer", "verification_note",
        "verification_answered_at", "decision", "decision_reasons", "corrections", "decided_by",
        "decided_at", "appeal_due_at", "appeal_reason", "appealed_at", "reconsidered_by",
        "reconsideration", "reconsideration_reasons", "closed_at",
    ]
    readonly_fields = fields
    inlines = [EventInline, AttachmentInline]


@admin.register(Reminder, site=portal_admin)
class ReminderAdmin(_ReadOnly, admin.ModelAdmin):
    list_display = ["dispute", "kind", "step", "sent_at"]
    list_filter = ["kind"]
    list_select_related = ["dispute"]
    show_full_result_count = False
