"""Whether a member may query or report today, given its sanctions. Every channel (web,
counter, API, bulk files) asks here; a suspension lifts by itself after its last day."""

from dataclasses import dataclass
from datetime import date

from django.db import connection
from django.utils import timezone


@dataclass(frozen=True)
class Suspension:
    until: date
    reason: str


def _active(member_id: int, field: str, today: date) -> Suspension | None:
    """The longest-running suspension of `field`'s kind in force today, if any. Every query
    asks this, so the statement is written out (the ORM took longer to build it than the
    database to answer it: sanctions are few)."""
    from .models import Sanction

    meta = Sanction._meta
    quote = connection.ops.quote_name

    def col(name: str) -> str:
        return quote(meta.get_field(name).column)

    sql = (
        f"SELECT {col('ends_on')}, {col('reason')} FROM {quote(meta.db_table)} "  # noqa: S608 (names from the model)
        f"WHERE {col('member')} = %s AND {col('kind')} = %s AND {col(field)} AND {col('starts_on')} <= %s "
        f"AND {col('ends_on')} >= %s AND {col('lifted_at')} IS NULL ORDER BY {col('ends_on')} DESC LIMIT 1"
    )
    day = connection.ops.adapt_datefield_value(today)
    with connection.cursor() as cursor:
        cursor.execute(sql, [member_id, Sanction.Kind.SUSPENSION, day, day])
        row = cursor.fetchone()
    if row is None:
        return None
    ends_on = row[0] if isinstance(row[0], date) else date.fromisoformat(row[0])
    return Suspension(ends_on, row[1])


def query_suspension(member_id: int, *, today: date | None = None) -> Suspension | None:
    return _active(member_id, "suspends_queries", today or timezone.localdate())


def reporting_suspension(member_id: int, *, today: date | None = None) -> Suspension | None:
    return _active(member_id, "suspends_reporting", today or timezone.localdate())
