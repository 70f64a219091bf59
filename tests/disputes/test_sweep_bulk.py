"""The sweep records and sends a chunk's reminders together (issue 7): a bounded number of
queries per chunk of disputes however many reminders fall due, the reminder rows inserted with
ON CONFLICT DO NOTHING so a reminder another sweep recorded in the meantime is not sent again,
and a chunk that fails leaves nothing behind (the next sweep sends it)."""

import datetime
import functools

import pytest
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.audit.services import audit_verify_chain
from blacklist_portal.inbox.models import Notification, OutgoingEmail
from disputes import services
from disputes.models import ClaimType, Dispute, IntakeChannel, Reminder

SHANGHAI = timezone.get_default_timezone()
DUE_SOON, OVERDUE, VERIFY_DUE = Reminder.Kind.DUE_SOON, Reminder.Kind.OVERDUE, Reminder.Kind.VERIFY_DUE
NOTHING = {"reminders": 0, "escalations": 0, "verification_reminders": 0, "timeouts": 0, "closed": 0}


def at(month: int, day: int, hour: int = 10) -> datetime.datetime:
    return datetime.datetime(2026, month, day, hour, tzinfo=SHANGHAI)


T0 = at(3, 2)  # received then: due at the end of 22 March
SWEEP = at(3, 21)  # one day before: the 5-, 2- and 1-day reminders are all due (told once)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def make(counter_clerk, review_officer, entry):
    """make(n, kind): n disputes that the sweep at SWEEP finds due — "due_soon" (assigned,
    three steps each, told once), "overdue" (unassigned, received 20 February) or "verify"
    (the member owes an answer due tomorrow: two steps, told once)."""

    def factory(n: int, kind: str = "due_soon") -> list[Dispute]:
        made = []
        for _ in range(n):
            received = at(2, 20) if kind == "overdue" else T0
            d = services.dispute_receive(
                actor=counter_clerk, subject=entry.subject, entry=entry, claim_type=ClaimType.WRONG_AMOUNT,
                description="Wrong.", applicant_name="李四", channel=IntakeChannel.COUNTER, now=received,
            )
            if kind != "overdue":
                d = services.dispute_assign(dispute=d, actor=review_officer, assignee=review_officer, now=received)
            if kind == "verify":
                d = services.dispute_request_verification(dispute=d, actor=review_officer, now=at(3, 16))
            made.append(d)
        return made

    return factory


def reminding(field: str) -> Q:
    """Messages the sweep sends (not those of receiving and assigning the disputes)."""
    return (
        Q(**{f"{field}__contains": "decision due in"}) | Q(**{f"{field}__startswith": "Overdue"})
        | Q(**{f"{field}__startswith": "Verification of dispute"})
    )


def state() -> dict:
    return {
        "reminders": Reminder.objects.count(),
        "notifications": Notification.objects.filter(reminding("title")).count(),
        "emails": OutgoingEmail.objects.filter(reminding("subject")).count(),
        "audit": AuditEvent.objects.filter(action="dispute.reminder").count(),
    }


@pytest.mark.parametrize("n", [1, 8])
def test_the_queries_of_a_sweep_do_not_grow_with_the_reminders_it_sends(make, senior_review_officer, n):
    make(n, "due_soon")
    make(n, "overdue")
    make(n, "verify")

    with CaptureQueriesContext(connection) as queries:
        counts = services.dispute_sweep(now=SWEEP)

    # due_soon: 3 steps; verify: the 5-, 2- and 1-day decision steps and 2 verification steps.
    assert counts == {**NOTHING, "reminders": 6 * n, "escalations": n, "verification_reminders": 2 * n}
    # One chunk each for the open and the awaiting disputes, 12 queries each: read the disputes,
    # read their sent reminders, savepoint, insert the reminders, read the recipients (twice),
    # insert notifications and e-mails, chain lock, chain head, insert the audit rows, release;
    # then the decided disputes. The same for 1 or 8 disputes of each kind (the one-by-one
    # sweep took about ten queries per reminder).
    assert len(queries) <= 26
    # Told once per dispute and kind: the verify disputes' assignee and their member's verifier.
    assert state() == {"reminders": 9 * n, "notifications": 4 * n, "emails": 4 * n, "audit": 9 * n}


def test_across_chunks_every_reminder_is_sent_once_with_a_bounded_number_of_queries(
    make, monkeypatch, review_officer, senior_review_officer
):
    monkeypatch.setattr(services, "_chunks", functools.partial(services._chunks, size=3))
    due_soon = make(7, "due_soon")
    overdue = make(4, "overdue")

    with CaptureQueriesContext(connection) as queries:
        first = services.dispute_sweep(now=SWEEP)
    second = services.dispute_sweep(now=SWEEP)

    assert first == {**NOTHING, "reminders": 21, "escalations": 4}
    assert second == NOTHING
    chunks = 4  # 11 open disputes, 3 a chunk
    assert len(queries) <= 12 * chunks + 6
    for d in due_soon:
        assert sorted(Reminder.objects.filter(dispute=d).values_list("kind", "step")) == [
            (DUE_SOON, 1), (DUE_SOON, 2), (DUE_SOON, 5)
        ]
    for d in overdue:
        assert list(Reminder.objects.filter(dispute=d).values_list("kind", "step")) == [(OVERDUE, 0)]
    # Told once per dispute: the assignee of each due-soon dispute, the senior for each overdue one.
    titles = list(
        Notification.objects.filter(reminding("title"), user=review_officer).order_by("pk").values_list("title", "link")
    )
    assert titles == [
        (f"Dispute {Dispute.objects.get(pk=d.pk).receipt_no}: decision due in 1 days",
         reverse("disputes:detail", args=[d.pk]))
        for d in due_soon
    ]
    assert Notification.objects.filter(user=senior_review_officer, title__startswith="Overdue").count() == 4
    assert OutgoingEmail.objects.filter(reminding("subject")).count() == 11
    assert state()["audit"] == 25
    assert audit_verify_chain().ok


def test_one_audit_row_per_reminder_in_the_chain(make):
    [d] = make(1, "due_soon")

    services.dispute_sweep(now=SWEEP)

    rows = list(
        AuditEvent.objects.filter(action="dispute.reminder").order_by("seq")
        .values_list("actor_id", "target_type", "target_id", "details", "occurred_at")
    )
    assert rows == [
        (None, "disputes.dispute", str(d.pk), {"kind": DUE_SOON, "step": step}, SWEEP) for step in (1, 2, 5)
    ]
    assert audit_verify_chain().ok


def test_a_reminder_another_sweep_recorded_since_the_read_is_not_sent_again(make, monkeypatch, senior_review_officer):
    make(2, "due_soon")
    make(1, "overdue")
    services.dispute_sweep(now=SWEEP)
    before = state()
    # This sweep read the sent reminders before the other sweep committed: it tries them all.
    monkeypatch.setattr(services, "_sent_keys", lambda dispute_ids: set())

    assert services.dispute_sweep(now=SWEEP) == NOTHING
    assert state() == before


def test_only_the_reminders_this_sweep_inserted_are_sent(make, monkeypatch, review_officer):
    [d] = make(1, "due_soon")
    # Another sweep recorded (and told about) the first step meanwhile.
    Reminder.objects.create(dispute=d, kind=DUE_SOON, step=1, sent_at=SWEEP)
    monkeypatch.setattr(services, "_sent_keys", lambda dispute_ids: set())

    counts = services.dispute_sweep(now=SWEEP)

    assert counts == {**NOTHING, "reminders": 2}
    assert sorted(Reminder.objects.filter(dispute=d).values_list("step", flat=True)) == [1, 2, 5]
    # As before: only the reminder that carries the message tells; the other sweep sent it.
    assert Notification.objects.filter(reminding("title"), user=review_officer).count() == 0
    assert state()["audit"] == 2


def test_a_chunk_that_fails_leaves_nothing_and_the_next_sweep_sends_it(make, monkeypatch, senior_review_officer):
    make(2, "due_soon")
    make(1, "overdue")
    real = services.audit_record_many

    def broken(events):
        raise RuntimeError("database went away")

    monkeypatch.setattr(services, "audit_record_many", broken)
    with pytest.raises(RuntimeError):
        services.dispute_sweep(now=SWEEP)
    assert state() == {"reminders": 0, "notifications": 0, "emails": 0, "audit": 0}

    monkeypatch.setattr(services, "audit_record_many", real)
    assert services.dispute_sweep(now=SWEEP) == {**NOTHING, "reminders": 6, "escalations": 1}
    assert services.dispute_sweep(now=SWEEP) == NOTHING
    assert state() == {"reminders": 7, "notifications": 3, "emails": 3, "audit": 7}


def test_notify_many_writes_what_notify_would(lender_staff, other_lender_staff, senior_review_officer, lender_admin):
    from blacklist_portal.inbox.services import notify, notify_many

    lender_staff.is_active = False
    lender_staff.save()
    other_lender_staff.email = ""
    other_lender_staff.save()
    messages = [
        ([lender_staff, other_lender_staff, senior_review_officer], "Hello", "Body", "/x/"),
        ([], "Nobody", "", "/y/"),
        ([lender_admin], "T" * 250, "", ""),
    ]

    def written() -> tuple[list, list]:
        notes = list(Notification.objects.order_by("pk").values_list("user_id", "title", "body", "link", "created_at", "read_at"))
        mails = list(OutgoingEmail.objects.order_by("pk").values_list(
            "to", "subject", "body", "created_at", "sent_at", "attempts", "last_error"
        ))
        Notification.objects.all().delete()
        OutgoingEmail.objects.all().delete()
        return notes, mails

    sent = [notify(users=u, title=t, body=b, link=link, now=SWEEP, send_now=False) for u, t, b, link in messages]
    one_by_one = written()
    assert notify_many(messages, now=SWEEP, send_now=False) == sum(sent) == 3
    assert written() == one_by_one
    assert len(one_by_one[1]) == 2  # no e-mail without an address, nothing for the inactive user
