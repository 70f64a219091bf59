"""Maker-checker review: pending entries are invisible until a review officer approves; the
approver is never the submitter; a return carries a reason the lender sees, fixes and
resubmits; the queue is oldest first and filterable (product.md, step 5)."""

import datetime
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation
from stdnum.cn import ric as stdnum_ric

from blacklist_portal.accounts.roles import Role
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.uploads import check_upload
from registry import selectors, services
from registry.importing.rows import parse_row
from registry.models import Entry

TODAY = timezone.localdate()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def ric(n: int) -> str:
    body = f"11010519800101{n:03d}"
    return body + stdnum_ric.calc_check_digit(body + "0")


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def raw_row(n: int = 1, **overrides) -> dict:
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
        "delinquent_since": (TODAY - datetime.timedelta(days=100)).isoformat(),
        "notified_on": (TODAY - datetime.timedelta(days=10)).isoformat(),
        "notice_method": "sms",
    }
    values.update(overrides)
    return values


def report(actor, member, n: int = 1, *, now=None, evidence=True, **overrides) -> Entry:
    result = parse_row(raw_row(n, **overrides), today=TODAY)
    assert result.ok, result.errors
    files = []
    if evidence:
        f = SimpleUploadedFile("ledger.pdf", PDF, content_type="application/pdf")
        files = [(f, check_upload(f))]
    entry, _outcome = services.entry_report(
        actor=actor, member=member, row=result.data, evidence=files, now=now
    )
    return entry


@pytest.fixture
def entry(lender_staff, lender_a):
    return report(lender_staff, lender_a)


def audit_actions(entry) -> list[tuple[str, int | None]]:
    return list(
        AuditEvent.objects.filter(target_type="registry.entry", target_id=str(entry.pk))
        .order_by("seq")
        .values_list("action", "actor_id")
    )


# --- Approval ----------------------------------------------------------------------------------


def test_pending_entry_is_invisible_to_queries_until_approved(entry, review_officer):
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == []

    services.entry_approve(entry=entry, actor=review_officer)

    entry.refresh_from_db()
    assert entry.status == Entry.Status.ACTIVE
    assert entry.reviewed_by == review_officer
    assert entry.reviewed_at is not None
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == [entry]


def test_approving_writes_an_audit_event_and_a_history_row_by_the_reviewer(
    entry, review_officer, lender_staff
):
    services.entry_approve(entry=entry, actor=review_officer)

    assert ("entry.approve", review_officer.pk) in audit_actions(entry)
    latest = entry.history.order_by("-history_id").first()
    assert latest.history_user == review_officer
    assert latest.status == Entry.Status.ACTIVE
    assert entry.history.order_by("history_id").first().history_user == lender_staff


def test_an_approved_entry_settled_before_approval_goes_live_as_settled(
    lender_staff, lender_a, review_officer
):
    settled_on = TODAY - datetime.timedelta(days=5)
    entry = report(lender_staff, lender_a, settled_on=settled_on.isoformat())

    services.entry_approve(entry=entry, actor=review_officer)

    entry.refresh_from_db()
    assert entry.status == Entry.Status.SETTLED
    assert entry.retention_until == settled_on.replace(year=settled_on.year + 5)
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == [entry]


def test_the_submitter_cannot_approve_their_own_entry(user_factory, operator):
    """A user who may both report and review (both groups, on the operator) is refused."""
    both = user_factory("maker", Role.LENDER_STAFF, Role.REVIEW_OFFICER, institution=operator)
    entry = report(both, operator)

    with pytest.raises(ValidationError, match="another officer"):
        services.entry_approve(entry=entry, actor=both)
    with pytest.raises(ValidationError, match="another officer"):
        services.entry_return(entry=entry, actor=both, reason="Fix it")

    entry.refresh_from_db()
    assert entry.status == Entry.Status.PENDING_REVIEW
    assert entry.reviewed_by is None
    assert selectors.entries_visible_for_subject(subject=entry.subject).count() == 0


def test_a_reviewer_recorded_as_submitter_cannot_approve(entry, review_officer):
    Entry.objects.filter(pk=entry.pk).update(submitted_by=review_officer)
    entry.refresh_from_db()

    with pytest.raises(ValidationError):
        services.entry_approve(entry=entry, actor=review_officer)

    entry.refresh_from_db()
    assert entry.status == Entry.Status.PENDING_REVIEW
    assert not AuditEvent.objects.filter(action="entry.approve").exists()


def test_the_submitter_approving_through_the_page_is_told_no(client, login, user_factory, operator):
    both = user_factory("maker", Role.LENDER_STAFF, Role.REVIEW_OFFICER, institution=operator)
    entry = report(both, operator)
    login(client, both)

    response = client.post(reverse("registry:entry_approve", args=[entry.pk]), follow=True)

    assert "another officer must approve it" in response.content.decode()
    entry.refresh_from_db()
    assert entry.status == Entry.Status.PENDING_REVIEW


def test_only_pending_entries_can_be_approved(entry, review_officer, senior_review_officer):
    services.entry_approve(entry=entry, actor=review_officer)

    with pytest.raises(ValidationError, match="pending review"):
        services.entry_approve(entry=entry, actor=senior_review_officer)


def test_approving_needs_the_review_permission(entry, lender_admin, regulator):
    for user in (lender_admin, regulator):
        with pytest.raises(PermissionDenied):
            services.entry_approve(entry=entry, actor=user)
    entry.refresh_from_db()
    assert entry.status == Entry.Status.PENDING_REVIEW


def test_a_review_officer_approves_through_the_page(client, login, entry, review_officer):
    login(client, review_officer)

    page = client.get(reverse("registry:entry_detail", args=[entry.pk]))
    assert page.status_code == 200
    assert page.context["can_review"]

    response = client.post(reverse("registry:entry_approve", args=[entry.pk]))

    assert response.status_code == 302
    assert response["Location"] == reverse("registry:review_queue")
    entry.refresh_from_db()
    assert entry.status == Entry.Status.ACTIVE
    assert entry.history.order_by("-history_id").first().history_user == review_officer


def test_approving_through_the_page_checks_ownership_and_role(
    client, login, entry, lender_staff, other_lender_staff, regulator
):
    url = reverse("registry:entry_approve", args=[entry.pk])

    login(client, other_lender_staff)
    assert client.post(url).status_code == 404  # the outsider does not learn it exists
    client.logout()
    login(client, lender_staff)
    assert client.post(url).status_code == 403  # the maker is no checker
    client.logout()
    login(client, regulator)
    assert client.post(url).status_code == 403  # reads, never writes

    entry.refresh_from_db()
    assert entry.status == Entry.Status.PENDING_REVIEW
    assert not AuditEvent.objects.filter(action="entry.approve").exists()


def test_it_checks_ownership(client, login, entry, other_lender_staff):
    login(client, other_lender_staff)

    assert client.post(reverse("registry:entry_approve", args=[entry.pk])).status_code == 404
    assert (
        client.post(reverse("registry:entry_return", args=[entry.pk]), {"reason": "x"}).status_code
        == 404
    )
    entry.refresh_from_db()
    assert entry.status == Entry.Status.PENDING_REVIEW


# --- Return, fix, resubmit ---------------------------------------------------------------------


def test_returning_needs_a_reason(entry, review_officer):
    with pytest.raises(ValidationError):
        services.entry_return(entry=entry, actor=review_officer, reason="   ")
    entry.refresh_from_db()
    assert entry.status == Entry.Status.PENDING_REVIEW


def test_returning_writes_an_audit_event_and_a_history_row_by_the_reviewer(entry, review_officer):
    services.entry_return(entry=entry, actor=review_officer, reason="Attach the signed contract")

    entry.refresh_from_db()
    assert entry.status == Entry.Status.RETURNED
    assert entry.return_reason == "Attach the signed contract"
    assert ("entry.return", review_officer.pk) in audit_actions(entry)
    latest = entry.history.order_by("-history_id").first()
    assert latest.history_user == review_officer
    assert latest.status == Entry.Status.RETURNED
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == []


def test_the_lender_sees_the_return_reason_on_the_entry_page_and_list(
    client, login, entry, review_officer, lender_staff
):
    login(client, review_officer)
    response = client.post(
        reverse("registry:entry_return", args=[entry.pk]),
        {"reason": "The overdue amount disagrees with the ledger"},
    )
    assert response.status_code == 302
    client.logout()

    login(client, lender_staff)
    detail = client.get(reverse("registry:entry_detail", args=[entry.pk])).content.decode()
    listing = client.get(reverse("registry:entry_list")).content.decode()

    assert "The overdue amount disagrees with the ledger" in detail
    assert "Returned by the review officer" in detail
    assert "The overdue amount disagrees with the ledger" in listing


def test_the_lender_edits_a_returned_entry_and_it_is_pending_again(
    client, login, entry, review_officer, lender_staff
):
    services.entry_return(entry=entry, actor=review_officer, reason="Overdue amount is wrong")
    login(client, lender_staff)
    url = reverse("registry:entry_edit", args=[entry.pk])

    form_page = client.get(url)
    assert form_page.status_code == 200
    assert "Overdue amount is wrong" in form_page.content.decode()

    data = raw_row(1, overdue_amount="1500.00")
    data["evidence"] = []
    response = client.post(url, data)

    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.status == Entry.Status.PENDING_REVIEW
    assert entry.overdue_amount == Decimal("1500.00")
    assert entry.return_reason == ""
    assert entry.reviewed_by is None
    assert Entry.objects.count() == 1
    assert entry.history.order_by("-history_id").first().history_user == lender_staff
    assert entry in selectors.review_queue()


def test_editing_cannot_change_the_contract_or_the_subject(
    client, login, entry, review_officer, lender_staff
):
    services.entry_return(entry=entry, actor=review_officer, reason="Fix")
    login(client, lender_staff)

    data = raw_row(1, overdue_amount="1500.00", contract_no="OTHER-1", id_number=ric(9))
    data["evidence"] = []
    client.post(reverse("registry:entry_edit", args=[entry.pk]), data)

    assert Entry.objects.count() == 1
    entry.refresh_from_db()
    assert entry.contract_no == "HT-0001"
    assert entry.subject.id_number == ric(1)
    assert entry.overdue_amount == Decimal("1500.00")


def test_resubmitting_a_returned_entry_unchanged_puts_it_back_in_review(
    client, login, entry, review_officer, lender_staff
):
    services.entry_return(entry=entry, actor=review_officer, reason="Please confirm the amount")
    login(client, lender_staff)

    data = raw_row(1)
    data["evidence"] = []
    response = client.post(reverse("registry:entry_edit", args=[entry.pk]), data, follow=True)

    assert "resubmitted and waits for review" in response.content.decode()
    entry.refresh_from_db()
    assert entry.status == Entry.Status.PENDING_REVIEW


def test_an_active_entry_cannot_be_edited(client, login, entry, review_officer, lender_staff):
    services.entry_approve(entry=entry, actor=review_officer)
    login(client, lender_staff)

    response = client.post(
        reverse("registry:entry_edit", args=[entry.pk]), raw_row(1, overdue_amount="1.00")
    )

    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.status == Entry.Status.ACTIVE
    assert entry.overdue_amount == Decimal("2000.00")


def test_another_member_cannot_edit_the_entry(client, login, entry, other_lender_staff):
    login(client, other_lender_staff)
    url = reverse("registry:entry_edit", args=[entry.pk])

    assert client.get(url).status_code == 404
    assert client.post(url, raw_row(1, overdue_amount="1.00")).status_code == 404
    entry.refresh_from_db()
    assert entry.overdue_amount == Decimal("2000.00")


# --- The queue ---------------------------------------------------------------------------------


def test_lender_staff_cannot_open_the_review_queue(client, login, lender_staff, other_lender_staff):
    for user in (lender_staff, other_lender_staff):
        client.logout()
        login(client, user)
        assert client.get(reverse("registry:review_queue")).status_code == 403


def test_the_review_queue_lists_pending_entries_oldest_first(
    client, login, lender_staff, lender_a, review_officer
):
    now = timezone.now()
    newest = report(lender_staff, lender_a, 1, now=now)
    oldest = report(lender_staff, lender_a, 2, now=now - datetime.timedelta(days=3))
    middle = report(lender_staff, lender_a, 3, now=now - datetime.timedelta(days=1))
    approved = report(lender_staff, lender_a, 4, now=now - datetime.timedelta(days=9))
    services.entry_approve(entry=approved, actor=review_officer)
    login(client, review_officer)

    response = client.get(reverse("registry:review_queue"))

    assert response.status_code == 200
    assert list(response.context["page"]) == [oldest, middle, newest]
    assert list(selectors.review_queue()) == [oldest, middle, newest]


@pytest.fixture
def queue(lender_staff, lender_a, other_lender_staff, lender_b):
    """Five pending entries differing in category, member, submission date and amount."""
    now = timezone.now()
    return {
        "a_overdue_small_old": report(
            lender_staff, lender_a, 1, now=now - datetime.timedelta(days=20), loan_amount="1000"
        ),
        "a_fraud_mid_recent": report(
            lender_staff,
            lender_a,
            2,
            now=now - datetime.timedelta(days=5),
            category="fraud",
            overdue_amount="",
            delinquent_since="",
            loan_amount="5000",
        ),
        "a_overdue_big_now": report(lender_staff, lender_a, 3, now=now, loan_amount="20000"),
        "b_overdue_mid_old": report(
            other_lender_staff,
            lender_b,
            4,
            now=now - datetime.timedelta(days=20),
            loan_amount="5000",
        ),
        "b_fraud_big_recent": report(
            other_lender_staff,
            lender_b,
            5,
            now=now - datetime.timedelta(days=5),
            category="fraud",
            overdue_amount="",
            delinquent_since="",
            loan_amount="20000",
        ),
    }


def _filtered(client, **params) -> set[str]:
    response = client.get(reverse("registry:review_queue"), params)
    assert response.status_code == 200
    return {e.contract_no for e in response.context["page"]}


def _contracts(queue, *names) -> set[str]:
    return {queue[n].contract_no for n in names}


def test_the_queue_filters_by_category(client, login, review_officer, queue):
    login(client, review_officer)

    assert _filtered(client, category="fraud") == _contracts(
        queue, "a_fraud_mid_recent", "b_fraud_big_recent"
    )


def test_the_queue_filters_by_member(client, login, review_officer, queue, lender_b):
    login(client, review_officer)

    assert _filtered(client, member=lender_b.pk) == _contracts(
        queue, "b_overdue_mid_old", "b_fraud_big_recent"
    )


def test_the_queue_filters_by_submission_date_range(client, login, review_officer, queue):
    login(client, review_officer)
    local = timezone.localdate
    recent = local(queue["a_fraud_mid_recent"].submitted_at)
    old = local(queue["a_overdue_small_old"].submitted_at)

    assert _filtered(client, submitted_from=recent.isoformat()) == _contracts(
        queue, "a_fraud_mid_recent", "a_overdue_big_now", "b_fraud_big_recent"
    )
    assert _filtered(client, submitted_to=old.isoformat()) == _contracts(
        queue, "a_overdue_small_old", "b_overdue_mid_old"
    )
    assert _filtered(
        client, submitted_from=recent.isoformat(), submitted_to=recent.isoformat()
    ) == _contracts(queue, "a_fraud_mid_recent", "b_fraud_big_recent")


def test_the_queue_filters_by_amount_range(client, login, review_officer, queue):
    login(client, review_officer)

    assert _filtered(client, amount_min="2000", amount_max="10000") == _contracts(
        queue, "a_fraud_mid_recent", "b_overdue_mid_old"
    )
    assert _filtered(client, amount_min="20000") == _contracts(
        queue, "a_overdue_big_now", "b_fraud_big_recent"
    )
    assert _filtered(client, amount_max="1000") == _contracts(queue, "a_overdue_small_old")


def test_queue_filters_combine(client, login, review_officer, queue, lender_a):
    login(client, review_officer)

    assert _filtered(client, member=lender_a.pk, category="overdue", amount_min="2000") == (
        _contracts(queue, "a_overdue_big_now")
    )
