"""Whether a member may query or report today, given its sanctions. Every channel (web,
counter, API, bulk files) asks here; a suspension lifts by itself after its last day."""

from dataclasses import dataclass
from datetime import date

from django.db.models import Q
from django.utils import timezone


@dataclass(frozen=True)
class Suspension:
    until: date
    reason: str


def _active(member_id: int, field: str, today: date) -> Suspension | None:
    from .models import Sanction

    sanction = (
        Sanction.objects.filter(
            Q(**{field: True}),
            member_id=member_id,
            kind=Sanction.Kind.SUSPENSION,
            starts_on__lte=today,
            ends_on__gte=today,
            lifted_at__isnull=True,
        )
        .order_by("-ends_on")
        .values("ends_on", "reason")
        .first()
    )
    return Suspension(sanction["ends_on"], sanction["reason"]) if sanction else None


def query_suspension(member_id: int, *, today: date | None = None) -> Suspension | None:
    return _active(member_id, "suspends_queries", today or timezone.localdate())


def reporting_suspension(member_id: int, *, today: date | None = None) -> Suspension | None:
    return _active(member_id, "suspends_reporting", today or timezone.localdate())
