"""Fetch-and-authorise helpers for the registry. Another institution's row is a 404."""

from django.http import Http404

from blacklist_portal.accounts.models import User

from .models import Entry, Evidence, ImportBatch, Subject


def _reads_everything(user: User) -> bool:
    """Platform review staff and regulators see every member's entries and their evidence."""
    return user.has_perm("accounts.review_entry") or user.has_perm("accounts.supervise")


def _takes_statements(user: User) -> bool:
    """Platform staff who take disputes and subjects' statements (counter clerks, platform
    admins) open entries, but not their evidence files."""
    return user.has_perm("accounts.take_dispute") and user.institution.kind == "operator"


def access_entry(user: User, pk: int, *, for_write: bool = False) -> Entry:
    qs = Entry.objects.select_related("subject", "member", "submitted_by", "reviewed_by")
    try:
        entry = qs.get(pk=pk)
    except Entry.DoesNotExist:
        raise Http404 from None
    if for_write:
        # Only the reporting member changes its own entries.
        if entry.member_id != user.institution_id or not user.has_perm("accounts.report_entry"):
            raise Http404
        return entry
    if entry.member_id == user.institution_id and user.has_perm("accounts.report_entry"):
        return entry
    if _reads_everything(user) or _takes_statements(user):
        return entry
    raise Http404


def access_evidence(user: User, pk: int) -> Evidence:
    try:
        evidence = Evidence.objects.select_related("entry", "batch").get(pk=pk)
    except Evidence.DoesNotExist:
        raise Http404 from None
    member_id = evidence.entry.member_id if evidence.entry_id else evidence.batch.member_id
    if member_id == user.institution_id and user.has_perm("accounts.report_entry"):
        return evidence
    if _reads_everything(user) or user.has_perm("accounts.work_disputes"):
        return evidence
    raise Http404


def access_batch(user: User, pk: int) -> ImportBatch:
    try:
        batch = ImportBatch.objects.select_related("member").get(pk=pk)
    except ImportBatch.DoesNotExist:
        raise Http404 from None
    if batch.is_feed and user.has_perm("accounts.load_feeds"):
        return batch
    if batch.member_id == user.institution_id and user.has_perm("accounts.report_entry"):
        return batch
    raise Http404


def access_subject(user: User, pk: int) -> Subject:
    """Subjects are shared by all members; only roles that may reveal identifiers open one."""
    if not user.has_perm("accounts.reveal_identifier"):
        raise Http404
    try:
        return Subject.objects.get(pk=pk)
    except Subject.DoesNotExist:
        raise Http404 from None
