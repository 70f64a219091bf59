"""Whether a member may query or report today, given its sanctions. Every channel (web,
counter, API, bulk files) asks here; a suspension lifts by itself after its last day."""

from dataclasses import dataclass
from datetime import date

from django.db import connection
from django.utils import timezone

from blacklist_portal.sql import Names, fetch_one


@dataclass(frozen=True)
class Suspension:
    until: date
    reason: str


def _active(member_id: int, field: str, today: date) -> Suspension | None:
    """The longest-running suspension of `field`'s kind in force today, if any. Every query
    asks, so the statement is written out (blacklist_portal/sql.py says why)."""
    from .models import Sanction

    n = Names(Sanction)
    day = connection.ops.adapt_datefield_value(today)
    row = fetch_one(
        f"SELECT {n('ends_on')}, {n('reason')} FROM {n.table} WHERE {n('member')} = %s "  # noqa: S608 (names from the model)
        f"AND {n('kind')} = %s AND {n(field)} AND {n('starts_on')} <= %s AND {n('ends_on')} >= %s "
        f"AND {n('lifted_at')} IS NULL ORDER BY {n('ends_on')} DESC LIMIT 1",
        [member_id, Sanction.Kind.SUSPENSION, day, day],
    )
    if row is None:
        return None
    ends_on = row[0] if isinstance(row[0], date) else date.fromisoformat(row[0])
    return Suspension(ends_on, row[1])


def query_suspension(member_id: int, *, today: date | None = None) -> Suspension | None:
    return _active(member_id, "suspends_queries", today or timezone.localdate())


def reporting_suspension(member_id: int, *, today: date | None = None) -> Suspension | None:
    return _active(member_id, "suspends_reporting", today or timezone.localdate())
