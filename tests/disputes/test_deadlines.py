"""Dispute deadlines are counted in Asia/Shanghai calendar days and end at the last instant of
the due day (product.md "Disputes": decision within 20 days, verification within 5, appeal
within 15; one extension). The numbers come from settings, not constants."""

import datetime

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone

from disputes import services
from disputes.models import ClaimType, Decision, IntakeChannel


def utc(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=datetime.UTC)


def end_of_shanghai_day(year: int, month: int, day: int) -> datetime.datetime:
    """23:59:59.999999 in Shanghai (UTC+8, no daylight saving) as a UTC instant."""
    return utc(year, month, day, 15, 59, 59, 999999)


# 2026-03-01 23:30 in Shanghai: still the 1st there, the 1st in UTC too.
LATE_EVENING = utc(2026, 3, 1, 15, 30)
# 2026-03-02 00:10 in Shanghai: already the 2nd there, still the 1st in UTC.
JUST_AFTER_MIDNIGHT = utc(2026, 3, 1, 16, 10)


# --- The pure helpers --------------------------------------------------------------------------


def test_the_default_deadlines_are_the_legal_ones():
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.PORTAL_DISPUTE_DECISION_DAYS == 20
    assert settings.PORTAL_DISPUTE_VERIFICATION_DAYS == 5
    assert settings.PORTAL_DISPUTE_APPEAL_DAYS == 15
    assert settings.PORTAL_DISPUTE_EXTENSION_DAYS == 10


def test_received_late_in_the_evening_is_due_at_the_end_of_the_twentieth_shanghai_day():
    due = services.end_of_day_after(LATE_EVENING, 20)

    assert due == end_of_shanghai_day(2026, 3, 21)
    assert due == utc(2026, 3, 21, 15, 59, 59, 999999)
    assert due != end_of_shanghai_day(2026, 3, 20)
    assert due != end_of_shanghai_day(2026, 3, 22)
    local = timezone.localtime(due)
    assert (local.date(), local.time()) == (datetime.date(2026, 3, 21), datetime.time.max)


def test_received_just_after_midnight_shanghai_counts_from_the_new_shanghai_day():
    # The UTC date is still 1 March: counting in UTC would make it due a day early.
    due = services.end_of_day_after(JUST_AFTER_MIDNIGHT, 20)

    assert due == end_of_shanghai_day(2026, 3, 22)
    assert due != end_of_shanghai_day(2026, 3, 21)


def test_the_due_instant_is_the_last_microsecond_before_the_next_shanghai_day():
    due = services.end_of_day_after(LATE_EVENING, 20)
    next_day_starts = datetime.datetime(2026, 3, 22, tzinfo=timezone.get_default_timezone())

    assert next_day_starts - due == datetime.timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("start", "days", "due_day"),
    [
        (utc(2026, 2, 10, 4, 0), 20, (2026, 3, 2)),  # across the end of a short February
        (utc(2026, 12, 20, 4, 0), 20, (2027, 1, 9)),  # across the new year
        (utc(2028, 2, 9, 4, 0), 20, (2028, 2, 29)),  # a leap day
        (utc(2026, 3, 1, 16, 0), 0, (2026, 3, 2)),  # Shanghai midnight itself is the new day
        (utc(2026, 3, 1, 15, 59, 59, 999999), 0, (2026, 3, 1)),
    ],
)
def test_due_days_are_counted_on_the_shanghai_calendar(start, days, due_day):
    assert services.end_of_day_after(start, days) == end_of_shanghai_day(*due_day)


def test_days_left_changes_at_shanghai_midnight_not_utc_midnight():
    due = end_of_shanghai_day(2026, 3, 21)

    assert services.days_left(due, LATE_EVENING) == 20
    assert services.days_left(due, utc(2026, 3, 20, 15, 59, 59)) == 1  # 23:59:59 on the 20th
    assert services.days_left(due, utc(2026, 3, 20, 16, 0)) == 0  # 00:00 on the 21st
    # 01:00 in Shanghai on the 21st is still the 20th in UTC; it is due today all the same.
    assert services.days_left(due, utc(2026, 3, 20, 17, 0)) == 0
    assert services.days_left(due, due) == 0
    assert services.days_left(due, due + datetime.timedelta(microseconds=1)) == -1
    assert services.days_left(due, utc(2026, 3, 23, 16, 0)) == -3


def test_deadlines_do_not_depend_on_the_active_time_zone():
    with timezone.override("UTC"):
        due = services.end_of_day_after(JUST_AFTER_MIDNIGHT, 20)
        left = services.days_left(end_of_shanghai_day(2026, 3, 21), utc(2026, 3, 20, 17, 0))

    assert due == end_of_shanghai_day(2026, 3, 22)
    assert left == 0


# --- The deadlines the services store ------------------------------------------------------------


@pytest.fixture
def entry(make_overdue_entry):
    return make_overdue_entry("11010519491231002X", "张三")


def configured(**values):
    """override_settings for the values given; None keeps the project's default."""
    return override_settings(**{k: v for k, v in values.items() if v is not None})


def receive(clerk, entry, now):
    return services.dispute_receive(
        actor=clerk,
        subject=entry.subject,
        entry=entry,
        claim_type=ClaimType.WRONG_AMOUNT,
        description="The overdue amount is wrong.",
        applicant_name="张三",
        channel=IntakeChannel.COUNTER,
        now=now,
    )


@pytest.mark.parametrize(
    ("received", "due_day", "receipt_day"),
    [(LATE_EVENING, (2026, 3, 21), "20260301"), (JUST_AFTER_MIDNIGHT, (2026, 3, 22), "20260302")],
)
def test_a_received_dispute_stores_its_shanghai_deadline(counter_clerk, entry, received, due_day, receipt_day):
    dispute = receive(counter_clerk, entry, received)
    dispute.refresh_from_db()

    # Read back from the database: the microseconds survive, so "end of day" stays the end.
    assert dispute.received_at == received
    assert dispute.decision_due_at == end_of_shanghai_day(*due_day)
    assert dispute.receipt_no.startswith(f"D{receipt_day}")


@override_settings(PORTAL_DISPUTE_DECISION_DAYS=30)
def test_the_decision_deadline_comes_from_settings(counter_clerk, entry):
    dispute = receive(counter_clerk, entry, LATE_EVENING)
    dispute.refresh_from_db()

    assert dispute.decision_due_at == end_of_shanghai_day(2026, 3, 31)


@pytest.mark.parametrize(("days", "due_day"), [(None, (2026, 3, 7)), (3, (2026, 3, 5))])
def test_the_member_has_five_days_to_verify_or_what_settings_say(
    counter_clerk, review_officer, entry, days, due_day
):
    dispute = receive(counter_clerk, entry, LATE_EVENING)
    services.dispute_assign(dispute=dispute, actor=review_officer, assignee=review_officer, now=LATE_EVENING)
    asked = utc(2026, 3, 1, 16, 30)  # 00:30 on 2 March in Shanghai
    with configured(PORTAL_DISPUTE_VERIFICATION_DAYS=days):
        services.dispute_request_verification(dispute=dispute, actor=review_officer, now=asked)
    dispute.refresh_from_db()

    assert dispute.verification_due_at == end_of_shanghai_day(*due_day)


@pytest.mark.parametrize(("days", "due_day"), [(None, (2026, 3, 26)), (10, (2026, 3, 21))])
def test_the_appeal_window_is_fifteen_shanghai_days_or_what_settings_say(
    counter_clerk, review_officer, entry, days, due_day
):
    dispute = receive(counter_clerk, entry, LATE_EVENING)
    services.dispute_assign(dispute=dispute, actor=review_officer, assignee=review_officer, now=LATE_EVENING)
    decided = utc(2026, 3, 10, 17, 0)  # 01:00 on 11 March in Shanghai
    with configured(PORTAL_DISPUTE_APPEAL_DAYS=days):
        services.dispute_decide(
            dispute=dispute, actor=review_officer, decision=Decision.UPHELD, reasons="Checked.", now=decided
        )
    dispute.refresh_from_db()

    assert dispute.appeal_due_at == end_of_shanghai_day(*due_day)


@pytest.mark.parametrize(("days", "due_day"), [(None, (2026, 3, 31)), (5, (2026, 3, 26))])
def test_an_extension_moves_the_due_day_by_the_configured_number_of_days(
    counter_clerk, review_officer, entry, days, due_day
):
    dispute = receive(counter_clerk, entry, LATE_EVENING)  # due end of 21 March
    with configured(PORTAL_DISPUTE_EXTENSION_DAYS=days):
        services.dispute_extend(
            dispute=dispute, actor=review_officer, reason="Waiting for the court file.",
            now=utc(2026, 3, 19, 2, 0),
        )
    dispute.refresh_from_db()

    assert dispute.decision_due_at == end_of_shanghai_day(*due_day)
