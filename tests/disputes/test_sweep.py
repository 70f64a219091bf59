"""The periodic sweep (disputes.services.dispute_sweep, task "disputes.sweep"): reminders to the
assignee 5, 2 and 1 days before the decision is due, one escalation to the senior officers when
it is overdue, reminders to the member that owes a verification, verification timeouts and
closing after the appeal window. Each reminder is sent exactly once, however often the sweep
runs, and nothing is lost when it did not run for days (product.md "Disputes"; issue 5 item 5).

Also the e-mail outbox the reminders go through (blacklist_portal.inbox)."""

import datetime
import smtplib
import threading
from collections import Counter
from unittest import mock

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection, connections, transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone, translation

from blacklist_portal.accounts.roles import Role
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.celery import app as celery_app
from blacklist_portal.inbox.models import Notification, OutgoingEmail
from blacklist_portal.inbox.services import notify, outbox_send
from disputes import services, tasks
from disputes.models import (
    ClaimType,
    Decision,
    Dispute,
    DisputeEvent,
    IntakeChannel,
    Reminder,
    VerificationAnswer,
)
from disputes.workflow import Status
from registry.models import Entry

SHANGHAI = timezone.get_default_timezone()
DAY = datetime.timedelta(days=1)
TICK = datetime.timedelta(microseconds=1)
DUE_SOON, OVERDUE, VERIFY_DUE = Reminder.Kind.DUE_SOON, Reminder.Kind.OVERDUE, Reminder.Kind.VERIFY_DUE


def at(month: int, day: int, hour: int = 10, minute: int = 0, second: int = 0) -> datetime.datetime:
    """A moment in 2026, Shanghai time."""
    return datetime.datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


# Received at 10:00 on 2 March: the decision is due at the end of 22 March.
T0 = at(3, 2)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def receive(clerk, entry, now=T0) -> Dispute:
    return services.dispute_receive(
        actor=clerk, subject=entry.subject, entry=entry, claim_type=ClaimType.WRONG_AMOUNT,
        description="The amount is wrong.", applicant_name="李四", channel=IntakeChannel.COUNTER, now=now,
    )


@pytest.fixture
def dispute(counter_clerk, review_officer, entry) -> Dispute:
    """Received at T0 and assigned to rita: due at the end of 22 March."""
    received = receive(counter_clerk, entry)
    return services.dispute_assign(dispute=received, actor=review_officer, assignee=review_officer, now=T0)


def fresh(dispute) -> Dispute:
    return Dispute.objects.get(pk=dispute.pk)


def steps(dispute, kind) -> list[int]:
    return sorted(Reminder.objects.filter(dispute=dispute, kind=kind).values_list("step", flat=True))


def inbox(user, contains: str) -> int:
    return Notification.objects.filter(user=user, title__contains=contains).count()


def emails(user, contains: str) -> int:
    return OutgoingEmail.objects.filter(to=user.email, subject__contains=contains).count()


def sweep(now, times: int = 1) -> list[dict]:
    return [services.dispute_sweep(now=now) for _ in range(times)]


def totals() -> dict:
    return {
        "reminders": Reminder.objects.count(),
        "notifications": Notification.objects.count(),
        "emails": OutgoingEmail.objects.count(),
        "audit": AuditEvent.objects.count(),
        "events": DisputeEvent.objects.count(),
        "statuses": sorted(Dispute.objects.values_list("pk", "status")),
    }


NOTHING = {"reminders": 0, "escalations": 0, "verification_reminders": 0, "timeouts": 0, "closed": 0}


# --- The assignee's reminders and the escalation ------------------------------------------------


def test_the_default_reminders_are_5_2_and_1_days_before():
    assert settings.PORTAL_DISPUTE_REMINDER_DAYS == [5, 2, 1]


def test_the_assignee_is_reminded_5_2_and_1_days_before_each_exactly_once(dispute, review_officer):
    due_soon = "decision due in"

    assert sweep(at(3, 16, 23, 59, 59), times=2) == [NOTHING, NOTHING]  # six days before
    assert steps(dispute, DUE_SOON) == []

    first, *again = sweep(at(3, 17, 0, 0, 1), times=3)  # five days before, just after midnight
    assert first == {**NOTHING, "reminders": 1}
    assert again == [NOTHING, NOTHING]
    assert steps(dispute, DUE_SOON) == [5]
    assert (inbox(review_officer, due_soon), emails(review_officer, due_soon)) == (1, 1)

    sweep(at(3, 18), times=2)
    sweep(at(3, 19, 23, 59), times=2)
    assert steps(dispute, DUE_SOON) == [5]

    sweep(at(3, 20, 9), times=2)  # two days before
    assert steps(dispute, DUE_SOON) == [2, 5]
    sweep(at(3, 21, 9), times=5)  # one day before
    sweep(at(3, 21, 18), times=5)
    sweep(at(3, 22, 23, 59, 59), times=5)  # the due day itself: nothing more
    assert steps(dispute, DUE_SOON) == [1, 2, 5]
    assert steps(dispute, OVERDUE) == []

    assert (inbox(review_officer, due_soon), emails(review_officer, due_soon)) == (3, 3)
    no = fresh(dispute).receipt_no
    assert [n.title for n in Notification.objects.filter(user=review_officer, title__contains=due_soon).order_by("pk")] == [
        f"Dispute {no}: decision due in 5 days",
        f"Dispute {no}: decision due in 2 days",
        f"Dispute {no}: decision due in 1 days",
    ]
    assert list(Reminder.objects.filter(dispute=dispute).order_by("pk").values_list("step", "sent_at")) == [
        (5, at(3, 17, 0, 0, 1)), (2, at(3, 20, 9)), (1, at(3, 21, 9)),
    ]
    assert AuditEvent.objects.filter(action="dispute.reminder", target_id=str(dispute.pk)).count() == 3


def test_a_reminder_links_to_the_dispute_in_the_inbox_and_the_email(dispute, review_officer):
    sweep(at(3, 17))

    note = Notification.objects.filter(user=review_officer, title__contains="due in").first()
    link = reverse("disputes:detail", args=[dispute.pk])
    assert note.link == link
    assert note.body == "Due 2026-03-22."
    email = OutgoingEmail.objects.filter(to=review_officer.email, subject=note.title).get()
    assert email.body.endswith(settings.PORTAL_BASE_URL + link)


def test_an_overdue_dispute_is_escalated_once_to_the_senior_officers(
    dispute, review_officer, senior_review_officer, user_factory, operator, counter_clerk
):
    sue = user_factory("sue", Role.SENIOR_REVIEW_OFFICER, institution=operator)
    overdue = "Overdue: dispute"

    sweep(at(3, 22, 23, 59, 59))
    assert steps(dispute, OVERDUE) == []

    first, *again = sweep(at(3, 23, 0, 0, 1), times=3)
    sweep(at(3, 24), times=2)
    sweep(at(4, 30))

    assert first["escalations"] == 1
    assert [c["escalations"] for c in again] == [0, 0]
    assert steps(dispute, OVERDUE) == [0]
    for senior in (senior_review_officer, sue):
        assert inbox(senior, overdue) == 1
        assert emails(senior, overdue) == 1
    assert inbox(review_officer, overdue) == 0  # escalation goes above the assignee
    assert inbox(counter_clerk, overdue) == 0
    title = Notification.objects.get(user=senior_review_officer, title__contains=overdue).title
    assert title == f"Overdue: dispute {fresh(dispute).receipt_no} was due 2026-03-22"


def test_an_unassigned_dispute_gets_no_due_soon_reminders_but_is_escalated(counter_clerk, senior_review_officer, entry):
    unassigned = receive(counter_clerk, entry)

    sweep(at(3, 21))
    assert steps(unassigned, DUE_SOON) == []

    sweep(at(3, 23), times=2)
    assert steps(unassigned, OVERDUE) == [0]
    assert inbox(senior_review_officer, "Overdue") == 1


def test_a_decided_dispute_is_never_reminded_or_escalated(dispute, review_officer):
    services.dispute_decide(dispute=dispute, actor=review_officer, decision=Decision.UPHELD, reasons="Checked.", now=T0)

    sweep(at(3, 21))
    sweep(at(3, 25))

    assert Reminder.objects.filter(dispute=dispute).count() == 0


def test_an_extension_postpones_the_escalation(dispute, review_officer):
    services.dispute_extend(dispute=dispute, actor=review_officer, reason="Court file.", now=at(3, 20))

    assert sweep(at(3, 23))[0]["escalations"] == 0
    assert sweep(at(4, 2))[0]["escalations"] == 1  # the new due day was 1 April


def test_after_an_extension_the_assignee_is_reminded_before_the_new_deadline(dispute, review_officer):
    sweep(at(3, 17))
    sweep(at(3, 20))
    sweep(at(3, 21))
    services.dispute_extend(dispute=dispute, actor=review_officer, reason="Court file.", now=at(3, 21, 12))

    counts = sweep(at(3, 31))  # one day before the new due day, 1 April

    assert counts[0]["reminders"] >= 1


# --- The member's verification ---------------------------------------------------------------------


@pytest.fixture
def awaiting(dispute, review_officer) -> Dispute:
    """Verification asked at T0: the member's answer is due at the end of 7 March."""
    return services.dispute_request_verification(dispute=dispute, actor=review_officer, now=T0)


def test_the_member_owing_a_verification_is_reminded_once_per_step(
    awaiting, lender_staff, lender_admin, other_lender_staff
):
    verify = "Verification of dispute"

    sweep(at(3, 4, 23, 59, 59), times=2)  # three days left
    assert steps(awaiting, VERIFY_DUE) == []

    first, second = sweep(at(3, 5, 0, 0, 1), times=2)
    assert (first["verification_reminders"], second["verification_reminders"]) == (1, 0)
    assert steps(awaiting, VERIFY_DUE) == [2]
    sweep(at(3, 6), times=3)
    sweep(at(3, 7, 23, 59, 59), times=3)
    assert steps(awaiting, VERIFY_DUE) == [1, 2]

    assert (inbox(lender_staff, verify), emails(lender_staff, verify)) == (2, 2)
    assert inbox(lender_admin, verify) == 0  # cannot answer verifications
    assert inbox(other_lender_staff, verify) == 0  # another member
    assert fresh(awaiting).status == Status.AWAITING_VERIFICATION


def test_an_answered_verification_is_not_reminded(awaiting, lender_staff):
    services.dispute_answer_verification(
        dispute=awaiting, actor=lender_staff, answer=VerificationAnswer.VERIFIED, note="ok", now=at(3, 3)
    )

    sweep(at(3, 6))

    assert steps(awaiting, VERIFY_DUE) == []


def test_the_sweep_times_out_a_verification_once(awaiting):
    first, second = sweep(at(3, 8, 0, 0, 1), times=2)

    assert (first["timeouts"], second["timeouts"]) == (1, 0)
    dispute = fresh(awaiting)
    assert (dispute.status, dispute.verification_answer) == (Status.VERIFIED, VerificationAnswer.UNVERIFIABLE)
    assert dispute.events.filter(action="verification_timeout").count() == 1


# --- Closing after the appeal window ---------------------------------------------------------------


def test_decided_disputes_are_closed_once_their_appeal_window_has_passed(dispute, review_officer, counter_clerk, entry):
    decided = services.dispute_decide(
        dispute=dispute, actor=review_officer, decision=Decision.UPHELD, reasons="Checked.", now=T0
    )
    other = services.dispute_assign(
        dispute=receive(counter_clerk, entry), actor=review_officer, assignee=review_officer, now=T0
    )
    appealed = services.dispute_appeal(
        dispute=services.dispute_decide(dispute=other, actor=review_officer, decision=Decision.UPHELD, reasons="Checked.", now=T0),
        actor=counter_clerk, reason="No.", now=at(3, 3),
    )
    appeal_due = fresh(decided).appeal_due_at
    assert appeal_due == at(3, 17, 23, 59, 59).replace(microsecond=999999)

    assert sweep(appeal_due)[0]["closed"] == 0
    assert fresh(decided).status == Status.DECIDED

    first, second = sweep(appeal_due + TICK, times=2)

    assert (first["closed"], second["closed"]) == (1, 0)
    closed = fresh(decided)
    assert (closed.status, closed.closed_at) == (Status.CLOSED, appeal_due + TICK)
    assert closed.events.filter(action="close").count() == 1
    assert fresh(appealed).status == Status.APPEALED  # waits for its reconsideration
    assert Entry.objects.get(pk=entry.pk).disputed is True  # the appeal still holds the flag


def test_a_dispute_another_sweep_just_closed_does_not_break_this_sweep(
    counter_clerk, review_officer, entry, monkeypatch
):
    decided = []
    for _ in range(2):
        d = services.dispute_assign(dispute=receive(counter_clerk, entry), actor=review_officer, assignee=review_officer, now=T0)
        decided.append(services.dispute_decide(dispute=d, actor=review_officer, decision=Decision.UPHELD, reasons="ok", now=T0))
    real_close = services.dispute_close

    def another_worker_was_first(*, dispute, now, **kwargs):
        if dispute.pk == decided[0].pk:
            real_close(dispute=dispute, now=now)  # the other sweep, a moment earlier
        return real_close(dispute=dispute, now=now, **kwargs)

    monkeypatch.setattr(services, "dispute_close", another_worker_was_first)

    services.dispute_sweep(now=at(4, 1))

    assert [fresh(d).status for d in decided] == [Status.CLOSED, Status.CLOSED]


# --- Catching up after a broker outage -----------------------------------------------------------


def test_after_a_ten_day_outage_one_sweep_catches_up_and_a_second_sends_nothing(
    counter_clerk, review_officer, senior_review_officer, lender_staff, entry
):
    def assigned(received_at):
        return services.dispute_assign(
            dispute=receive(counter_clerk, entry, now=received_at), actor=review_officer,
            assignee=review_officer, now=received_at,
        )

    a = assigned(T0)  # due end of 22 March: only its reminders are due
    b = assigned(T0)  # the member is asked on 10 March and never answers (due end of 15 March)
    c = assigned(at(2, 20))  # due end of 12 March: overdue by the time the sweep is back
    d = services.dispute_decide(  # appeal window ends 17 March: to be closed
        dispute=assigned(T0), actor=review_officer, decision=Decision.UPHELD, reasons="ok", now=T0
    )
    e = services.dispute_appeal(  # appealed: nothing for the sweep to do
        dispute=services.dispute_decide(dispute=assigned(T0), actor=review_officer, decision=Decision.UPHELD, reasons="ok", now=T0),
        actor=counter_clerk, reason="No.", now=at(3, 3),
    )

    # Daily sweeps until 11 March ...
    for day in range(2, 12):
        if day == 10:
            services.dispute_request_verification(dispute=b, actor=review_officer, now=at(3, 10, 9))
        sweep(at(3, day))
    assert steps(c, DUE_SOON) == [1, 2, 5]
    assert Reminder.objects.exclude(dispute=c).count() == 0
    assert fresh(b).status == Status.AWAITING_VERIFICATION
    before = totals()
    assignee_notes = inbox(review_officer, "decision due in")

    # ... then Redis is down for ten days; the first sweep after it runs on 21 March.
    counts = sweep(at(3, 21))[0]

    assert counts == {"reminders": 6, "escalations": 1, "verification_reminders": 0, "timeouts": 1, "closed": 1}
    for reminded in (a, b):
        assert steps(reminded, DUE_SOON) == [1, 2, 5]  # every missed step recorded, once
    assert steps(b, VERIFY_DUE) == []  # its answer is past due: reminding the member is pointless
    assert steps(c, OVERDUE) == [0]
    assert steps(a, OVERDUE) == steps(b, OVERDUE) == []
    assert Reminder.objects.filter(dispute__in=[d, e]).count() == 0
    assert fresh(b).verification_answer == VerificationAnswer.UNVERIFIABLE
    assert [fresh(x).status for x in (a, b, c, d, e)] == [
        Status.ASSIGNED, Status.VERIFIED, Status.ASSIGNED, Status.CLOSED, Status.APPEALED,
    ]
    # Every missed step is recorded, but each assignee is told once per dispute, not three times.
    assert inbox(review_officer, "decision due in") == assignee_notes + 2
    assert inbox(senior_review_officer, "Overdue") == 1
    assert inbox(lender_staff, "Verification of dispute") == 0

    after = totals()
    assert after["reminders"] == before["reminders"] + 7
    # Seven Reminder rows, but one message per dispute and kind: the assignee of a and b once
    # each, the one senior officer once for c's escalation.
    assert after["notifications"] - before["notifications"] == 3
    assert after["emails"] - before["emails"] == 3

    # The next sweep (same instant, or an hour later) finds nothing to send.
    assert sweep(at(3, 21)) == [NOTHING]
    assert sweep(at(3, 21, 11)) == [NOTHING]
    assert totals() == after


# --- The task and its schedule ------------------------------------------------------------------------


def test_beat_runs_the_sweep_task_every_configured_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["disputes-sweep"]

    assert entry == {"task": "disputes.sweep", "schedule": settings.PORTAL_DISPUTE_SWEEP_SECONDS}
    assert "disputes.sweep" in celery_app.tasks


def test_the_task_sweeps_with_the_real_clock_and_is_safe_to_run_twice(counter_clerk, review_officer, entry):
    # Received 19 Shanghai days ago: due at the end of tomorrow, so all three reminders are due.
    received = timezone.now() - datetime.timedelta(days=19)
    dispute = services.dispute_assign(
        dispute=receive(counter_clerk, entry, now=received), actor=review_officer, assignee=review_officer, now=received
    )
    assert services.days_left(fresh(dispute).decision_due_at, timezone.now()) == 1

    # apply(): run here, as a worker would, whatever the broker settings.
    first = tasks.sweep.apply().get()
    second = tasks.sweep.apply().get()

    assert first["reminders"] == 3
    assert second == NOTHING
    assert steps(dispute, DUE_SOON) == [1, 2, 5]


# --- The e-mail outbox ---------------------------------------------------------------------------------


def test_notify_fills_the_inbox_and_queues_one_email_per_user(lender_staff, other_lender_staff, senior_review_officer):
    lender_staff.is_active = False
    lender_staff.save()
    other_lender_staff.email = ""
    other_lender_staff.save()

    sent_to = notify(users=[lender_staff, other_lender_staff, senior_review_officer], title="Hello", body="Body", link="/x/")

    assert sent_to == 2  # the inactive user is skipped
    assert list(Notification.objects.values_list("user__username", flat=True).order_by("user__username")) == ["charlie", "sam"]
    # No address, no e-mail; the e-mail carries the full link.
    assert list(OutgoingEmail.objects.values_list("to", "subject", "body")) == [
        ("sam@example.com", "Hello", f"Body\n\n{settings.PORTAL_BASE_URL}/x/")
    ]


def test_the_outbox_goes_out_after_commit_and_each_email_only_once(
    lender_staff, other_lender_staff, senior_review_officer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with transaction.atomic():
            notify(users=[lender_staff, other_lender_staff], title="First", body="1")
        assert mail.outbox == []  # nothing before the commit
    assert len(callbacks) == 1
    assert sorted(m.to[0] for m in mail.outbox) == ["alice@example.com", "charlie@example.com"]

    notify(users=[senior_review_officer], title="Second")
    assert outbox_send() == 1
    assert outbox_send() == 0
    assert outbox_send() == 0

    assert sorted((m.to[0], m.subject) for m in mail.outbox) == [
        ("alice@example.com", "First"), ("charlie@example.com", "First"), ("sam@example.com", "Second"),
    ]
    assert OutgoingEmail.objects.filter(sent_at__isnull=True).count() == 0
    assert set(OutgoingEmail.objects.values_list("attempts", flat=True)) == {1}


def test_a_failing_send_stays_queued_and_the_next_call_sends_it(lender_staff):
    notify(users=[lender_staff], title="Reminder")

    with mock.patch("blacklist_portal.inbox.services.send_mail", side_effect=smtplib.SMTPServerDisconnected("down")):
        assert outbox_send() == 0
    queued = OutgoingEmail.objects.get()
    assert queued.sent_at is None
    assert "down" in queued.last_error
    assert queued.attempts == 1

    assert outbox_send() == 1
    assert [m.subject for m in mail.outbox] == ["Reminder"]


def test_a_failed_attempt_is_recorded_and_the_email_stays_queued(lender_staff):
    notify(users=[lender_staff], title="Reminder")

    with mock.patch("blacklist_portal.inbox.services.send_mail", side_effect=smtplib.SMTPServerDisconnected("down")):
        assert outbox_send() == 0

    queued = OutgoingEmail.objects.get()
    assert (queued.sent_at, queued.last_error) == (None, "down")
    assert queued.attempts >= 1
    assert mail.outbox == []


def test_a_transient_failure_does_not_lose_the_email(lender_staff):
    notify(users=[lender_staff], title="Reminder")

    with mock.patch("blacklist_portal.inbox.services.send_mail", side_effect=smtplib.SMTPServerDisconnected("down")) as send:
        assert outbox_send() == 0  # one attempt per sweep: a failing server is not hammered
    assert outbox_send() == 1  # the next sweep delivers it

    assert send.call_count == 1
    assert [m.subject for m in mail.outbox] == ["Reminder"]
    sent = OutgoingEmail.objects.get()
    assert sent.sent_at is not None
    assert sent.last_error == "down"  # the failure stays on record


def test_an_email_that_keeps_failing_does_not_hold_up_the_others(lender_staff, other_lender_staff):
    notify(users=[lender_staff], title="Broken", now=T0)
    notify(users=[other_lender_staff], title="Fine", now=T0 + DAY)

    def refuse_alice(subject, body, from_email, to):
        if to == ["alice@example.com"]:
            raise smtplib.SMTPRecipientsRefused({"alice@example.com": (550, b"no")})
        return mail.send_mail(subject, body, from_email, to)

    with mock.patch("blacklist_portal.inbox.services.send_mail", side_effect=refuse_alice):
        outbox_send()

    assert [m.to for m in mail.outbox] == [["charlie@example.com"]]
    assert OutgoingEmail.objects.get(subject="Broken").sent_at is None


# --- Two sweeps at the same instant (PostgreSQL) ---------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent sweeps need PostgreSQL row locks")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_sweeps_at_the_same_instant_send_each_reminder_once(
    counter_clerk, review_officer, senior_review_officer, entry
):
    due_tomorrow = [
        services.dispute_assign(dispute=receive(counter_clerk, entry), actor=review_officer, assignee=review_officer, now=T0)
        for _ in range(8)
    ]
    overdue = [receive(counter_clerk, entry, now=at(2, 20)) for _ in range(4)]  # due end of 12 March
    now = at(3, 21)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweeper():
        try:
            barrier.wait(timeout=10)
            with translation.override("en"):  # the language is per thread
                results.append(services.dispute_sweep(now=now))
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(results) == 2
    per_key = Reminder.objects.values("dispute", "kind", "step").annotate(n=Count("pk"))
    assert {row["n"] for row in per_key} == {1}
    assert Counter((row["kind"], row["step"]) for row in per_key) == {
        (DUE_SOON, 5): 8, (DUE_SOON, 2): 8, (DUE_SOON, 1): 8, (OVERDUE, 0): 4,
    }
    # Between them the two sweeps sent each reminder exactly once.
    assert sum(r["reminders"] for r in results) == 24
    assert sum(r["escalations"] for r in results) == 4
    # 24 reminder rows (3 steps × 8 disputes) but one message per dispute: the assignee is
    # told once when several steps fall due in the same sweep.
    assert inbox(review_officer, "decision due in") == 8
    assert emails(review_officer, "decision due in") == 8
    assert inbox(senior_review_officer, "Overdue") == 4
    assert {steps(d, DUE_SOON) == [1, 2, 5] for d in due_tomorrow} == {True}
    assert {steps(d, OVERDUE) == [0] for d in overdue} == {True}
