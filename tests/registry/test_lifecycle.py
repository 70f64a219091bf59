"""After review: settlement and the retention clock, revocation, the subject's statement and
the daily expiry (product.md, steps 6–8)."""

import datetime

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation
from stdnum.cn import ric as stdnum_ric

from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.celery import app as celery_app
from blacklist_portal.uploads import check_upload
from registry import selectors, services, tasks
from registry.importing.rows import parse_row
from registry.models import Entry, Evidence

TODAY = timezone.localdate()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def ric(n: int) -> str:
    body = f"11010519800101{n:03d}"
    return body + stdnum_ric.calc_check_digit(body + "0")


def days_ago(n: int) -> datetime.date:
    return TODAY - datetime.timedelta(days=n)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def report(actor, member, n: int = 1, **overrides) -> Entry:
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": ric(n),
        "name": "张三",
        "role": "borrower",
        "contract_no": f"HT-{n:04d}",
        "category": "overdue",
        "loan_amount": "10000.00",
        "overdue_amount": "2000.00",
        "delinquent_since": days_ago(400).isoformat(),
        "notified_on": days_ago(380).isoformat(),
        "notice_method": "letter",
        "remarks": "借款人失联",
    }
    values.update(overrides)
    result = parse_row(values, today=TODAY)
    assert result.ok, result.errors
    f = SimpleUploadedFile("ledger.pdf", PDF, content_type="application/pdf")
    entry, _outcome = services.entry_report(
        actor=actor, member=member, row=result.data, evidence=[(f, check_upload(f))]
    )
    return entry


@pytest.fixture
def active(lender_staff, lender_a, review_officer) -> Entry:
    entry = report(lender_staff, lender_a)
    return services.entry_approve(entry=entry, actor=review_officer)


def audit_rows(entry, action):
    return AuditEvent.objects.filter(
        action=action, target_type="registry.entry", target_id=str(entry.pk)
    )


def last_history(entry):
    return entry.history.order_by("-history_id").first()


# --- Settlement --------------------------------------------------------------------------------


def test_settling_starts_a_five_year_retention_clock(active, lender_staff):
    settled_on = days_ago(30)

    entry = services.entry_settle(entry=active, actor=lender_staff, settled_on=settled_on)

    assert settings.PORTAL_RETENTION_YEARS == 5
    assert entry.status == Entry.Status.SETTLED
    assert entry.settled_on == settled_on
    assert entry.retention_until == settled_on.replace(year=settled_on.year + 5)
    # Settled entries are still shown to queries until they expire.
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == [entry]


@override_settings(PORTAL_RETENTION_YEARS=3)
def test_the_retention_period_is_a_setting(active, lender_staff):
    settled_on = days_ago(30)

    entry = services.entry_settle(entry=active, actor=lender_staff, settled_on=settled_on)

    assert entry.retention_until == settled_on.replace(year=settled_on.year + 3)


def test_retention_from_29_february_ends_on_28_february(lender_staff, lender_a, review_officer):
    entry = report(lender_staff, lender_a, delinquent_since="2024-01-10")
    services.entry_approve(entry=entry, actor=review_officer)

    entry = services.entry_settle(
        entry=entry, actor=lender_staff, settled_on=datetime.date(2024, 2, 29)
    )

    assert entry.retention_until == datetime.date(2029, 2, 28)


def test_settling_writes_an_audit_event_and_a_history_row_by_the_member(active, lender_staff):
    services.entry_settle(entry=active, actor=lender_staff, settled_on=days_ago(30))

    event = audit_rows(active, "entry.settle").get()
    assert event.actor == lender_staff
    assert event.details["settled_on"] == days_ago(30).isoformat()
    history = last_history(active)
    assert history.history_user == lender_staff
    assert history.status == Entry.Status.SETTLED
    assert history.settled_on == days_ago(30)


def test_the_settlement_date_cannot_be_moved_later(active, lender_staff):
    services.entry_settle(entry=active, actor=lender_staff, settled_on=days_ago(30))

    with pytest.raises(ValidationError, match="cannot be moved later"):
        services.entry_settle(entry=active, actor=lender_staff, settled_on=days_ago(10))

    active.refresh_from_db()
    assert active.settled_on == days_ago(30)
    assert active.retention_until == days_ago(30).replace(year=days_ago(30).year + 5)
    assert audit_rows(active, "entry.settle").count() == 1


def test_the_settlement_date_may_be_corrected_earlier(active, lender_staff):
    services.entry_settle(entry=active, actor=lender_staff, settled_on=days_ago(30))

    entry = services.entry_settle(entry=active, actor=lender_staff, settled_on=days_ago(60))

    assert entry.settled_on == days_ago(60)
    assert entry.retention_until == days_ago(60).replace(year=days_ago(60).year + 5)


def test_the_settlement_date_cannot_be_in_the_future(active, lender_staff):
    with pytest.raises(ValidationError, match="future"):
        services.entry_settle(
            entry=active, actor=lender_staff, settled_on=TODAY + datetime.timedelta(days=1)
        )

    active.refresh_from_db()
    assert active.status == Entry.Status.ACTIVE
    assert active.settled_on is None


def test_the_settlement_date_cannot_precede_the_overdue_start(active, lender_staff):
    with pytest.raises(ValidationError, match="before the overdue start"):
        services.entry_settle(entry=active, actor=lender_staff, settled_on=days_ago(500))


def test_a_pending_entry_cannot_be_settled(lender_staff, lender_a):
    entry = report(lender_staff, lender_a)

    with pytest.raises(ValidationError, match="active or settled"):
        services.entry_settle(entry=entry, actor=lender_staff, settled_on=days_ago(1))


def test_another_member_cannot_settle_or_revoke(active, other_lender_staff, review_officer):
    with pytest.raises(PermissionDenied):
        services.entry_settle(entry=active, actor=other_lender_staff, settled_on=days_ago(1))
    with pytest.raises(PermissionDenied):
        services.entry_revoke(entry=active, actor=other_lender_staff, reason="not ours")
    with pytest.raises(PermissionDenied):
        services.entry_revoke(entry=active, actor=review_officer, reason="platform")
    active.refresh_from_db()
    assert active.status == Entry.Status.ACTIVE


def test_a_re_report_cannot_erase_the_settlement_date(
    active, lender_staff, lender_a, review_officer
):
    services.entry_settle(entry=active, actor=lender_staff, settled_on=days_ago(30))

    try:
        # The member's system re-sends the contract with a new overdue amount and no date.
        entry = report(lender_staff, lender_a, overdue_amount="2500.00")
    except ValidationError:
        return  # refusing the re-report is fine too
    services.entry_approve(entry=entry, actor=review_officer)
    entry.refresh_from_db()
    assert entry.settled_on == days_ago(30)
    assert entry.status == Entry.Status.SETTLED


# --- Revocation --------------------------------------------------------------------------------


def test_the_reporting_member_revokes_with_a_reason(active, lender_staff):
    entry = services.entry_revoke(entry=active, actor=lender_staff, reason="  Reported in error ")

    assert entry.status == Entry.Status.REVOKED
    assert entry.revoke_reason == "Reported in error"
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == []
    assert audit_rows(entry, "entry.revoke").get().actor == lender_staff
    history = last_history(entry)
    assert history.history_user == lender_staff
    assert history.status == Entry.Status.REVOKED


def test_revoking_needs_a_reason(active, lender_staff):
    with pytest.raises(ValidationError):
        services.entry_revoke(entry=active, actor=lender_staff, reason=" ")
    active.refresh_from_db()
    assert active.status == Entry.Status.ACTIVE
    assert not audit_rows(active, "entry.revoke").exists()


def test_a_revoked_entry_cannot_be_revoked_again(active, lender_staff):
    services.entry_revoke(entry=active, actor=lender_staff, reason="error")

    with pytest.raises(ValidationError, match="no longer on the register"):
        services.entry_revoke(entry=active, actor=lender_staff, reason="again")


def test_the_member_settles_and_revokes_through_the_page(client, login, active, lender_staff):
    login(client, lender_staff)

    response = client.post(
        reverse("registry:entry_settle", args=[active.pk]),
        {"settled_on": days_ago(20).isoformat()},
    )
    assert response.status_code == 302
    active.refresh_from_db()
    assert active.status == Entry.Status.SETTLED

    later = client.post(
        reverse("registry:entry_settle", args=[active.pk]),
        {"settled_on": days_ago(5).isoformat()},
        follow=True,
    )
    assert "cannot be moved later" in later.content.decode()
    active.refresh_from_db()
    assert active.settled_on == days_ago(20)

    client.post(reverse("registry:entry_revoke", args=[active.pk]), {"reason": "Duplicate"})
    active.refresh_from_db()
    assert active.status == Entry.Status.REVOKED
    assert active.revoke_reason == "Duplicate"


def test_it_checks_ownership(client, login, active, other_lender_staff, regulator):
    for user in (other_lender_staff, regulator):
        client.logout()
        login(client, user)
        settle = client.post(
            reverse("registry:entry_settle", args=[active.pk]),
            {"settled_on": days_ago(1).isoformat()},
        )
        revoke = client.post(reverse("registry:entry_revoke", args=[active.pk]), {"reason": "x"})
        assert settle.status_code == 404
        assert revoke.status_code == 404
    active.refresh_from_db()
    assert active.status == Entry.Status.ACTIVE
    assert active.settled_on is None


# --- The subject's statement -------------------------------------------------------------------


def test_a_review_officer_records_the_subjects_statement(client, login, active, review_officer):
    login(client, review_officer)

    response = client.post(
        reverse("registry:entry_statement", args=[active.pk]),
        {"statement": "本人已于上月还清全部欠款"},
    )

    assert response.status_code == 302
    active.refresh_from_db()
    assert active.subject_statement == "本人已于上月还清全部欠款"
    assert audit_rows(active, "entry.statement").get().actor == review_officer
    assert last_history(active).history_user == review_officer
    page = client.get(reverse("registry:entry_detail", args=[active.pk]))
    assert "本人已于上月还清全部欠款" in page.content.decode()


def test_members_cannot_write_the_subjects_statement(
    client, login, active, lender_staff, other_lender_staff
):
    login(client, lender_staff)
    url = reverse("registry:entry_statement", args=[active.pk])
    assert client.post(url, {"statement": "mine"}).status_code == 403
    client.logout()
    login(client, other_lender_staff)
    assert client.post(url, {"statement": "theirs"}).status_code == 404
    active.refresh_from_db()
    assert active.subject_statement == ""


# --- Expiry ------------------------------------------------------------------------------------


@pytest.fixture
def settled(active, lender_staff, review_officer) -> Entry:
    services.entry_settle(entry=active, actor=lender_staff, settled_on=days_ago(30))
    services.entry_set_statement(entry=active, actor=review_officer, statement="本人声明：已还清")
    active.refresh_from_db()
    return active


def test_expiry_removes_due_entries_from_queries_and_keeps_only_a_stub(
    settled, django_capture_on_commit_callbacks
):
    evidence = settled.evidence.get()
    assert default_storage.exists(evidence.file)
    due = settled.retention_until

    with django_capture_on_commit_callbacks(execute=True):
        count = services.entries_expire_due(today=due)

    assert count == 1
    settled.refresh_from_db()
    assert settled.status == Entry.Status.EXPIRED
    assert settled.remarks == ""
    assert settled.subject_statement == ""
    assert not Evidence.objects.filter(entry=settled).exists()
    assert not default_storage.exists(evidence.file)
    # The stub keeps the workflow facts.
    assert settled.category == "overdue"
    assert settled.settled_on == days_ago(30)
    assert list(selectors.entries_visible_for_subject(subject=settled.subject)) == []
    assert AuditEvent.objects.filter(action="entry.expire").get().details["count"] == 1


def test_expiry_leaves_entries_not_yet_due(settled, lender_staff, lender_a, review_officer):
    still_active = services.entry_approve(
        entry=report(lender_staff, lender_a, 2), actor=review_officer
    )
    later = services.entry_approve(entry=report(lender_staff, lender_a, 3), actor=review_officer)
    services.entry_settle(entry=later, actor=lender_staff, settled_on=days_ago(10))
    pending = report(lender_staff, lender_a, 4)

    day_before = settled.retention_until - datetime.timedelta(days=1)
    assert services.entries_expire_due(today=day_before) == 0
    count = services.entries_expire_due(today=settled.retention_until)

    assert count == 1
    statuses = dict(Entry.objects.values_list("pk", "status"))
    assert statuses == {
        settled.pk: Entry.Status.EXPIRED,
        still_active.pk: Entry.Status.ACTIVE,
        later.pk: Entry.Status.SETTLED,
        pending.pk: Entry.Status.PENDING_REVIEW,
    }


def test_expiry_is_idempotent(settled, lender_staff, lender_a, review_officer):
    other = services.entry_approve(entry=report(lender_staff, lender_a, 2), actor=review_officer)
    services.entry_settle(entry=other, actor=lender_staff, settled_on=days_ago(40))
    due = settled.retention_until

    assert services.entries_expire_due(today=due, batch_size=1) == 2
    assert services.entries_expire_due(today=due) == 0
    assert Entry.objects.filter(status=Entry.Status.EXPIRED).count() == 2
    assert AuditEvent.objects.filter(action="entry.expire").count() == 2  # one per batch


def test_expiry_leaves_no_free_text_in_the_entry_history(settled):
    services.entries_expire_due(today=settled.retention_until)

    assert not settled.history.exclude(remarks="").exists()
    assert not settled.history.exclude(subject_statement="").exists()


def test_an_expired_entry_is_not_shown_in_queries_nor_reported_again(
    settled, lender_staff, lender_a
):
    services.entries_expire_due(today=settled.retention_until)

    with pytest.raises(ValidationError, match="expired"):
        report(lender_staff, lender_a, overdue_amount="1.00")
    assert selectors.entries_visible_for_subject(subject=settled.subject).count() == 0


def test_the_daily_expiry_task_is_scheduled():
    schedule = settings.CELERY_BEAT_SCHEDULE
    tasks_scheduled = {item["task"] for item in schedule.values()}

    assert "registry.expire_entries" in tasks_scheduled
    assert "registry.expire_entries" in celery_app.tasks


def test_the_expiry_task_expires_due_entries(settled):
    Entry.objects.filter(pk=settled.pk).update(retention_until=days_ago(1))

    assert tasks.expire_entries.delay().get() == 1
    assert tasks.expire_entries.delay().get() == 0
    settled.refresh_from_db()
    assert settled.status == Entry.Status.EXPIRED
