from django.db.models import QuerySet

from blacklist_portal.accounts.models import Institution

from .models import Entry, Subject


def entries_of_member(*, member: Institution) -> QuerySet[Entry]:
    return (
        Entry.objects.filter(member=member)
        .select_related("subject")
        .order_by("-submitted_at", "-pk")
    )


def review_queue() -> QuerySet[Entry]:
    """Pending entries, oldest first (the one waiting longest is reviewed first)."""
    return (
        Entry.objects.filter(status=Entry.Status.PENDING_REVIEW)
        .select_related("subject", "member", "submitted_by")
        .order_by("submitted_at", "pk")
    )


def entries_visible_for_subject(*, subject: Subject) -> QuerySet[Entry]:
    """What every member's query sees about a subject: approved, not expired or removed."""
    return (
        Entry.objects.filter(subject=subject, status__in=Entry.VISIBLE)
        .select_related("member")
        .order_by("-submitted_at")
    )
