"""Members' data-quality scores (supervision/quality.py): each factor and the score against
numbers worked out by hand, the history by month, the monthly task, and who sees what.

Characters (tests/conftest.py): alice (lender_staff) and anna (lender_admin) see lender_a's
score; charlie and chris (lender_b) are the outsiders; reggie (regulator) sees every score;
rita (review_officer) reviews entries.

February 2026 for lender_a, by hand (weights 35 / 25 / 20 / 20):

- disputes decided in February about its entries: d1 deleted (2 entries), d2 upheld, d3
  corrected but upheld on reconsideration → 4 counted, 2 corrected or deleted → 0.5 × 35 = 17.5
- verification due in February: d1, d3, d5 answered before the deadline, d2 unverifiable, d6
  answered a day late → 3 of 5 in time → 0.6 × 25 = 15.0
- review decisions in February: r1 returned, then approved; r2 and r3 approved → 1 of 4
  returned → 0.75 × 20 = 15.0
- settlements recorded in February: s1 after 9 days, s3 after exactly 30, s7 after 1 (and
  moved earlier later: not a new settlement); s2 after 76 and s4 after 31 → 3 of 5 in time
  → 0.6 × 20 = 12.0

Score 17.5 + 15.0 + 15.0 + 12.0 = 59.5. lender_b had one entry deleted on dispute after no
answer to the verification request: 0 + 0 + 20 (nothing reviewed) + 20 (nothing settled) = 40.
"""

import datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from stdnum.cn import ric as stdnum_ric

from blacklist_portal.celery import app as celery_app
from disputes.models import Dispute
from registry import services as registry_services
from registry.models import Entry
from supervision import quality, tasks_quality
from supervision.models import QualityScore

SH = datetime.timezone(datetime.timedelta(hours=8))
FEB = datetime.date(2026, 2, 1)
NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=SH)


def at(y, m, d, hh=12) -> datetime.datetime:
    return datetime.datetime(y, m, d, hh, tzinfo=SH)


_counter = iter(range(1, 1_000_000))


def entry(member, reporter, *, status="active", settled_on=None, submitted_at=None) -> Entry:
    n = next(_counter)
    body = f"11010519800101{n % 50:03d}"
    subject = registry_services.subject_get_or_create(
        subject_type="person", id_type="RIC", id_number=body + stdnum_ric.calc_check_digit(body + "0"),
        name="张三",
    )
    return Entry.objects.create(
        member=member, subject=subject, subject_role="borrower", contract_no=f"HT-{n:05d}",
        category="overdue", status=status, loan_amount="10000.00", notified_on=datetime.date(2025, 1, 1),
        notice_method="letter", settled_on=settled_on, submitted_by=reporter,
        submitted_at=submitted_at or at(2025, 6, 1),
    )


def last_history(e: Entry):
    return Entry.history.filter(id=e.pk).order_by("-history_id").first()


def recorded_at(e: Entry, when: datetime.datetime) -> None:
    """Date the entry's latest history row (the services stamp the real clock)."""
    Entry.history.filter(history_id=last_history(e).history_id).update(history_date=when)


def settle(e: Entry, actor, settled_on: datetime.date, when: datetime.datetime) -> None:
    registry_services.entry_settle(entry=e, actor=actor, settled_on=settled_on, now=when)
    recorded_at(e, when)


def dispute(entries, *, taker, decided_at=None, decision="", reconsideration="", verification_due_at=None,
            answer="", answered_at=None) -> Dispute:
    n = next(_counter)
    d = Dispute.objects.create(
        receipt_no=f"YY{n:08d}", subject=entries[0].subject, claim_type="other", description="—",
        applicant_name="张三", applicant_name_masked="张*", channel="counter", taken_by=taker,
        status="decided" if decided_at else "awaiting_verification", received_at=at(2026, 1, 20),
        decision_due_at=at(2026, 2, 28), decided_at=decided_at, decision=decision,
        reconsideration=reconsideration, verification_due_at=verification_due_at,
        verification_answer=answer, verification_answered_at=answered_at,
    )
    d.entries.set(entries)
    return d


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def february(lender_a, lender_b, lender_staff, other_lender_staff, review_officer, counter_clerk):
    a, t = lender_staff, counter_clerk
    # Disputes and verification.
    e1, e2, e3, e4 = (entry(lender_a, a) for _ in range(4))
    dispute([e1, e2], taker=t, decided_at=at(2026, 2, 10), decision="deleted",
            verification_due_at=at(2026, 2, 5), answer="verified", answered_at=at(2026, 2, 4))  # d1
    dispute([e3], taker=t, decided_at=at(2026, 2, 20), decision="upheld",
            verification_due_at=at(2026, 2, 12), answer="unverifiable")  # d2
    dispute([e4], taker=t, decided_at=at(2026, 2, 25), decision="corrected", reconsideration="upheld",
            verification_due_at=at(2026, 2, 20), answer="corrected", answered_at=at(2026, 2, 19))  # d3
    dispute([e1], taker=t, decided_at=at(2026, 1, 30), decision="corrected")  # d4: January
    dispute([e2], taker=t, verification_due_at=at(2026, 2, 27), answer="delete", answered_at=at(2026, 2, 26))  # d5
    dispute([e3], taker=t, verification_due_at=at(2026, 2, 15), answer="verified", answered_at=at(2026, 2, 16))  # d6
    dispute([e4], taker=t, verification_due_at=at(2026, 3, 2))  # due in March: not counted
    # lender_b's dispute does not count for lender_a.
    dispute([entry(lender_b, other_lender_staff)], taker=t, decided_at=at(2026, 2, 10), decision="deleted",
            verification_due_at=at(2026, 2, 5), answer="unverifiable")
    # Review.
    r1, r2, r3, r4 = (entry(lender_a, a, status="pending_review") for _ in range(4))
    registry_services.entry_return(entry=r1, actor=review_officer, reason="缺少证据", now=at(2026, 2, 3))
    r1.refresh_from_db()
    r1.status = Entry.Status.PENDING_REVIEW  # the member resubmits
    r1.save()
    registry_services.entry_approve(entry=r1, actor=review_officer, now=at(2026, 2, 8))
    registry_services.entry_approve(entry=r2, actor=review_officer, now=at(2026, 2, 10))
    registry_services.entry_approve(entry=r3, actor=review_officer, now=at(2026, 2, 28, 23))
    registry_services.entry_approve(entry=r4, actor=review_officer, now=at(2026, 1, 25))
    # Settlements.
    s = {i: entry(lender_a, a) for i in (1, 2, 3, 4, 6, 7)}
    settle(s[1], a, datetime.date(2026, 2, 1), at(2026, 2, 10))
    settle(s[2], a, datetime.date(2025, 12, 1), at(2026, 2, 15))
    settle(s[3], a, datetime.date(2026, 1, 20), at(2026, 2, 19))
    settle(s[4], a, datetime.date(2026, 1, 19), at(2026, 2, 19))
    settle(s[6], a, datetime.date(2026, 1, 10), at(2026, 1, 30))  # January
    settle(s[7], a, datetime.date(2026, 2, 5), at(2026, 2, 6))
    settle(s[7], a, datetime.date(2026, 2, 1), at(2026, 2, 20))  # moved earlier: not a new one
    s5 = entry(lender_a, a, status="settled", settled_on=datetime.date(2025, 1, 1))  # reported settled
    recorded_at(s5, at(2026, 2, 10))
    return lender_a


def factors_of(member, *, month=FEB, now=NOW):
    return {f.key: f for f in quality.quality_measure(month=month, member_ids=[member.pk], now=now)[member.pk]}


# --- The factors and the score ----------------------------------------------------------------


def test_share_of_entries_corrected_or_deleted_on_dispute(february):
    f = factors_of(february)["disputes"]

    assert (f.total, f.good, f.value, f.points) == (4, 2, Decimal("0.5"), Decimal("17.5"))


def test_verification_answers_in_time(february):
    f = factors_of(february)["verification"]

    assert (f.total, f.good, f.value, f.points) == (5, 3, Decimal("0.6"), Decimal("15.0"))


def test_entries_returned_at_review(february):
    f = factors_of(february)["review"]

    assert (f.total, f.good, f.value, f.points) == (4, 3, Decimal("0.75"), Decimal("15.0"))


def test_settlements_recorded_late(february):
    f = factors_of(february)["settlement"]

    assert (f.total, f.good, f.value, f.points) == (5, 3, Decimal("0.6"), Decimal("12.0"))


def test_the_score_is_the_sum_of_the_weighted_factors(february, lender_b):
    scores = {s.member_id: s for s in quality.quality_scores_compute(month=FEB, now=NOW)}

    assert scores[february.pk].score == Decimal("59.5")
    assert scores[february.pk].factors["disputes"] == {
        "weight": 35, "total": 4, "good": 2, "value": "0.5000", "points": "17.5",
    }
    assert scores[lender_b.pk].score == Decimal("40.0")
    assert scores[lender_b.pk].factors["review"] == {
        "weight": 20, "total": 0, "good": 0, "value": "1.0000", "points": "20.0",
    }


def test_weights_add_up_to_100():
    assert sum(quality.WEIGHTS.values()) == 100
    assert quality.WEIGHTS == {"disputes": 35, "verification": 25, "review": 20, "settlement": 20}


def test_points_are_rounded_half_up_and_add_up_to_the_score():
    factors = [quality.Factor("disputes", 35, 3, 1), quality.Factor("verification", 25, 4, 3),
               quality.Factor("review", 20, 0, 0), quality.Factor("settlement", 20, 3, 2)]

    # 11.666… → 11.7; 18.75 → 18.8; nothing to count → 20.0; 13.333… → 13.3
    assert [f.points for f in factors] == [Decimal("11.7"), Decimal("18.8"), Decimal("20.0"), Decimal("13.3")]
    assert quality.score_of(factors) == Decimal("63.8")


def test_a_month_not_over_counts_only_what_happened_so_far(february):
    so_far = factors_of(february, now=at(2026, 2, 12, 13))

    # d1 (due 5 Feb) answered in time; d2 (due 12 Feb 12:00) unverifiable; d3, d5, d6 not due yet.
    assert (so_far["verification"].total, so_far["verification"].good) == (2, 1)
    assert so_far["disputes"].total == 2  # d1 decided on 10 February


def test_only_reporting_lenders_are_scored(lender_a, lender_b, regulator_inst, lender_staff):
    entry(lender_a, lender_staff, submitted_at=at(2026, 1, 5))

    assert quality.reporting_members(month=FEB) == [lender_a.pk]
    assert quality.reporting_members(month=datetime.date(2025, 12, 1)) == []


def test_computing_again_replaces_the_months_score(february, lender_staff):
    quality.quality_scores_compute(month=FEB, now=NOW)
    e = entry(february, lender_staff)
    dispute([e], taker=lender_staff, decided_at=at(2026, 2, 27), decision="upheld")

    quality.quality_scores_compute(month=FEB, now=NOW)

    score = QualityScore.objects.get(member=february, month=FEB)
    assert QualityScore.objects.filter(member=february).count() == 1
    assert score.factors["disputes"]["total"] == 5
    assert score.score == Decimal("63.0")  # 3/5 × 35 = 21.0 instead of 17.5


def test_score_history_by_month(february, lender_staff):
    for month in (datetime.date(2026, 1, 1), FEB, datetime.date(2026, 3, 1)):
        quality.quality_scores_compute(month=month, member_ids=[february.pk], now=NOW)

    history = quality.score_history(member=february)

    assert [(s.month, s.score) for s in history] == [
        # January: d4 corrected (0 of 1 → 0 points), r4 approved, s6 in time.
        (datetime.date(2026, 1, 1), Decimal("65.0")),
        (FEB, Decimal("59.5")),
        # March so far: the request due on 2 March is still unanswered on the 10th.
        (datetime.date(2026, 3, 1), Decimal("75.0")),
    ]


def test_the_monthly_task_scores_the_month_just_ended(lender_a, lender_staff):
    entry(lender_a, lender_staff, submitted_at=at(2020, 1, 1))

    assert tasks_quality.quality_scores.delay().get() == 1

    assert QualityScore.objects.get(member=lender_a).month == quality.previous_month()
    assert "supervision.quality_scores" in celery_app.tasks
    beat = settings.CELERY_BEAT_SCHEDULE["supervision-quality-scores"]
    assert beat["task"] == "supervision.quality_scores"
    assert beat["schedule"].day_of_month == {1}


# --- Pages and isolation ----------------------------------------------------------------------


@pytest.fixture
def scored(february):
    quality.quality_scores_compute(month=datetime.date(2026, 1, 1), now=NOW)
    quality.quality_scores_compute(month=FEB, now=NOW)
    return february


@pytest.mark.parametrize("role", ["lender_staff", "lender_admin"])
def test_a_member_sees_its_own_score_with_its_factors_and_history(client, login, request, role, scored):
    login(client, request.getfixturevalue(role))

    response = client.get(reverse("supervision:quality_mine"), follow=True)

    assert response.status_code == 200
    assert response.context["member"] == scored
    assert response.context["latest"].score == Decimal("59.5")
    assert [f.points for f in response.context["latest_factors"]] == [
        Decimal("17.5"), Decimal("15.0"), Decimal("15.0"), Decimal("12.0"),
    ]
    assert [s.month for s in response.context["history"]] == [FEB, datetime.date(2026, 1, 1)]
    html = response.content.decode()
    assert "2 of 4 disputed entries corrected or deleted" in html
    assert "<svg" in html


@pytest.mark.parametrize("role", ["other_lender_staff", "other_lender_admin", "review_officer", "counter_clerk"])
def test_another_members_score_is_a_404(client, login, request, role, scored):
    login(client, request.getfixturevalue(role))

    assert client.get(reverse("supervision:quality_detail", args=[scored.pk])).status_code == 404


def test_the_outsider_sees_only_its_own(client, login, other_lender_staff, scored, lender_b):
    login(client, other_lender_staff)

    response = client.get(reverse("supervision:quality_mine"), follow=True)

    assert response.context["member"] == lender_b
    assert response.context["latest"].score == Decimal("40.0")
    assert "59.5" not in response.content.decode()


@pytest.mark.parametrize("role", ["lender_staff", "lender_admin", "other_lender_staff", "review_officer"])
def test_members_cannot_list_or_compute_scores(client, login, request, role, scored):
    login(client, request.getfixturevalue(role))

    assert client.get(reverse("supervision:quality_list")).status_code == 403
    assert client.post(reverse("supervision:quality_recompute"), {"month": "2026-02"}).status_code == 403


def test_a_regulator_sees_every_members_score(client, login, regulator, scored, lender_b):
    login(client, regulator)

    listing = client.get(reverse("supervision:quality_list"), {"month": "2026-02"})
    detail = client.get(reverse("supervision:quality_detail", args=[lender_b.pk]))

    rows = {member.pk: score.score for member, score, _f in listing.context["rows"] if score}
    assert rows == {scored.pk: Decimal("59.5"), lender_b.pk: Decimal("40.0")}
    assert detail.status_code == 200


def test_only_lenders_have_scores(client, login, regulator, regulator_inst):
    login(client, regulator)

    assert client.get(reverse("supervision:quality_detail", args=[regulator_inst.pk])).status_code == 404
    assert client.get(reverse("supervision:quality_mine")).status_code == 404


def test_a_regulator_computes_a_month_on_demand(client, login, regulator, february, lender_b):
    login(client, regulator)

    response = client.post(reverse("supervision:quality_recompute"), {"month": "2026-02"})

    assert response.status_code == 302
    assert response["Location"].endswith("?month=2026-02")
    assert set(QualityScore.objects.filter(month=FEB).values_list("member_id", flat=True)) == {
        february.pk, lender_b.pk,
    }


def test_lender_users_find_their_score_in_the_navigation(client, login, lender_admin, lender_staff):
    for user in (lender_admin, lender_staff):
        login(client, user)
        home = client.get(reverse("accounts:home"), follow=True)
        assert reverse("supervision:quality_mine") in [i["url"] for i in home.context["nav_items"]]
        assert reverse("supervision:quality_list") not in [i["url"] for i in home.context["nav_items"]]
