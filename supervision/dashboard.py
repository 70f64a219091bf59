"""The regulator's market dashboard (issue 8, item 1): read-only aggregates.

Every table is one GROUP BY query over pre-aggregated counts, whatever the number of rows, so
the page costs the same number of SQL statements for ten entries as for ten million. Months
are calendar months in Asia/Shanghai: datetimes are truncated with TruncMonth in that zone,
dates (settlement, retention) are dates already.

Everything is counted from MarketStat, rebuilt each night by `market_stats_rebuild` (and on a
regulator's request): measured on PostgreSQL with 1,000,000 entries, 1,000,000 queries and
20,000 disputes, the same GROUP BYs run live over the big tables took about 3 s per page; over
the pre-aggregated rows (about 50,000) the page takes a fraction of a second. The figures are
as of the last build, whose time the page shows.

What each figure counts:

- entries by category / by region: entries on the register (active or settled) at the build;
- entries per month: *new* = reported (submitted) in the month, whatever their status since;
  *settled* = settled or expired entries whose settlement date falls in the month;
  *expired* = expired entries whose retention ended in the month (the daily expiry job
  removes them from queries that day);
- queries per month by channel and by purpose: every logged query (refused queries are not
  logged);
- disputes: *received* by receipt time; *decided*, *on time* (decided_at ≤ decision_due_at,
  the due date including a lawful extension) and *corrected or deleted* by decision time; the
  outcome is the reconsideration's when there was one, else the first decision.

A member filter restricts every table to one reporting member (for disputes: disputes about
at least one of its entries).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Case, Count, F, Max, Q, Sum, Value, When
from django.db.models.functions import TruncMonth
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.choices import Channel, Purpose
from billing.models import Query
from blacklist_portal.accounts.models import Institution
from disputes.models import Decision, Dispute
from registry.choices import Category
from registry.models import Entry

from .models import MarketStat

SHANGHAI = ZoneInfo("Asia/Shanghai")
MONTH_CHOICES = (6, 12, 24, 36)
DEFAULT_MONTHS = 12

# Final outcome of a dispute: the reconsideration's when there was one, else the decision.
AGAINST_MEMBER = (Decision.CORRECTED, Decision.DELETED)
CORRECTED_OR_DELETED = Q(reconsideration__in=AGAINST_MEMBER) | (
    Q(reconsideration="") & Q(decision__in=AGAINST_MEMBER)
)


@dataclass
class Table:
    """One chart's numbers: the first column labels the rows, the others are the series."""

    key: str
    title: str
    columns: list[str]
    rows: list[list]
    chart: str  # "bar" (horizontal bars of one column) or "line" (one line per column)
    note: str = ""
    chart_columns: list[int] = field(default_factory=lambda: [1])  # the columns drawn
    percent_scale: bool = False  # the drawn columns are percentages: a 0–100 axis

    def series(self, index: int) -> list:
        return [row[index] for row in self.rows]

    @property
    def labels(self) -> list[str]:
        return [str(row[0]) for row in self.rows]


@dataclass
class Window:
    months: list[datetime.date]  # first day of each month, oldest first
    start: datetime.datetime  # aware, first instant of the first month (Asia/Shanghai)
    end: datetime.datetime  # aware, first instant after the last month

    @property
    def start_date(self) -> datetime.date:
        return self.months[0]

    @property
    def end_date(self) -> datetime.date:
        return timezone.localtime(self.end, SHANGHAI).date()


def _first_of_month(d: datetime.date, shift: int = 0) -> datetime.date:
    index = d.year * 12 + d.month - 1 + shift
    return datetime.date(index // 12, index % 12 + 1, 1)


def _midnight(d: datetime.date) -> datetime.datetime:
    return datetime.datetime(d.year, d.month, d.day, tzinfo=SHANGHAI)


def window(*, months: int = DEFAULT_MONTHS, now: datetime.datetime | None = None) -> Window:
    """The last `months` calendar months, the current one included."""
    today = timezone.localtime(now or timezone.now(), SHANGHAI).date()
    current = _first_of_month(today)
    firsts = [_first_of_month(current, -i) for i in range(months - 1, -1, -1)]
    return Window(firsts, _midnight(firsts[0]), _midnight(_first_of_month(current, 1)))


def month_key(value) -> datetime.date:
    """A TruncMonth result (aware datetime on some backends, date on others) as a date."""
    if isinstance(value, datetime.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value, SHANGHAI)
        return value.date().replace(day=1)
    return value.replace(day=1)


def month_label(d: datetime.date) -> str:
    return f"{d:%Y-%m}"


def percent(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(100) * part / whole).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _month_of(field_name: str):
    return TruncMonth(field_name, tzinfo=SHANGHAI)


def lender_members():
    return Institution.objects.filter(kind=Institution.Kind.LENDER).order_by("name")


# --- Pre-aggregation --------------------------------------------------------------------------

# Arbitrary keys of the PostgreSQL advisory locks that keep two runs of a job from interleaving.
_LOCK_KEYS = {"market_stats": 0x4D4B5453, "quality_scores": 0x51534352}  # "MKTS", "QSCR"


def serialise(job: str) -> None:
    """Within a transaction: wait until no other run of `job` is in one. On PostgreSQL an
    advisory lock held until commit (the nightly run and a regulator's "recount now" would
    otherwise both delete the old rows and both insert new ones); SQLite transactions are
    serialised already."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEYS[job]])


# Rebuilt in full every time (what they count changes after the fact).
FULL_METRICS = (MarketStat.Metric.ON_REGISTER, MarketStat.Metric.NEW, MarketStat.Metric.SETTLED,
                MarketStat.Metric.EXPIRED, MarketStat.Metric.DISPUTES_RECEIVED,
                MarketStat.Metric.DISPUTES_DECIDED)


def _entry_counts(built_at: datetime.datetime) -> list[MarketStat]:
    """Four GROUP BYs over every entry: what is on the register, and new, settled and expired
    entries per member, month and category."""
    entries = Entry.objects.order_by()
    grouped = [
        (MarketStat.Metric.NEW, entries.annotate(m=_month_of("submitted_at"))),
        (MarketStat.Metric.SETTLED,
         entries.filter(status__in=(Entry.Status.SETTLED, Entry.Status.EXPIRED), settled_on__isnull=False)
         .annotate(m=TruncMonth("settled_on"))),
        (MarketStat.Metric.EXPIRED,
         entries.filter(status=Entry.Status.EXPIRED, retention_until__isnull=False)
         .annotate(m=TruncMonth("retention_until"))),
    ]
    rows = [
        MarketStat(metric=MarketStat.Metric.ON_REGISTER, month=None, member_id=member, key=category,
                   count=n, built_at=built_at)
        for member, category, n in entries.filter(status__in=Entry.VISIBLE)
        .values_list("member_id", "category").annotate(n=Count("id"))
    ]
    for metric, qs in grouped:
        rows += [
            MarketStat(metric=metric, month=month_key(m), member_id=member, key=category, count=n,
                       built_at=built_at)
            for member, m, category, n in qs.values_list("member_id", "m", "category").annotate(n=Count("id"))
        ]
    return rows


def _query_counts(built_at: datetime.datetime, since: datetime.date | None) -> list[MarketStat]:
    qs = Query.objects.order_by()
    if since is not None:
        qs = qs.filter(created_at__gte=_midnight(since))
    return [
        MarketStat(metric=MarketStat.Metric.QUERIES, month=month_key(m), member_id=member,
                   key=f"{channel}:{purpose}", count=n, built_at=built_at)
        for member, m, channel, purpose, n in qs.annotate(m=_month_of("created_at"))
        .values_list("member_id", "m", "channel", "purpose").annotate(n=Count("id"))
    ]


@transaction.atomic
def market_stats_rebuild(*, now: datetime.datetime | None = None, full: bool = False) -> int:
    """Recount the dashboard's entries, queries and disputes; returns the number of rows stored.

    Entries and disputes change after the fact (settlement dates corrected, entries deleted on
    dispute, decisions reconsidered), so their counts are rebuilt in full. The query log is immutable, so a month's query count
    cannot change once the month is over: only the months from the last one stored (or the
    previous month, whichever is earlier) are recounted, unless `full`. Safe to run twice."""
    built_at = now or timezone.now()
    serialise("market_stats")
    entry_rows = _entry_counts(built_at) + _dispute_counts(built_at)
    MarketStat.objects.filter(metric__in=FULL_METRICS).delete()
    stored_queries = MarketStat.objects.filter(metric=MarketStat.Metric.QUERIES)
    latest = stored_queries.aggregate(latest=Max("month"))["latest"]
    since = None
    if latest is not None and not full:
        since = min(latest, _first_of_month(timezone.localtime(built_at, SHANGHAI).date(), -1))
        stored_queries = stored_queries.filter(month__gte=since)
    query_rows = _query_counts(built_at, since)
    stored_queries.delete()
    MarketStat.objects.bulk_create(entry_rows + query_rows, batch_size=5000)
    return len(entry_rows) + len(query_rows)


def market_stats_as_of() -> datetime.datetime | None:
    return MarketStat.objects.aggregate(at=Max("built_at"))["at"]


def _stats(metric, member_id: int | None, win: Window | None = None):
    qs = MarketStat.objects.order_by().filter(metric=metric)
    if win is not None:
        qs = qs.filter(month__gte=win.start_date, month__lt=win.end_date)
    return qs.filter(member_id=member_id) if member_id else qs


# --- Entries ----------------------------------------------------------------------------------


def entries_by_category(*, member_id: int | None = None) -> Table:
    counts = dict(
        _stats(MarketStat.Metric.ON_REGISTER, member_id).values_list("key").annotate(n=Sum("count"))
    )
    rows = [[str(label), counts.get(value, 0)] for value, label in Category.choices]
    return Table(
        "entries_by_category", _("Entries on the register by category"),
        [_("Category"), _("Entries")], rows, "bar",
        note=_("Active and settled entries."),
    )


def entries_by_region(*, member_id: int | None = None) -> Table:
    counts = (
        _stats(MarketStat.Metric.ON_REGISTER, member_id)
        .values_list("member__region")
        .annotate(n=Sum("count"))
    )
    rows = sorted(([region or "—", n] for region, n in counts), key=lambda r: (-r[1], r[0]))
    return Table(
        "entries_by_region", _("Entries on the register by region"),
        [_("Region of the reporting institution"), _("Entries")], rows, "bar",
        note=_("Active and settled entries."),
    )


def entries_by_month(*, win: Window, member_id: int | None = None) -> Table:
    """New, settled and expired entries per month, from one query over the counts."""
    qs = MarketStat.objects.order_by().filter(
        metric__in=(MarketStat.Metric.NEW, MarketStat.Metric.SETTLED, MarketStat.Metric.EXPIRED),
        month__gte=win.start_date, month__lt=win.end_date,
    )
    if member_id:
        qs = qs.filter(member_id=member_id)
    counts = {(metric, month): n for metric, month, n in qs.values_list("metric", "month").annotate(n=Sum("count"))}
    rows = [
        [month_label(m)] + [counts.get((metric, m), 0) for metric in ("new", "settled", "expired")]
        for m in win.months
    ]
    return Table(
        "entries_by_month", _("New, settled and expired entries per month"),
        [_("Month"), _("New"), _("Settled"), _("Expired")], rows, "line", chart_columns=[1, 2, 3],
        note=_("New: reported in the month. Settled: settlement date in the month. "
               "Expired: retention ended in the month."),
    )


# --- Queries ----------------------------------------------------------------------------------


def _queries_by(part: int, choices, *, win: Window, member_id: int | None, key: str,
                title: str) -> Table:
    counts: dict[tuple, int] = {}
    for month, stat_key, n in (
        _stats(MarketStat.Metric.QUERIES, member_id, win).values_list("month", "key").annotate(n=Sum("count"))
    ):
        value = stat_key.split(":")[part]
        counts[(month, value)] = counts.get((month, value), 0) + n
    values = [v for v, _label in choices]
    labels = dict(choices)
    rows = []
    for m in win.months:
        row = [month_label(m)] + [counts.get((m, v), 0) for v in values]
        rows.append(row + [sum(row[1:])])
    return Table(
        key, title, [_("Month"), *[str(labels[v]) for v in values], _("Total")], rows, "line",
        chart_columns=list(range(1, len(values) + 1)),
    )


def queries_by_channel(*, win: Window, member_id: int | None = None) -> Table:
    return _queries_by(0, Channel.choices, win=win, member_id=member_id,
                       key="queries_by_channel", title=_("Queries per month by channel"))


def queries_by_purpose(*, win: Window, member_id: int | None = None) -> Table:
    return _queries_by(1, Purpose.choices, win=win, member_id=member_id,
                       key="queries_by_purpose", title=_("Queries per month by purpose"))


# --- Disputes ---------------------------------------------------------------------------------

DisputeEntry = Dispute.entries.through


def _dispute_counts(built_at: datetime.datetime) -> list[MarketStat]:
    """Disputes received and decided per month: the market's (one count per dispute) and each
    member's (disputes about at least one of its entries). Decided ones are split by whether
    they were on time and whether the outcome went against the member."""
    on_time = Case(When(decided_at__lte=F("decision_due_at"), then=Value("1")), default=Value("0"))
    against = Case(When(CORRECTED_OR_DELETED, then=Value("1")), default=Value("0"))
    disputes = Dispute.objects.order_by()
    links = DisputeEntry.objects.order_by()
    received = MarketStat.Metric.DISPUTES_RECEIVED
    decided = MarketStat.Metric.DISPUTES_DECIDED
    rows = [
        MarketStat(metric=received, month=month_key(m), member_id=None, key="", count=n, built_at=built_at)
        for m, n in disputes.annotate(m=_month_of("received_at")).values_list("m").annotate(n=Count("id"))
    ]
    rows += [
        MarketStat(metric=decided, month=month_key(m), member_id=None, key=t + a, count=n, built_at=built_at)
        for m, t, a, n in disputes.filter(decided_at__isnull=False)
        .annotate(m=_month_of("decided_at"), t=on_time, a=against)
        .values_list("m", "t", "a").annotate(n=Count("id"))
    ]
    rows += [
        MarketStat(metric=received, month=month_key(m), member_id=member, key="", count=n, built_at=built_at)
        for member, m, n in links.annotate(m=_month_of("dispute__received_at"))
        .values_list("entry__member_id", "m").annotate(n=Count("dispute_id", distinct=True))
    ]
    on_time = Case(When(dispute__decided_at__lte=F("dispute__decision_due_at"), then=Value("1")),
                   default=Value("0"))
    against = Case(When(
        Q(dispute__reconsideration__in=AGAINST_MEMBER)
        | Q(dispute__reconsideration="", dispute__decision__in=AGAINST_MEMBER), then=Value("1"),
    ), default=Value("0"))
    rows += [
        MarketStat(metric=decided, month=month_key(m), member_id=member, key=t + a, count=n,
                   built_at=built_at)
        for member, m, t, a, n in links.filter(dispute__decided_at__isnull=False)
        .annotate(m=_month_of("dispute__decided_at"), t=on_time, a=against)
        .values_list("entry__member_id", "m", "t", "a").annotate(n=Count("dispute_id", distinct=True))
    ]
    return rows


def dispute_tables(*, win: Window, member_id: int | None = None) -> tuple[Table, Table]:
    """Dispute volumes and rates per month, from one query over the counts."""
    received: dict[datetime.date, int] = {}
    decided: dict[datetime.date, list[int]] = {}
    qs = MarketStat.objects.order_by().filter(
        metric__in=(MarketStat.Metric.DISPUTES_RECEIVED, MarketStat.Metric.DISPUTES_DECIDED),
        month__gte=win.start_date, month__lt=win.end_date,
    )
    qs = qs.filter(member_id=member_id) if member_id else qs.filter(member__isnull=True)
    for metric, month, key, n in qs.values_list("metric", "month", "key").annotate(n=Sum("count")):
        if metric == MarketStat.Metric.DISPUTES_RECEIVED:
            received[month] = received.get(month, 0) + n
        else:
            counts = decided.setdefault(month, [0, 0, 0])
            counts[0] += n
            counts[1] += n if key[0] == "1" else 0
            counts[2] += n if key[1] == "1" else 0
    volumes, rates = [], []
    for m in win.months:
        n, on_time, against = decided.get(m, (0, 0, 0))
        volumes.append([month_label(m), received.get(m, 0), n, on_time, against])
        rates.append([month_label(m), n, percent(on_time, n), percent(against, n)])
    return (
        Table(
            "disputes_by_month", _("Disputes per month"),
            [_("Month"), _("Received"), _("Decided"), _("Decided on time"),
             _("Corrected or deleted")],
            volumes, "line", chart_columns=[1, 2, 3, 4],
            note=_("Received by receipt date; the rest by decision date."),
        ),
        Table(
            "dispute_rates_by_month", _("On-time decisions and corrections per month"),
            [_("Month"), _("Decided"), _("On-time rate (%)"), _("Corrected or deleted (%)")],
            rates, "line", chart_columns=[2, 3], percent_scale=True,
            note=_("On time: decided no later than the (possibly extended) legal deadline. "
                   "Outcome after reconsideration where there was one. "
                   "A month without decisions has no rate."),
        ),
    )


def disputes_by_member(*, win: Window, member_id: int | None = None) -> Table:
    """One row per reporting member over the whole window: a dispute counts once for each
    member whose entries it is about."""
    qs = MarketStat.objects.order_by().filter(
        metric__in=(MarketStat.Metric.DISPUTES_RECEIVED, MarketStat.Metric.DISPUTES_DECIDED),
        month__gte=win.start_date, month__lt=win.end_date, member__isnull=False,
    )
    if member_id:
        qs = qs.filter(member_id=member_id)
    totals: dict[str, list[int]] = {}
    for name, metric, key, n in qs.values_list("member__name", "metric", "key").annotate(n=Sum("count")):
        r, d, t, a = totals.setdefault(name, [0, 0, 0, 0])
        if metric == MarketStat.Metric.DISPUTES_RECEIVED:
            r += n
        else:
            d, t, a = d + n, t + (n if key[0] == "1" else 0), a + (n if key[1] == "1" else 0)
        totals[name] = [r, d, t, a]
    rows = [[name, r, d, percent(t, d), percent(a, d)] for name, (r, d, t, a) in totals.items()]
    rows.sort(key=lambda row: (-row[1], row[0]))
    return Table(
        "disputes_by_member", _("Disputes per reporting member"),
        [_("Institution"), _("Received"), _("Decided"), _("On-time rate (%)"),
         _("Corrected or deleted (%)")],
        rows, "bar", chart_columns=[4], percent_scale=True,
        note=_("Over the whole period shown. The chart shows the share corrected or deleted."),
    )


# --- The page ---------------------------------------------------------------------------------

TABLES = (
    "entries_by_category", "entries_by_region", "entries_by_month", "queries_by_channel",
    "queries_by_purpose", "disputes_by_month", "dispute_rates_by_month", "disputes_by_member",
)


def dashboard_tables(*, win: Window, member_id: int | None = None) -> list[Table]:
    volumes, rates = dispute_tables(win=win, member_id=member_id)
    return [
        entries_by_category(member_id=member_id),
        entries_by_region(member_id=member_id),
        entries_by_month(win=win, member_id=member_id),
        queries_by_channel(win=win, member_id=member_id),
        queries_by_purpose(win=win, member_id=member_id),
        volumes,
        rates,
        disputes_by_member(win=win, member_id=member_id),
    ]


def dashboard_table(key: str, *, win: Window, member_id: int | None = None) -> Table:
    """One table, for its CSV download. KeyError for an unknown key."""
    if key in ("disputes_by_month", "dispute_rates_by_month"):
        volumes, rates = dispute_tables(win=win, member_id=member_id)
        return volumes if key == "disputes_by_month" else rates
    builders = {
        "entries_by_category": lambda: entries_by_category(member_id=member_id),
        "entries_by_region": lambda: entries_by_region(member_id=member_id),
        "entries_by_month": lambda: entries_by_month(win=win, member_id=member_id),
        "queries_by_channel": lambda: queries_by_channel(win=win, member_id=member_id),
        "queries_by_purpose": lambda: queries_by_purpose(win=win, member_id=member_id),
        "disputes_by_member": lambda: disputes_by_member(win=win, member_id=member_id),
    }
    return builders[key]()
