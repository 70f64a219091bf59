"""Abnormal-query rules over the query log (billing.models.Query, member queries only).

Each rule looks at one Asia/Shanghai calendar day and returns findings: who, under which key,
the figures, and the queries behind it. The rules only read; `services.alerts_raise` stores the
findings as QueryAlert rows (idempotently). Each rule finds its candidates with one SQL
aggregate and then fetches the ids of the queries behind the few candidates it found.

- night: at least PORTAL_ALERT_NIGHT_MIN_QUERIES queries by a member between 22:00 and 06:00
  on the day (00:00–06:00 and 22:00–24:00 of the calendar day, so a day is complete at
  midnight and can be evaluated right after);
- volume_spike: the member's queries of the day are at least PORTAL_ALERT_SPIKE_MIN_QUERIES and
  more than PORTAL_ALERT_SPIKE_FACTOR times the median of its daily counts over the
  PORTAL_ALERT_SPIKE_BASELINE_DAYS days before (days without queries count as zero);
- subject_repeat: a member's queries on one subject reach PORTAL_ALERT_REPEAT_MIN_QUERIES within
  PORTAL_ALERT_REPEAT_DAYS days ending on the day — raised on the day the threshold is crossed,
  so one burst is one alert, not one a day for a week;
- post_loan_only: post-loan queries on the day about a subject the member never queried for
  approval (PORTAL_ALERT_APPROVAL_PURPOSES: loan approval, and a guarantor check, after which
  post-loan monitoring of the guarantor is legitimate) — raised once per member and subject.
"""

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.choices import Purpose
from billing.models import Query

from .models import QueryAlert


@dataclass(frozen=True)
class Finding:
    rule: str
    member_id: int
    key: str = ""
    details: dict = field(default_factory=dict)
    query_ids: list[int] = field(default_factory=list)


def _tz():
    return timezone.get_default_timezone()  # Asia/Shanghai


def _at(day: date, hour: int = 0) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=_tz())


def _day(day: date) -> Q:
    return Q(created_at__gte=_at(day), created_at__lt=_at(day + timedelta(days=1)))


def _member_queries():
    # No default ordering on Query, but be explicit: an ORDER BY would split the GROUP BY.
    return Query.objects.filter(kind=Query.Kind.MEMBER).order_by()


def _ids_by(qs, *keys: str) -> dict[tuple, list[int]]:
    ids: dict[tuple, list[int]] = defaultdict(list)
    for row in qs.order_by("created_at", "pk").values_list("pk", *keys):
        ids[tuple(row[1:])].append(row[0])
    return ids


def night_queries(day: date) -> list[Finding]:
    start, until = settings.PORTAL_ALERT_NIGHT_FROM_HOUR, settings.PORTAL_ALERT_NIGHT_UNTIL_HOUR
    threshold = settings.PORTAL_ALERT_NIGHT_MIN_QUERIES
    night = Q(created_at__gte=_at(day), created_at__lt=_at(day, until)) | Q(
        created_at__gte=_at(day, start), created_at__lt=_at(day + timedelta(days=1))
    )
    base = _member_queries().filter(night)
    counts = dict(
        base.values("member_id").annotate(n=Count("pk")).filter(n__gte=threshold).values_list("member_id", "n")
    )
    if not counts:
        return []
    ids = _ids_by(base.filter(member_id__in=counts), "member_id")
    return [
        Finding(QueryAlert.Rule.NIGHT, member, "", {"count": n, "threshold": threshold}, ids[(member,)])
        for member, n in sorted(counts.items())
    ]


def volume_spike(day: date) -> list[Finding]:
    minimum, factor = settings.PORTAL_ALERT_SPIKE_MIN_QUERIES, settings.PORTAL_ALERT_SPIKE_FACTOR
    baseline_days = settings.PORTAL_ALERT_SPIKE_BASELINE_DAYS
    of_day = _member_queries().filter(_day(day))
    counts = dict(
        of_day.values("member_id").annotate(n=Count("pk")).filter(n__gte=minimum).values_list("member_id", "n")
    )
    if not counts:
        return []
    # The baseline only for the few members busy enough to qualify.
    history: dict[int, dict[date, int]] = defaultdict(dict)
    rows = (
        _member_queries()
        .filter(member_id__in=counts, created_at__gte=_at(day - timedelta(days=baseline_days)),
                created_at__lt=_at(day))
        .annotate(d=TruncDate("created_at", tzinfo=_tz()))
        .values("member_id", "d")
        .annotate(n=Count("pk"))
        .values_list("member_id", "d", "n")
    )
    for member, d, n in rows:
        history[member][d] = n
    findings = []
    for member, n in sorted(counts.items()):
        daily = [history[member].get(day - timedelta(days=k), 0) for k in range(1, baseline_days + 1)]
        median = statistics.median(daily)
        if n > factor * median:
            findings.append((member, n, median))
    if not findings:
        return []
    ids = _ids_by(of_day.filter(member_id__in=[m for m, _n, _med in findings]), "member_id")
    return [
        Finding(QueryAlert.Rule.VOLUME_SPIKE, member, "",
                {"count": n, "baseline_median": median, "factor": factor, "baseline_days": baseline_days},
                ids[(member,)])
        for member, n, median in findings
    ]


def subject_repeat(day: date) -> list[Finding]:
    threshold, window = settings.PORTAL_ALERT_REPEAT_MIN_QUERIES, settings.PORTAL_ALERT_REPEAT_DAYS
    first = _at(day - timedelta(days=window - 1))
    in_window = _member_queries().filter(created_at__gte=first, created_at__lt=_at(day + timedelta(days=1)))
    # Only subjects queried on the day can cross the threshold on it.
    of_day = _member_queries().filter(_day(day)).values("subject_index")
    rows = list(
        in_window.filter(subject_index__in=of_day)
        .values("member_id", "subject_index")
        .annotate(n=Count("pk"), before=Count("pk", filter=Q(created_at__lt=_at(day))))
        .filter(n__gte=threshold, before__lt=threshold)
        .values_list("member_id", "subject_index", "n")
    )
    if not rows:
        return []
    ids = _ids_by(
        in_window.filter(member_id__in={r[0] for r in rows}, subject_index__in={r[1] for r in rows}),
        "member_id", "subject_index",
    )
    return [
        Finding(QueryAlert.Rule.SUBJECT_REPEAT, member, index,
                {"count": n, "threshold": threshold, "window_days": window}, ids[(member, index)])
        for member, index, n in sorted(rows)
    ]


def post_loan_only(day: date) -> list[Finding]:
    end = _at(day + timedelta(days=1))
    approval = Query.objects.filter(
        kind=Query.Kind.MEMBER, member_id=OuterRef("member_id"), subject_index=OuterRef("subject_index"),
        purpose__in=settings.PORTAL_ALERT_APPROVAL_PURPOSES, created_at__lt=end,
    )
    # Raised on another day already: once per member and subject is enough.
    raised = QueryAlert.objects.filter(
        rule=QueryAlert.Rule.POST_LOAN_WITHOUT_APPROVAL, member_id=OuterRef("member_id"),
        key=OuterRef("subject_index"),
    ).exclude(day=day)
    suspicious = _member_queries().filter(_day(day), purpose=Purpose.POST_LOAN).filter(
        ~Exists(approval), ~Exists(raised)
    )
    rows = list(
        suspicious.values("member_id", "subject_index").annotate(n=Count("pk"))
        .values_list("member_id", "subject_index", "n")
    )
    if not rows:
        return []
    ids = _ids_by(suspicious, "member_id", "subject_index")
    return [
        Finding(QueryAlert.Rule.POST_LOAN_WITHOUT_APPROVAL, member, index, {"count": n}, ids[(member, index)])
        for member, index, n in sorted(rows)
    ]


RULES = (night_queries, volume_spike, subject_repeat, post_loan_only)


def evaluate(day: date) -> list[Finding]:
    return [finding for rule in RULES for finding in rule(day)]
