"""Complaints (投诉) against members (product.md "Disputes", complaint row; issue 8 item 3):
taken at the counter or from a letter, a written reply due at the end of the Asia/Shanghai
day 30 days after receipt, assignment to a regulator, reply, closure, and the periodic sweep:
reminders to the assignee before the due date and one escalation to every regulator once it
is overdue — each exactly once however often the sweep runs, catching up after an outage."""

import datetime
import threading

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections
from django.utils import timezone, translation

from blacklist_portal.accounts.models import Institution
from blacklist_portal.accounts.roles import Role
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.celery import app as celery_app
from blacklist_portal.inbox.models import Notification
from supervision import services, tasks
from supervision.models import Complaint, ComplaintReminder

SHANGHAI = timezone.get_default_timezone()
DAY = datetime.timedelta(days=1)
DUE_SOON, OVERDUE = ComplaintReminder.Kind.DUE_SOON, ComplaintReminder.Kind.OVERDUE


def at(month: int, day: int, hour: int = 10, minute: int = 0) -> datetime.datetime:
    """A moment in 2026, Shanghai time."""
    return datetime.datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


# Received at 10:00 on 2 March: the reply is due at the end of 1 April (Shanghai).
T0 = at(3, 2)
END_OF_DUE_DAY = datetime.datetime(2026, 4, 1, 23, 59, 59, 999999, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def second_regulator(regulator_inst, user_factory):
    return user_factory("rosa", Role.REGULATOR, institution=regulator_inst)


def receive(actor, member, *, now=T0, **overrides) -> Complaint:
    values = {
        "complainant_name": "王小明",
        "complainant_contact": "北京市朝阳区建国路1号 13912345678",
        "channel": Complaint.Channel.COUNTER,
        "summary": "夜间催收电话",
        "description": "该机构在晚上十一点以后多次打电话催收。",
    }
    values.update(overrides)
    return services.complaint_receive(actor=actor, member=member, now=now, **values)


def reminders(complaint) -> list[tuple[str, int]]:
    return sorted(complaint.reminders.values_list("kind", "step"))


def inbox(user) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("pk").values_list("title", flat=True))


# --- The deadline ---------------------------------------------------------------------------------


def test_a_complaint_received_at_2330_shanghai_is_due_at_the_end_of_the_shanghai_day_30_days_later(
    counter_clerk, lender_a
):
    late = at(3, 2, 23, 30)  # 15:30 UTC the same day

    complaint = receive(counter_clerk, lender_a, now=late)

    assert complaint.received_at == late
    assert complaint.due_at == END_OF_DUE_DAY
    assert timezone.localtime(complaint.due_at, SHANGHAI).date() == datetime.date(2026, 4, 1)


def test_the_day_of_receipt_is_the_shanghai_day_even_when_utc_is_still_on_the_day_before(
    counter_clerk, lender_a
):
    early = at(3, 3, 0, 30)  # 16:30 UTC on 2 March

    complaint = receive(counter_clerk, lender_a, now=early)

    assert early.astimezone(datetime.UTC).date() == datetime.date(2026, 3, 2)
    assert complaint.due_at == datetime.datetime(2026, 4, 2, 23, 59, 59, 999999, tzinfo=SHANGHAI)


def test_the_reply_period_is_a_setting(counter_clerk, lender_a, settings):
    settings.PORTAL_COMPLAINT_REPLY_DAYS = 10

    complaint = receive(counter_clerk, lender_a)

    assert timezone.localtime(complaint.due_at, SHANGHAI).date() == datetime.date(2026, 3, 12)


# --- Intake ----------------------------------------------------------------------------------------


def test_intake_stores_the_complainant_encrypted_and_masked_and_tells_the_regulators(
    counter_clerk, lender_a, regulator
):
    complaint = receive(counter_clerk, lender_a)

    complaint.refresh_from_db()
    assert complaint.status == Complaint.Status.RECEIVED
    assert complaint.receipt_no.startswith("C20260302")
    assert (complaint.complainant_name, complaint.complainant_name_masked) == ("王小明", "王**")
    assert complaint.taken_by == counter_clerk
    with connection.cursor() as cursor:
        cursor.execute("SELECT complainant_name, complainant_contact FROM supervision_complaint")
        stored = cursor.fetchone()
    assert "王小明" not in stored[0] and "13912345678" not in stored[1]
    assert inbox(regulator) == [f"New complaint {complaint.receipt_no} about {lender_a.name}"]
    event = AuditEvent.objects.get(action="complaint.receive")
    assert (event.actor, event.institution, event.target_id) == (counter_clerk, lender_a, str(complaint.pk))
    assert "王小明" not in str(event.details)


@pytest.mark.parametrize("taker", ["counter_clerk", "platform_admin", "regulator"])
def test_counter_clerks_platform_staff_and_regulators_take_complaints(request, taker, lender_a):
    actor = request.getfixturevalue(taker)

    complaint = receive(actor, lender_a, channel=Complaint.Channel.LETTER)

    assert complaint.taken_by == actor


@pytest.mark.parametrize("outsider", ["lender_staff", "lender_admin", "review_officer"])
def test_members_and_review_officers_do_not_take_complaints(request, outsider, lender_b):
    with pytest.raises(PermissionDenied):
        receive(request.getfixturevalue(outsider), lender_b)
    assert not Complaint.objects.exists()


def test_a_complaint_is_about_a_member_institution(counter_clerk, operator):
    with pytest.raises(ValidationError) as refused:
        receive(counter_clerk, operator)
    assert "member" in refused.value.error_dict


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"channel": "email"}, "channel"), ({"complainant_name": "  "}, "complainant_name"),
     ({"summary": ""}, "summary"), ({"description": " "}, "description")],
)
def test_intake_refuses_incomplete_complaints(counter_clerk, lender_a, overrides, field):
    with pytest.raises(ValidationError) as refused:
        receive(counter_clerk, lender_a, **overrides)
    assert field in refused.value.error_dict
    assert not Complaint.objects.exists()


# --- Assign, reply, close ---------------------------------------------------------------------------


def test_a_complaint_is_assigned_replied_to_in_writing_and_closed(counter_clerk, lender_a, regulator):
    complaint = receive(counter_clerk, lender_a)

    services.complaint_assign(complaint=complaint, actor=regulator, assignee=regulator, now=T0 + DAY)
    services.complaint_reply(complaint=complaint, actor=regulator, reply="经核查，已责令整改。", now=T0 + 5 * DAY)
    services.complaint_close(complaint=complaint, actor=regulator, now=T0 + 6 * DAY)

    complaint.refresh_from_db()
    assert complaint.status == Complaint.Status.CLOSED
    assert (complaint.assignee, complaint.replied_by, complaint.reply) == (regulator, regulator, "经核查，已责令整改。")
    assert (complaint.replied_at, complaint.closed_at) == (T0 + 5 * DAY, T0 + 6 * DAY)
    actions = list(AuditEvent.objects.filter(target_id=str(complaint.pk), target_type="supervision.complaint")
                   .order_by("seq").values_list("action", flat=True))
    assert actions == ["complaint.receive", "complaint.assign", "complaint.reply", "complaint.close"]
    assert AuditEvent.objects.get(action="complaint.reply").details["on_time"] is True


def test_the_assignee_is_told_and_only_the_assignee_replies(
    counter_clerk, lender_a, regulator, second_regulator
):
    complaint = receive(counter_clerk, lender_a)
    services.complaint_assign(complaint=complaint, actor=regulator, assignee=second_regulator, now=T0)

    assert f"Complaint {complaint.receipt_no} is assigned to you" in inbox(second_regulator)
    with pytest.raises(ValidationError, match="assigned to"):
        services.complaint_reply(complaint=complaint, actor=regulator, reply="x", now=T0)
    services.complaint_reply(complaint=complaint, actor=second_regulator, reply="答复", now=T0)
    assert Complaint.objects.get().status == Complaint.Status.REPLIED


def test_a_complaint_is_replied_to_only_once_assigned_and_closed_only_once_replied(
    counter_clerk, lender_a, regulator
):
    complaint = receive(counter_clerk, lender_a)

    with pytest.raises(ValidationError):
        services.complaint_reply(complaint=complaint, actor=regulator, reply="答复", now=T0)
    with pytest.raises(ValidationError):
        services.complaint_close(complaint=complaint, actor=regulator, now=T0)
    services.complaint_assign(complaint=complaint, actor=regulator, assignee=regulator, now=T0)
    with pytest.raises(ValidationError) as empty:
        services.complaint_reply(complaint=complaint, actor=regulator, reply="  ", now=T0)
    assert "reply" in empty.value.error_dict
    assert Complaint.objects.get().status == Complaint.Status.ASSIGNED


def test_a_complaint_is_assigned_only_to_a_regulator_and_only_by_one(
    counter_clerk, lender_a, regulator, review_officer
):
    complaint = receive(counter_clerk, lender_a)

    with pytest.raises(ValidationError) as wrong:
        services.complaint_assign(complaint=complaint, actor=regulator, assignee=review_officer, now=T0)
    assert "assignee" in wrong.value.error_dict
    with pytest.raises(PermissionDenied):
        services.complaint_assign(complaint=complaint, actor=counter_clerk, assignee=regulator, now=T0)
    assert Complaint.objects.get().assignee is None


def test_a_late_reply_is_recorded_as_late(counter_clerk, lender_a, regulator):
    complaint = receive(counter_clerk, lender_a)
    services.complaint_assign(complaint=complaint, actor=regulator, assignee=regulator, now=T0)

    services.complaint_reply(complaint=complaint, actor=regulator, reply="答复", now=END_OF_DUE_DAY + DAY)

    assert AuditEvent.objects.get(action="complaint.reply").details["on_time"] is False


def test_revealing_the_complainant_is_for_regulators_and_is_logged(counter_clerk, lender_a, regulator):
    complaint = receive(counter_clerk, lender_a)

    with pytest.raises(PermissionDenied):
        services.complaint_reveal(complaint=complaint, actor=counter_clerk)
    values = services.complaint_reveal(complaint=complaint, actor=regulator)

    assert values == {"name": "王小明", "contact": "北京市朝阳区建国路1号 13912345678"}
    event = AuditEvent.objects.get(action="complaint.reveal")
    assert (event.actor, event.target_id) == (regulator, str(complaint.pk))


# --- The sweep: reminders and escalation ---------------------------------------------------------


@pytest.fixture
def assigned(counter_clerk, lender_a, regulator) -> Complaint:
    complaint = receive(counter_clerk, lender_a)
    services.complaint_assign(complaint=complaint, actor=regulator, assignee=regulator, now=T0)
    return complaint


def test_reminders_go_to_the_assignee_7_3_and_1_days_ahead_each_exactly_once(
    assigned, regulator, second_regulator
):
    assert settings.PORTAL_COMPLAINT_REMINDER_DAYS == [7, 3, 1]
    assert services.complaint_sweep(now=at(3, 20)) == {"reminders": 0, "escalations": 0}

    sent = []
    for moment in (at(3, 25), at(3, 25, 18), at(3, 29), at(3, 29, 9), at(3, 31), at(4, 1, 23, 59)):
        sent.append(services.complaint_sweep(now=moment)["reminders"])

    assert sent == [1, 0, 1, 0, 1, 0]
    assert reminders(assigned) == [(DUE_SOON, 1), (DUE_SOON, 3), (DUE_SOON, 7)]
    titles = [t for t in inbox(regulator) if "written reply due" in t]
    assert titles == [f"Complaint {assigned.receipt_no}: written reply due 2026-04-01"] * 3
    assert not [t for t in inbox(second_regulator) if assigned.receipt_no in t]


def test_an_unassigned_complaint_reminds_every_regulator(counter_clerk, lender_a, regulator, second_regulator):
    complaint = receive(counter_clerk, lender_a)

    services.complaint_sweep(now=at(3, 26))

    for user in (regulator, second_regulator):
        assert f"Complaint {complaint.receipt_no}: written reply due 2026-04-01" in inbox(user)


def test_after_an_outage_the_sweep_catches_up_with_the_most_urgent_reminder_only(assigned, regulator):
    assert services.complaint_sweep(now=at(3, 7))["reminders"] == 0
    # The workers are down for 20 days: the next sweep runs on 27 March, 5 days before.
    assert services.complaint_sweep(now=at(3, 7) + 20 * DAY)["reminders"] == 1
    assert reminders(assigned) == [(DUE_SOON, 7)]
    # Down again until the last day: "1 day" is sent, the missed "3 days" is not sent late.
    assert services.complaint_sweep(now=at(4, 1, 8))["reminders"] == 1
    assert services.complaint_sweep(now=at(4, 1, 9))["reminders"] == 0

    assert reminders(assigned) == [(DUE_SOON, 1), (DUE_SOON, 7)]
    assert len([t for t in inbox(regulator) if "written reply due" in t]) == 2


def test_an_overdue_complaint_is_escalated_once_to_every_regulator(assigned, regulator, second_regulator):
    assert services.complaint_sweep(now=END_OF_DUE_DAY)["escalations"] == 0

    first = services.complaint_sweep(now=END_OF_DUE_DAY + datetime.timedelta(microseconds=1))
    second = services.complaint_sweep(now=at(4, 10))

    assert (first["escalations"], second["escalations"]) == (1, 0)
    title = f"Overdue: complaint {assigned.receipt_no} about {assigned.member.name} was due 2026-04-01"
    assert inbox(second_regulator) == [title]
    assert inbox(regulator).count(title) == 1
    event = AuditEvent.objects.get(action="complaint.reminder", details__kind=OVERDUE)
    assert event.actor is None


def test_an_outage_across_the_due_date_escalates_without_late_reminders(assigned):
    counts = services.complaint_sweep(now=at(4, 20))

    assert counts == {"reminders": 0, "escalations": 1}
    assert reminders(assigned) == [(OVERDUE, 0)]


def test_answered_complaints_get_no_reminders(assigned, regulator):
    services.complaint_reply(complaint=assigned, actor=regulator, reply="答复", now=at(3, 20))

    assert services.complaint_sweep(now=at(3, 31)) == {"reminders": 0, "escalations": 0}
    assert services.complaint_sweep(now=at(4, 30)) == {"reminders": 0, "escalations": 0}
    assert not ComplaintReminder.objects.exists()


def test_an_inactive_regulator_is_not_escalated_to(assigned, second_regulator):
    second_regulator.is_active = False
    second_regulator.save()

    services.complaint_sweep(now=at(4, 5))

    assert inbox(second_regulator) == []


def test_the_sweep_task_is_on_the_beat_schedule_and_runs_the_sweep(assigned, regulator, monkeypatch):
    entry = settings.CELERY_BEAT_SCHEDULE["supervision-complaint-sweep"]
    assert entry["task"] == "supervision.complaint_sweep"
    assert entry["task"] in celery_app.tasks
    monkeypatch.setattr(services.timezone, "now", lambda: at(3, 26))

    first = tasks.complaint_sweep.delay().get()
    again = tasks.complaint_sweep.delay().get()

    assert (first, again) == ({"reminders": 1, "escalations": 0}, {"reminders": 0, "escalations": 0})
    assert reminders(assigned) == [(DUE_SOON, 7)]


def test_complaints_of_a_suspended_member_are_still_taken(counter_clerk, lender_a):
    Institution.objects.filter(pk=lender_a.pk).update(status=Institution.Status.SUSPENDED)
    lender_a.refresh_from_db()

    assert receive(counter_clerk, lender_a).member == lender_a


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent sweeps need PostgreSQL row locks")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_sweeps_at_the_same_instant_send_each_reminder_once(counter_clerk, lender_a, regulator):
    due_soon = []
    for _ in range(6):
        complaint = receive(counter_clerk, lender_a)
        services.complaint_assign(complaint=complaint, actor=regulator, assignee=regulator, now=T0)
        due_soon.append(complaint)
    overdue = [receive(counter_clerk, lender_a, now=at(2, 20)) for _ in range(3)]  # due end of 22 March
    barrier = threading.Barrier(2)
    results, errors = [], []

    def sweeper():
        try:
            barrier.wait(timeout=10)
            with translation.override("en"):
                results.append(services.complaint_sweep(now=at(3, 29)))
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
    assert sum(r["reminders"] for r in results) == 6
    assert sum(r["escalations"] for r in results) == 3
    assert {tuple(reminders(c)) for c in due_soon} == {((DUE_SOON, 3),)}
    assert {tuple(reminders(c)) for c in overdue} == {((OVERDUE, 0),)}
    assert Notification.objects.filter(user=regulator, title__contains="written reply due").count() == 6
