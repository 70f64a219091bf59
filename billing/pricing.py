"""What a billable query costs: the price rules in force, the member's running count for the
month (volume tiers), and the choice of rule. Shared by single queries and batch screening.

The count is the only thing billing serialises on: `take_sequences` locks the member's month
row until the transaction commits, so concurrent queries take consecutive numbers (no tier
skipped or repeated). Callers take it as late as they can, just before their writes, so the
lock is held for the writes and the commit only.
"""

from datetime import date, datetime
from decimal import Decimal

from django.db import connection

from blacklist_portal.sql import Names, fetch_one

from .models import MonthlyVolume, PriceRule, PriceSchedule


def rules_in_force(now: datetime) -> list[PriceRule]:
    """The rules of the schedule in force at `now` (none: queries cost nothing). One statement,
    written out (blacklist_portal/sql.py says why)."""
    r, s = Names(PriceRule), Names(PriceSchedule)
    sql = (
        f"SELECT {r.columns()} FROM {r.table} WHERE {r('schedule')} = "  # noqa: S608 (names from the models)
        f"(SELECT {s('id')} FROM {s.table} WHERE {s('effective_from')} <= %s "
        f"ORDER BY {s('effective_from')} DESC LIMIT 1)"
    )
    return list(PriceRule.objects.raw(sql, [connection.ops.adapt_datetimefield_value(now)]))


def price_from_rules(
    rules: list[PriceRule], *, channel: str, purpose: str, hit: bool, sequence: int
) -> tuple[PriceRule | None, Decimal]:
    """The most specific matching rule (empty channel / purpose / hit match anything), and
    within it the highest volume tier not above `sequence`; (None, 0.00) if nothing matches."""
    matching = [
        r
        for r in rules
        if r.channel in ("", channel) and r.purpose in ("", purpose) and r.hit in (None, hit)
    ]
    if not matching:
        return None, Decimal("0.00")

    def specificity(r: PriceRule) -> int:
        return (r.channel != "") + (r.purpose != "") + (r.hit is not None)

    best = max(specificity(r) for r in matching)
    tiers = sorted((r for r in matching if specificity(r) == best), key=lambda r: r.tier_from)
    chosen = tiers[0]
    for r in tiers:
        if r.tier_from <= sequence:
            chosen = r
    return chosen, chosen.price


def take_sequences(member_id: int, month: date, n: int = 1) -> int:
    """Reserve the next `n` numbers of the member's month and return the first. One statement
    (insert the month's row or add to it); the row stays locked until the caller's transaction
    ends, and a rollback gives the numbers back. Call it inside that transaction."""
    v = Names(MonthlyVolume)
    (count,) = fetch_one(
        f"INSERT INTO {v.table} ({v('member')}, {v('month')}, {v('count')}) VALUES (%s, %s, %s) "  # noqa: S608
        f"ON CONFLICT ({v('member')}, {v('month')}) DO UPDATE SET {v('count')} = {v.table}.{v('count')} + %s "
        f"RETURNING {v('count')}",
        [member_id, connection.ops.adapt_datefield_value(month), n, n],
    )
    return count - n + 1
