"""Member data-quality score (issue 8, item 2).

A reporting member's score for a calendar month (Asia/Shanghai) runs from 0 to 100. It is the
sum of four factors' points; each factor is a rate of things done right in that month (a value
between 0 and 1) times the factor's weight:

==============  ======  =================================================  =========================
factor          weight  what is counted in the month                       value
==============  ======  =================================================  =========================
disputes        35      the member's entries in disputes decided in the    1 − share corrected or
                        month (one per dispute and entry)                  deleted (final outcome,
                                                                           after reconsideration)
verification    25      verification requests on disputes about its        share answered in time
                        entries whose answer was due in the month (and     (verified / corrected /
                        is due already, or answered)                       delete before the due
                                                                           time); unverifiable or
                                                                           late counts against
review          20      review decisions on its entries in the month       1 − share returned for
                        (approvals and returns, from the entry history)    correction
settlement      20      settlements recorded in the month: the first       share recorded within
                        time an entry already on file got a settlement     SETTLEMENT_GRACE_DAYS of
                        date (from the entry history)                      the settlement date
==============  ======  =================================================  =========================

Why these weights: a correction or deletion on dispute means wrong data reached the register
and other lenders' decisions (35); the verification deadline is a legal one and a missed
answer deletes the entry (25); a returned entry was caught before it went live (20); a late
settlement leaves a stale negative record visible (20).

A factor with nothing to count in the month scores its full weight: it measures failures, and
there were none. Points are rounded to 0.1 (half up) and the score is the sum of the rounded
points, so the factors shown always add up to the score.

Scores are stored per member and month (QualityScore) by a monthly task for the month just
ended, and on demand by a regulator for any month; a member's page also shows the current
month so far, computed live and not stored. Members see their own score, regulators all.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Case, Count, Exists, F, IntegerField, Max, OuterRef, Q, Value, When
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from blacklist_portal.accounts.models import Institution, User
from disputes.models import Dispute, VerificationAnswer
from registry.models import Entry

from .dashboard import AGAINST_MEMBER, SHANGHAI, _first_of_month, _midnight, serialise
from .models import QualityScore

SETTLEMENT_GRACE_DAYS = 30

# (key, weight, label). The weights add up to 100.
FACTORS = (
    ("disputes", 35, gettext_lazy("Entries not corrected or deleted on dispute")),
    ("verification", 25, gettext_lazy("Verification answers in time")),
    ("review", 20, gettext_lazy("Entries accepted at review (not returned)")),
    ("settlement", 20, gettext_lazy("Settlements recorded promptly")),
)
WEIGHTS = {key: weight for key, weight, _label in FACTORS}
LABELS = {key: label for key, _weight, label in FACTORS}
assert sum(WEIGHTS.values()) == 100

DisputeEntry = Dispute.entries.through
EntryHistory = Entry.history.model


@dataclass(frozen=True)
class Factor:
    key: str
    weight: int
    total: int  # things counted
    good: int  # of which done right

    @property
    def measured(self) -> bool:
        return self.total > 0

    @property
    def bad(self) -> int:
        return self.total - self.good

    @property
    def value(self) -> Decimal:
        """The rate done right, 0–1 (1 when there was nothing to count)."""
        if not self.total:
            return Decimal("1.0000")
        return (Decimal(self.good) / Decimal(self.total)).quantize(Decimal("0.0001"), ROUND_HALF_UP)

    @property
    def value_percent(self) -> Decimal:
        return (self.value * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)

    @property
    def points(self) -> Decimal:
        raw = Decimal(self.weight) * (Decimal(self.good) / Decimal(self.total) if self.total else 1)
        return raw.quantize(Decimal("0.1"), ROUND_HALF_UP)

    @property
    def label(self) -> str:
        return str(LABELS[self.key])

    @property
    def description(self) -> str:
        if not self.total:
            return _("Nothing to count this month: full points.")
        return {
            "disputes": _("%(bad)s of %(total)s disputed entries corrected or deleted"),
            "verification": _("%(bad)s of %(total)s verification answers late or missing"),
            "review": _("%(bad)s of %(total)s review decisions were returns"),
            "settlement": _("%(bad)s of %(total)s settlements recorded more than %(days)s days late"),
        }[self.key] % {"bad": self.bad, "total": self.total, "days": SETTLEMENT_GRACE_DAYS}

    def as_json(self) -> dict:
        return {"weight": self.weight, "total": self.total, "good": self.good,
                "value": str(self.value), "points": str(self.points)}

    @classmethod
    def from_json(cls, key: str, data: dict) -> Factor:
        return cls(key, int(data.get("weight", WEIGHTS[key])), int(data["total"]), int(data["good"]))


def score_of(factors: list[Factor]) -> Decimal:
    return sum((f.points for f in factors), Decimal("0.0"))


def month_bounds(month: datetime.date) -> tuple[datetime.datetime, datetime.datetime]:
    first = _first_of_month(month)
    return _midnight(first), _midnight(_first_of_month(first, 1))


def previous_month(*, now: datetime.datetime | None = None) -> datetime.date:
    today = timezone.localtime(now or timezone.now(), SHANGHAI).date()
    return _first_of_month(today, -1)


def reporting_members(*, month: datetime.date) -> list[int]:
    """Lenders with at least one entry reported before the month ended."""
    _start, end = month_bounds(month)
    return list(
        Institution.objects.filter(kind=Institution.Kind.LENDER)
        .filter(Exists(Entry.objects.filter(member_id=OuterRef("pk"), submitted_at__lt=end)))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


# --- The four measurements: one query each, for every member at once -------------------------


def _dispute_counts(ids, start, end) -> dict[int, tuple[int, int]]:
    against = Q(dispute__reconsideration__in=AGAINST_MEMBER) | Q(
        dispute__reconsideration="", dispute__decision__in=AGAINST_MEMBER
    )
    return {
        member: (total, total - bad)
        for member, total, bad in DisputeEntry.objects.order_by()
        .filter(entry__member_id__in=ids, dispute__decided_at__gte=start, dispute__decided_at__lt=end)
        .values_list("entry__member_id")
        .annotate(total=Count("id"), bad=Count("id", filter=against))
        .values_list("entry__member_id", "total", "bad")
    }


def _verification_counts(ids, start, end, now) -> dict[int, tuple[int, int]]:
    answered = [VerificationAnswer.VERIFIED, VerificationAnswer.CORRECTED, VerificationAnswer.DELETE]
    in_time = Q(
        dispute__verification_answer__in=answered,
        dispute__verification_answered_at__lte=F("dispute__verification_due_at"),
    )
    # Counted once the answer is in, or once it is due (no answer by then is against).
    settled = Q(dispute__verification_due_at__lte=now) | Q(dispute__verification_answered_at__lte=now)
    return {
        member: (total, good)
        for member, total, good in DisputeEntry.objects.order_by()
        .filter(
            Q(entry__member_id__in=ids, dispute__verification_due_at__gte=start,
              dispute__verification_due_at__lt=end) & settled
        )
        .values_list("entry__member_id")
        .annotate(
            total=Count("dispute_id", distinct=True),
            good=Count("dispute_id", distinct=True, filter=in_time),
        )
        .values_list("entry__member_id", "total", "good")
    }


def _review_counts(ids, start, end) -> dict[int, tuple[int, int]]:
    """A review decision is one (entry, reviewed_at) pair in the history: approving or
    returning sets reviewed_at, later saves copy it. It was a return if the entry stood
    'returned' with that reviewed_at."""
    counts: dict[int, list[int]] = {}
    for member, returned in (
        EntryHistory.objects.order_by()
        .filter(member_id__in=ids, reviewed_at__gte=start, reviewed_at__lt=end,
                reviewed_by__isnull=False)
        .values_list("member_id", "id", "reviewed_at")
        .annotate(
            returned=Max(Case(When(status=Entry.Status.RETURNED, then=Value(1)), default=Value(0),
                              output_field=IntegerField()))
        )
        .values_list("member_id", "returned")
    ):
        c = counts.setdefault(member, [0, 0])
        c[0] += 1
        c[1] += 0 if returned else 1
    return {member: (total, good) for member, (total, good) in counts.items()}


def _settlement_counts(ids, start, end) -> dict[int, tuple[int, int]]:
    """The history row where an entry already on file first got a settlement date; late if
    recorded more than SETTLEMENT_GRACE_DAYS after that date."""
    earlier = EntryHistory.objects.filter(id=OuterRef("id"), history_id__lt=OuterRef("history_id"))
    rows = (
        EntryHistory.objects.order_by()
        .filter(member_id__in=ids, settled_on__isnull=False, history_date__gte=start,
                history_date__lt=end)
        .filter(Exists(earlier))
        .exclude(Exists(earlier.filter(settled_on__isnull=False)))
        .values_list("member_id", "settled_on", "history_date")
    )
    counts: dict[int, list[int]] = {}
    for member, settled_on, recorded_at in rows:
        lag = (timezone.localtime(recorded_at, SHANGHAI).date() - settled_on).days
        c = counts.setdefault(member, [0, 0])
        c[0] += 1
        c[1] += 1 if lag <= SETTLEMENT_GRACE_DAYS else 0
    return {member: (total, good) for member, (total, good) in counts.items()}


def quality_measure(
    *, month: datetime.date, member_ids: list[int], now: datetime.datetime | None = None
) -> dict[int, list[Factor]]:
    """The four factors of each member for the month (the month so far if it is not over)."""
    now = now or timezone.now()
    start, month_end = month_bounds(month)
    end = min(month_end, max(now, start))  # a month not over yet: so far
    measured = {
        "disputes": _dispute_counts(member_ids, start, end),
        "verification": _verification_counts(member_ids, start, month_end, now),
        "review": _review_counts(member_ids, start, end),
        "settlement": _settlement_counts(member_ids, start, end),
    }
    return {
        member: [
            Factor(key, weight, *measured[key].get(member, (0, 0))) for key, weight, _l in FACTORS
        ]
        for member in member_ids
    }


@transaction.atomic
def quality_scores_compute(
    *, month: datetime.date, member_ids: list[int] | None = None, now: datetime.datetime | None = None
) -> list[QualityScore]:
    """Compute and store the month's score of each reporting member (or of the given ones).
    Running it again replaces the month's scores: safe to repeat."""
    now = now or timezone.now()
    serialise("quality_scores")
    month = _first_of_month(month)
    if member_ids is None:
        member_ids = reporting_members(month=month)
    scores = []
    for member_id, factors in quality_measure(month=month, member_ids=member_ids, now=now).items():
        score, _created = QualityScore.objects.update_or_create(
            member_id=member_id,
            month=month,
            defaults={
                "score": score_of(factors),
                "factors": {f.key: f.as_json() for f in factors},
                "computed_at": now,
            },
        )
        scores.append(score)
    return scores


def stored_factors(score: QualityScore) -> list[Factor]:
    return [Factor.from_json(key, score.factors[key]) for key, _w, _l in FACTORS if key in score.factors]


# --- Reading ----------------------------------------------------------------------------------


def access_member_quality(user: User, member_id: int) -> Institution:
    """The member whose scores the user may see: any lender for a regulator, else only the
    user's own institution (lender staff and admins). Anyone else's is a 404."""
    member = Institution.objects.filter(pk=member_id, kind=Institution.Kind.LENDER).first()
    if member is None:
        raise Http404
    if user.has_perm("accounts.supervise"):
        return member
    if member.pk == user.institution_id and (
        user.has_perm("accounts.report_entry") or user.has_perm("accounts.view_statements")
    ):
        return member
    raise Http404


def score_history(*, member: Institution, months: int = 24) -> list[QualityScore]:
    """Stored scores, oldest first."""
    return list(reversed(QualityScore.objects.filter(member=member).order_by("-month")[:months]))


def scores_for_month(*, month: datetime.date) -> list[tuple[Institution, QualityScore | None]]:
    """Every lender with its stored score for the month (None when there is none)."""
    scores = {s.member_id: s for s in QualityScore.objects.filter(month=_first_of_month(month))}
    return [(m, scores.get(m.pk)) for m in Institution.objects.filter(kind=Institution.Kind.LENDER)
            .order_by("name")]
