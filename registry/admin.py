"""Admin for platform admins: read-mostly. Statuses change only through services, and
personal identifiers are never shown in clear here."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from blacklist_portal.admin import AuditedModelAdmin, ReadOnlyAdmin, portal_admin

from .models import Entry, Evidence, FeedSource, ImportBatch, Subject


@admin.register(Subject, site=portal_admin)
class SubjectAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ["pk", "subject_type", "id_type", "id_masked", "name_masked", "created_at"]
    list_filter = ["subject_type", "id_type"]
    fields = ["subject_type", "id_type", "id_masked", "name_masked", "phone_masked", "created_at"]
    readonly_fields = fields
    show_full_result_count = False


@admin.register(Entry, site=portal_admin)
class EntryAdmin(SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ["pk", "member", "contract_no", "category", "status", "loan_amount", "submitted_at"]
    list_filter = ["status", "category", "source"]
    list_select_related = ["member"]
    search_fields = ["contract_no"]
    raw_id_fields = ["subject", "submitted_by", "reviewed_by", "import_batch"]
    show_full_result_count = False


@admin.register(ImportBatch, site=portal_admin)
class ImportBatchAdmin(ReadOnlyAdmin):
    list_display = ["pk", "member", "filename", "status", "total_rows", "error_rows", "created_at"]
    list_filter = ["status", "is_feed"]
    list_select_related = ["member"]


@admin.register(Evidence, site=portal_admin)
class EvidenceAdmin(ReadOnlyAdmin):
    list_display = ["pk", "original_name", "kind", "size", "uploaded_at"]


@admin.register(FeedSource, site=portal_admin)
class FeedSourceAdmin(SimpleHistoryAdmin, AuditedModelAdmin):
    list_display = ["institution", "source", "auto_approve"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "institution":
            from blacklist_portal.accounts.models import Institution

            kwargs["queryset"] = Institution.objects.filter(kind__in=["court_source", "bureau"])
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
