"""The dispute services (disputes/services.py): intake, the 存在异议 flag, the member's
verification, decisions that change the entry with history, notice to recent queriers,
appeals, reconsideration, the one extension, and refusals that change nothing.

Characters (tests/conftest.py): alice (lender_staff) reports for lender_a and answers its
verification requests; charlie (other_lender_staff) is the outsider from lender_b; cora
(counter_clerk) takes requests at the counter; rita (review_officer) works the dispute; sam
(senior_review_officer) and sue (a second senior officer) reconsider appeals."""

import datetime
import hashlib
import secrets
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone, translation

from billing.choices import Channel, Purpose
from billing.models import Query
from blacklist_portal.accounts.roles import Role
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.inbox.models import Notification, OutgoingEmail
from blacklist_portal.uploads import check_upload
from disputes import services
from disputes.models import (
    Attachment,
    ClaimType,
    Decision,
    Dispute,
    DisputeEvent,
    IntakeChannel,
    VerificationAnswer,
)
from disputes.workflow import Status, TransitionRefused
from registry import selectors
from registry import services as registry_services
from registry.importing.rows import parse_row
from registry.models import Entry

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ZHANG = "11010519491231002X"
LI = "110101199003077571"
WANG = "310101198507150018"

DAY = datetime.timedelta(days=1)
# 10:00 on 2 March 2026 in Shanghai: received then, decision due at the end of 22 March.
T0 = datetime.datetime(2026, 3, 2, 2, 0, tzinfo=datetime.UTC)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


# --- Characters and the register -------------------------------------------------------------


@pytest.fixture
def sue(user_factory, operator):
    """A second senior review officer, who did not decide the dispute."""
    return user_factory("sue", Role.SENIOR_REVIEW_OFFICER, institution=operator)


@pytest.fixture
def rob(user_factory, operator):
    """Another plain review officer (not the assignee)."""
    return user_factory("rob", Role.REVIEW_OFFICER, institution=operator)


def make_entry(reporter, member, reviewer, *, id_number=ZHANG, contract_no="HT-0001", approve=True) -> Entry:
    today = timezone.localdate()
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": id_number,
        "name": "张三",
        "role": "borrower",
        "contract_no": contract_no,
        "category": "overdue",
        "loan_amount": "10000.00",
        "overdue_amount": "2000.00",
        "delinquent_since": (today - datetime.timedelta(days=400)).isoformat(),
        "notified_on": (today - datetime.timedelta(days=380)).isoformat(),
        "notice_method": "letter",
        "remarks": "借款人失联",
    }
    result = parse_row(values, today=today)
    assert result.ok, result.errors
    f = SimpleUploadedFile("ledger.pdf", PDF, content_type="application/pdf")
    entry, _outcome = registry_services.entry_report(
        actor=reporter, member=member, row=result.data, evidence=[(f, check_upload(f))]
    )
    if approve:
        entry = registry_services.entry_approve(entry=entry, actor=reviewer)
    return entry


@pytest.fixture
def entry(lender_staff, lender_a, review_officer) -> Entry:
    """lender_a's entry about 张三."""
    return make_entry(lender_staff, lender_a, review_officer)


@pytest.fixture
def other_members_entry(other_lender_staff, lender_b, review_officer, entry) -> Entry:
    """lender_b's entry about the same person."""
    return make_entry(other_lender_staff, lender_b, review_officer, contract_no="B-0001")


def receive(actor, entry=None, *, subject=None, now=T0, claim=ClaimType.WRONG_AMOUNT, **kwargs) -> Dispute:
    return services.dispute_receive(
        actor=actor,
        subject=subject or entry.subject,
        entry=entry,
        claim_type=claim,
        description="  The overdue amount is wrong.  ",
        applicant_name="张三",
        applicant_contact="13800138000",
        channel=kwargs.pop("channel", IntakeChannel.COUNTER),
        now=now,
        **kwargs,
    )


def fresh(dispute: Dispute) -> Dispute:
    return Dispute.objects.get(pk=dispute.pk)


def flag(entry: Entry) -> bool:
    return Entry.objects.get(pk=entry.pk).disputed


def snapshot(dispute: Dispute) -> dict:
    """Everything a refused action must leave as it was."""
    row = Dispute.objects.filter(pk=dispute.pk).values().get()
    return {
        "dispute": row,
        "events": DisputeEvent.objects.filter(dispute_id=dispute.pk).count(),
        "audit": AuditEvent.objects.count(),
        "notifications": Notification.objects.count(),
        "emails": OutgoingEmail.objects.count(),
        "entries": list(Entry.objects.order_by("pk").values_list("pk", "status", "disputed", "overdue_amount")),
        "entry_history": Entry.history.count(),
    }


def audit_actions(dispute: Dispute) -> list[tuple[str, int | None]]:
    return list(
        AuditEvent.objects.filter(target_type="disputes.dispute", target_id=str(dispute.pk))
        .order_by("seq")
        .values_list("action", "actor_id")
    )


def timeline(dispute: Dispute) -> list[tuple[str, str, str, int | None]]:
    return list(dispute.events.values_list("action", "from_status", "to_status", "actor_id"))


def titles(user) -> list[str]:
    return list(Notification.objects.filter(user=user).order_by("pk").values_list("title", flat=True))


# Steps, each returning the dispute as it is afterwards.


def assign(dispute, officer, assignee=None, now=T0):
    return services.dispute_assign(dispute=dispute, actor=officer, assignee=assignee or officer, now=now)


def ask_member(dispute, officer, now=T0):
    return services.dispute_request_verification(dispute=dispute, actor=officer, now=now)


def answer(dispute, member_user, value=VerificationAnswer.VERIFIED, note="Checked against the ledger.", now=T0 + DAY):
    return services.dispute_answer_verification(dispute=dispute, actor=member_user, answer=value, note=note, now=now)


def decide(dispute, officer, decision=Decision.UPHELD, now=T0 + 2 * DAY, **kwargs):
    return services.dispute_decide(
        dispute=dispute, actor=officer, decision=decision, reasons=kwargs.pop("reasons", "Checked the ledger."),
        now=now, **kwargs,
    )


def appeal(dispute, actor, now=T0 + 3 * DAY, reason="The ledger is wrong."):
    return services.dispute_appeal(dispute=dispute, actor=actor, reason=reason, now=now)


def reconsider(dispute, senior, outcome=Decision.UPHELD, now=T0 + 5 * DAY, **kwargs):
    return services.dispute_reconsider(
        dispute=dispute, actor=senior, outcome=outcome, reasons=kwargs.pop("reasons", "Reconsidered."),
        now=now, **kwargs,
    )


# --- Intake ----------------------------------------------------------------------------------------


def test_intake_flags_the_one_disputed_entry(counter_clerk, review_officer, entry, other_members_entry):
    dispute = receive(counter_clerk, entry)

    assert flag(entry) is True
    assert flag(other_members_entry) is False
    assert list(dispute.entries.all()) == [entry]
    dispute = fresh(dispute)
    assert dispute.status == Status.RECEIVED
    assert dispute.channel == IntakeChannel.COUNTER
    assert dispute.filed_by_member is None
    assert dispute.taken_by == counter_clerk
    assert dispute.description == "The overdue amount is wrong."
    assert (dispute.applicant_name, dispute.applicant_name_masked) == ("张三", "张*")
    assert dispute.applicant_contact == "13800138000"
    assert dispute.receipt_no.startswith("D20260302") and len(dispute.receipt_no) == 15
    assert timeline(dispute) == [("receive", "", Status.RECEIVED, counter_clerk.pk)]
    assert audit_actions(dispute) == [("dispute.receive", counter_clerk.pk)]
    # The officers learn of it.
    assert titles(review_officer) == [f"New dispute {dispute.receipt_no}"]


def test_not_me_at_all_flags_every_visible_entry_of_the_subject(
    counter_clerk, lender_staff, lender_a, review_officer, entry, other_members_entry
):
    pending = make_entry(lender_staff, lender_a, review_officer, contract_no="HT-0002", approve=False)
    someone_else = make_entry(lender_staff, lender_a, review_officer, id_number=LI, contract_no="HT-0003")

    dispute = receive(counter_clerk, None, subject=entry.subject, claim=ClaimType.NOT_ME)

    assert set(dispute.entries.all()) == {entry, other_members_entry}
    assert flag(entry) is True
    assert flag(other_members_entry) is True
    assert flag(pending) is False
    assert flag(someone_else) is False


def test_a_member_files_on_its_customers_behalf(lender_staff, lender_a, entry):
    dispute = fresh(receive(lender_staff, entry, channel=IntakeChannel.COUNTER))

    assert dispute.channel == IntakeChannel.MEMBER
    assert dispute.filed_by_member == lender_a
    assert flag(entry) is True


def test_attachments_are_checked_and_kept(counter_clerk, entry):
    f = SimpleUploadedFile("receipt.pdf", PDF, content_type="application/pdf")

    dispute = receive(counter_clerk, entry, attachments=[(f, check_upload(f))])

    attachment = Attachment.objects.get(dispute=dispute)
    assert (attachment.kind, attachment.original_name, attachment.size) == ("pdf", "receipt.pdf", len(PDF))
    assert attachment.sha256 == hashlib.sha256(PDF).hexdigest()
    assert attachment.uploaded_by == counter_clerk
    with default_storage.open(attachment.file, "rb") as stored:
        assert stored.read() == PDF


def test_intake_is_refused_to_those_without_the_capability(regulator, entry):
    with pytest.raises(PermissionDenied):
        receive(regulator, entry)

    assert Dispute.objects.count() == 0
    assert flag(entry) is False


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"claim": "bored"}, "claim_type"), ({"channel": "pigeon"}, "channel")]
)
def test_intake_refuses_an_unknown_claim_or_channel(counter_clerk, entry, kwargs, field):
    with pytest.raises(ValidationError) as refused:
        receive(counter_clerk, entry, **kwargs)

    assert list(refused.value.message_dict) == [field]
    assert Dispute.objects.count() == 0
    assert flag(entry) is False


def test_intake_refuses_an_entry_about_someone_else(counter_clerk, lender_staff, lender_a, review_officer, entry):
    other = make_entry(lender_staff, lender_a, review_officer, id_number=WANG, contract_no="HT-0009")

    with pytest.raises(ValidationError) as refused:
        receive(counter_clerk, entry, subject=other.subject)

    assert refused.value.message_dict == {"entry": ["This entry is about another person."]}
    assert Dispute.objects.count() == 0
    assert (flag(entry), flag(other)) == (False, False)


def test_intake_refuses_an_entry_that_is_not_on_the_register(counter_clerk, lender_staff, lender_a, review_officer):
    pending = make_entry(lender_staff, lender_a, review_officer, approve=False)

    with pytest.raises(ValidationError) as refused:
        receive(counter_clerk, pending)
    assert refused.value.message_dict == {"entry": ["This entry is not on the register."]}

    with pytest.raises(ValidationError) as refused:
        receive(counter_clerk, None, subject=pending.subject, claim=ClaimType.NOT_ME)
    assert refused.value.message_dict == {"entry": ["There is no entry about this person on the register."]}
    assert Dispute.objects.count() == 0


# --- The 存在异议 flag --------------------------------------------------------------------------------


def test_the_flag_stays_until_the_decision_and_returns_with_an_appeal(
    counter_clerk, lender_staff, review_officer, senior_review_officer, sue, entry
):
    dispute = receive(counter_clerk, entry)
    assert flag(entry) is True
    dispute = assign(dispute, review_officer)
    assert flag(entry) is True
    dispute = ask_member(dispute, review_officer)
    assert flag(entry) is True
    dispute = answer(dispute, lender_staff)
    assert flag(entry) is True
    dispute = decide(dispute, review_officer)
    assert flag(entry) is False
    dispute = appeal(dispute, counter_clerk)
    assert flag(entry) is True
    dispute = reconsider(dispute, sue)
    assert flag(entry) is False

    assert fresh(dispute).status == Status.CLOSED
    # Upheld all the way: the entry is still on the register.
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == [Entry.objects.get(pk=entry.pk)]


def test_closing_after_the_appeal_window_leaves_the_flag_off(counter_clerk, review_officer, entry):
    dispute = decide(assign(receive(counter_clerk, entry), review_officer), review_officer)
    assert flag(entry) is False

    closed = services.dispute_close(dispute=dispute, now=fresh(dispute).appeal_due_at + DAY)

    assert fresh(closed).status == Status.CLOSED
    assert flag(entry) is False


def test_an_entry_with_two_disputes_keeps_its_flag_while_either_is_open(
    counter_clerk, lender_staff, review_officer, sue, entry
):
    first = assign(receive(counter_clerk, entry), review_officer)
    second = assign(receive(lender_staff, entry, claim=ClaimType.REPAID), review_officer)

    first = decide(first, review_officer)
    assert flag(entry) is True  # the second is still open

    second = decide(second, review_officer)
    assert flag(entry) is False

    appeal(first, counter_clerk)
    assert flag(entry) is True  # the appeal re-opens the question
    reconsider(first, sue)
    assert flag(entry) is False


def test_not_me_decided_for_one_entry_clears_only_what_no_other_dispute_holds(
    counter_clerk, review_officer, entry, other_members_entry
):
    not_me = assign(receive(counter_clerk, None, subject=entry.subject, claim=ClaimType.NOT_ME), review_officer)
    about_one = receive(counter_clerk, other_members_entry)

    decide(not_me, review_officer)

    assert flag(entry) is False
    assert flag(other_members_entry) is True  # still under the second dispute
    assert fresh(about_one).status == Status.RECEIVED


# --- The member's verification ---------------------------------------------------------------------


@pytest.fixture
def awaiting(counter_clerk, review_officer, entry):
    """A dispute about lender_a's entry waiting for lender_a's answer (due end of 7 March)."""
    return ask_member(assign(receive(counter_clerk, entry), review_officer), review_officer)


def test_the_reporting_members_verifiers_are_asked(awaiting, lender_staff, lender_admin, other_lender_staff):
    dispute = fresh(awaiting)

    assert dispute.status == Status.AWAITING_VERIFICATION
    assert dispute.verification_due_at == datetime.datetime(2026, 3, 7, 15, 59, 59, 999999, tzinfo=datetime.UTC)
    assert titles(lender_staff) == [f"Please verify the disputed entry ({dispute.receipt_no})"]
    assert titles(lender_admin) == []  # no answer_verification capability
    assert titles(other_lender_staff) == []


def test_another_member_cannot_answer_the_verification(awaiting, other_lender_staff, lender_admin):
    before = snapshot(awaiting)

    with pytest.raises(PermissionDenied):
        answer(awaiting, other_lender_staff)
    # Same institution, but without the capability to answer.
    with pytest.raises(PermissionDenied):
        answer(awaiting, lender_admin)

    assert snapshot(awaiting) == before


def test_the_reporting_member_answers(awaiting, lender_staff, review_officer):
    answered_at = T0 + DAY
    dispute = answer(awaiting, lender_staff, VerificationAnswer.CORRECTED, note="  Overdue was 1,500.  ", now=answered_at)

    dispute = fresh(dispute)
    assert dispute.status == Status.VERIFIED
    assert dispute.verification_answer == VerificationAnswer.CORRECTED
    assert dispute.verification_note == "Overdue was 1,500."
    assert dispute.verification_answered_at == answered_at
    assert timeline(dispute)[-1] == ("answer_verification", Status.AWAITING_VERIFICATION, Status.VERIFIED, lender_staff.pk)
    assert audit_actions(dispute)[-1] == ("dispute.answer_verification", lender_staff.pk)
    assert titles(review_officer)[-1] == f"The member answered on dispute {dispute.receipt_no}"


@pytest.mark.parametrize(
    ("value", "note", "error"),
    [
        (VerificationAnswer.CORRECTED, "  ", {"note": ["Say what is corrected."]}),
        (VerificationAnswer.UNVERIFIABLE, "", {"answer": ["Choose verified, corrected or delete."]}),
        ("maybe", "", {"answer": ["Choose verified, corrected or delete."]}),
    ],
)
def test_an_incomplete_answer_is_refused(awaiting, lender_staff, value, note, error):
    before = snapshot(awaiting)

    with pytest.raises(ValidationError) as refused:
        answer(awaiting, lender_staff, value, note=note)

    assert refused.value.message_dict == error
    assert snapshot(awaiting) == before


def test_an_answer_after_the_deadline_is_refused(awaiting, lender_staff):
    due = fresh(awaiting).verification_due_at
    before = snapshot(awaiting)

    with pytest.raises(ValidationError) as refused:
        answer(awaiting, lender_staff, now=due + datetime.timedelta(microseconds=1))

    assert refused.value.messages == ["The time to answer has passed; the entry is treated as unverifiable."]
    assert snapshot(awaiting) == before
    # The very last instant of the due day is still in time.
    assert fresh(answer(awaiting, lender_staff, now=due)).status == Status.VERIFIED


def test_without_an_answer_the_entry_is_unverifiable_and_must_be_deleted(awaiting, review_officer, entry):
    due = fresh(awaiting).verification_due_at

    assert services.dispute_sweep(now=due)["timeouts"] == 0
    assert fresh(awaiting).status == Status.AWAITING_VERIFICATION

    counts = services.dispute_sweep(now=due + datetime.timedelta(minutes=1))

    assert counts["timeouts"] == 1
    dispute = fresh(awaiting)
    assert (dispute.status, dispute.verification_answer) == (Status.VERIFIED, VerificationAnswer.UNVERIFIABLE)
    assert timeline(dispute)[-1] == ("verification_timeout", Status.AWAITING_VERIFICATION, Status.VERIFIED, None)
    assert audit_actions(dispute)[-1] == ("dispute.verification_timeout", None)

    before = snapshot(dispute)
    for refused_decision in (Decision.UPHELD, Decision.FRIVOLOUS, Decision.CORRECTED):
        with pytest.raises(ValidationError) as refused:
            decide(dispute, review_officer, refused_decision, corrections={"overdue_amount": "1500.00"})
        assert refused.value.message_dict == {
            "decision": ["The member did not verify the entry in time: it must be deleted."]
        }
    assert snapshot(dispute) == before

    decide(dispute, review_officer, Decision.DELETED)
    assert Entry.objects.get(pk=entry.pk).status == Entry.Status.DELETED


def test_a_verification_timeout_before_the_deadline_changes_nothing(awaiting):
    before = snapshot(awaiting)

    services.dispute_verification_timeout(dispute=awaiting, now=fresh(awaiting).verification_due_at)

    assert snapshot(awaiting) == before


# --- Decisions ---------------------------------------------------------------------------------------


@pytest.fixture
def assigned(counter_clerk, review_officer, entry):
    return assign(receive(counter_clerk, entry), review_officer)


def test_a_correction_changes_the_entry_with_history(assigned, review_officer, entry):
    history_before = entry.history.count()

    dispute = decide(assigned, review_officer, Decision.CORRECTED, corrections={"overdue_amount": "1,500.00", "loan_amount": ""})

    dispute = fresh(dispute)
    corrected = Entry.objects.get(pk=entry.pk)
    assert corrected.overdue_amount == Decimal("1500.00")
    assert corrected.loan_amount == Decimal("10000.00")  # blank values are not corrections
    assert corrected.status == Entry.Status.ACTIVE
    assert dispute.corrections == {"overdue_amount": "1500.00"}
    assert (dispute.status, dispute.decision, dispute.decided_by) == (Status.DECIDED, Decision.CORRECTED, review_officer)
    change = corrected.history.get(history_change_reason=f"dispute {dispute.receipt_no}")
    assert (change.history_user, change.overdue_amount) == (review_officer, Decimal("1500.00"))
    # The row before the change still holds the old value.
    assert change.prev_record.overdue_amount == Decimal("2000.00")
    assert corrected.history.count() > history_before
    assert AuditEvent.objects.filter(action="entry.correct", target_id=str(entry.pk), actor=review_officer).count() == 1
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == [corrected]


def test_a_deletion_takes_the_entry_off_the_register_with_history(assigned, review_officer, entry):
    decide(assigned, review_officer, Decision.DELETED)

    deleted = Entry.objects.get(pk=entry.pk)
    assert deleted.status == Entry.Status.DELETED
    assert deleted.disputed is False
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == []
    latest = deleted.history.order_by("-history_id").first()
    assert (latest.status, latest.history_user) == (Entry.Status.DELETED, review_officer)
    assert AuditEvent.objects.filter(action="entry.delete_by_dispute", target_id=str(entry.pk), actor=review_officer).exists()


def test_every_history_row_a_dispute_writes_names_the_person(counter_clerk, review_officer, entry):
    last_before = entry.history.order_by("-history_id").first().history_id

    dispute = receive(counter_clerk, entry)
    decide(assign(dispute, review_officer), review_officer, Decision.CORRECTED, corrections={"overdue_amount": "1"})

    rows = entry.history.filter(history_id__gt=last_before).order_by("history_id")
    assert [r.history_user for r in rows] == [counter_clerk, review_officer, review_officer]


@pytest.mark.parametrize("decision", [Decision.UPHELD, Decision.FRIVOLOUS])
def test_upheld_and_frivolous_leave_the_entry_as_it_was(assigned, review_officer, entry, decision):
    history_before = entry.history.count()

    decide(assigned, review_officer, decision)

    kept = Entry.objects.get(pk=entry.pk)
    assert (kept.status, kept.overdue_amount, kept.disputed) == (Entry.Status.ACTIVE, Decimal("2000.00"), False)
    # Only the flag changed (one history row for clearing 存在异议).
    assert kept.history.count() == history_before + 1


@pytest.mark.parametrize(
    ("decision", "kwargs", "error"),
    [
        ("maybe", {}, {"decision": ["Choose a decision."]}),
        (Decision.UPHELD, {"reasons": "   "}, {"reasons": ["Write the reasons for the decision."]}),
        (Decision.CORRECTED, {}, {"decision": ["Enter the corrected values."]}),
        (Decision.CORRECTED, {"corrections": {"overdue_amount": "lots"}}, None),
    ],
)
def test_an_incomplete_decision_is_refused(assigned, review_officer, decision, kwargs, error):
    before = snapshot(assigned)

    with pytest.raises(ValidationError) as refused:
        decide(assigned, review_officer, decision, **kwargs)

    if error is None:
        assert list(refused.value.message_dict) == ["overdue_amount"]
    else:
        assert refused.value.message_dict == error
    assert snapshot(assigned) == before


def test_a_correction_of_a_field_a_dispute_may_not_touch_rolls_everything_back(assigned, review_officer):
    before = snapshot(assigned)

    with pytest.raises(ValidationError):
        decide(assigned, review_officer, Decision.CORRECTED, corrections={"contract_no": "HT-9999"})

    assert snapshot(assigned) == before


def test_only_the_assigned_officer_or_a_senior_officer_decides(assigned, rob, senior_review_officer, lender_staff):
    before = snapshot(assigned)

    with pytest.raises(ValidationError) as refused:
        decide(assigned, rob)
    assert refused.value.messages == ["Only the assigned officer (or a senior officer) decides this dispute."]
    with pytest.raises(PermissionDenied):
        decide(assigned, lender_staff)
    assert snapshot(assigned) == before

    decided = fresh(decide(assigned, senior_review_officer))
    assert (decided.status, decided.decided_by) == (Status.DECIDED, senior_review_officer)


def log_query(member, user, subject, at, kind=Query.Kind.MEMBER) -> Query:
    return Query.objects.create(
        query_no=f"Q{secrets.token_hex(8)}", kind=kind, member=member, user=user, channel=Channel.WEB,
        purpose=Purpose.LOAN_APPROVAL, id_type="RIC", subject_index=subject.id_index, subject=subject,
        id_masked=subject.id_masked, name_masked=subject.name_masked, hit=True, result={}, created_at=at,
    )


@pytest.fixture
def lender_c(db):
    from blacklist_portal.accounts.models import Institution

    return Institution.objects.create(name="丙小额贷款有限公司", kind=Institution.Kind.LENDER, uscc="91440300MA0TESTC3X", region="广东省")


@pytest.mark.parametrize("decision", [Decision.CORRECTED, Decision.DELETED])
def test_members_that_queried_in_the_last_90_days_are_told(
    assigned, review_officer, entry, lender_b, other_lender_staff, other_lender_admin, lender_c, user_factory, decision
):
    dora = user_factory("dora", Role.LENDER_STAFF, institution=lender_c)
    decided_at = T0 + 2 * DAY
    log_query(lender_b, other_lender_staff, entry.subject, decided_at - datetime.timedelta(days=89))
    log_query(lender_c, dora, entry.subject, decided_at - datetime.timedelta(days=91))  # too long ago

    decide(assigned, review_officer, decision, corrections={"overdue_amount": "1500.00"}, now=decided_at)

    label = Decision(decision).label
    assert titles(other_lender_staff) == [f"A record you queried was {label}"]
    body = Notification.objects.get(user=other_lender_staff).body
    assert entry.subject.id_masked in body and fresh(assigned).receipt_no in body
    assert "11010519491231002X" not in body
    assert titles(other_lender_admin) == []  # cannot query, so is not told
    assert titles(dora) == []
    assert OutgoingEmail.objects.filter(to=other_lender_staff.email, subject__startswith="A record you queried").count() == 1


def test_queriers_are_not_told_when_the_entry_stands(assigned, review_officer, entry, lender_b, other_lender_staff):
    log_query(lender_b, other_lender_staff, entry.subject, T0 - DAY)

    decide(assigned, review_officer, Decision.UPHELD)

    assert titles(other_lender_staff) == []


# --- Appeals and reconsideration -----------------------------------------------------------------


@pytest.fixture
def decided(assigned, review_officer):
    """Decided (upheld) by rita at T0 + 2 days: appeal possible until the end of 19 March."""
    return decide(assigned, review_officer)


def test_an_appeal_on_the_last_day_is_accepted(decided, counter_clerk, senior_review_officer, sue, review_officer, entry):
    due = fresh(decided).appeal_due_at
    assert due == datetime.datetime(2026, 3, 19, 15, 59, 59, 999999, tzinfo=datetime.UTC)

    dispute = fresh(appeal(decided, counter_clerk, now=due, reason="  New evidence.  "))

    assert (dispute.status, dispute.appeal_reason, dispute.appealed_at) == (Status.APPEALED, "New evidence.", due)
    assert dispute.assignee is None
    assert flag(entry) is True
    for senior in (senior_review_officer, sue):
        assert titles(senior)[-1] == f"Appeal on dispute {dispute.receipt_no}"
    assert not [t for t in titles(review_officer) if t.startswith("Appeal")]


def test_an_appeal_after_fifteen_days_is_refused(decided, counter_clerk):
    due = fresh(decided).appeal_due_at
    before = snapshot(decided)

    with pytest.raises(ValidationError) as refused:
        appeal(decided, counter_clerk, now=due + datetime.timedelta(microseconds=1))

    assert refused.value.messages == ["The time to appeal ended on 2026-03-19."]
    assert snapshot(decided) == before


def test_an_appeal_needs_grounds_and_the_capability(decided, counter_clerk, regulator):
    before = snapshot(decided)

    with pytest.raises(ValidationError) as refused:
        appeal(decided, counter_clerk, reason="  ")
    assert refused.value.message_dict == {"reason": ["Give the grounds of the appeal."]}
    with pytest.raises(PermissionDenied):
        appeal(decided, regulator)

    assert snapshot(decided) == before


@pytest.fixture
def appealed_after_sam_decided(counter_clerk, senior_review_officer, review_officer, entry):
    """Assigned to rita but decided (upheld) by sam, whose senior role lets him decide; then
    appealed at the counter."""
    dispute = assign(receive(counter_clerk, entry), review_officer)
    dispute = decide(dispute, senior_review_officer, Decision.UPHELD)
    return appeal(dispute, counter_clerk)


def test_the_officer_who_decided_cannot_reconsider(appealed_after_sam_decided, senior_review_officer, review_officer):
    dispute = appealed_after_sam_decided
    before = snapshot(dispute)

    with pytest.raises(ValidationError) as refused:
        reconsider(dispute, senior_review_officer)
    assert refused.value.messages == ["You decided this dispute; another senior officer must reconsider it."]
    with pytest.raises(PermissionDenied):
        reconsider(dispute, review_officer)  # not a senior officer
    # Nor can the appeal be assigned to the decider, or to a plain officer.
    with pytest.raises(ValidationError) as refused:
        assign(dispute, review_officer, senior_review_officer)
    assert refused.value.message_dict == {"assignee": ["The officer who decided the dispute cannot reconsider it."]}
    with pytest.raises(ValidationError) as refused:
        assign(dispute, review_officer, review_officer)
    assert refused.value.message_dict == {"assignee": ["An appeal goes to a senior review officer."]}

    assert snapshot(dispute) == before


def test_another_senior_officer_reconsiders(
    appealed_after_sam_decided, review_officer, sue, entry, lender_b, other_lender_staff
):
    dispute = assign(appealed_after_sam_decided, review_officer, sue, now=T0 + 4 * DAY)
    log_query(lender_b, other_lender_staff, entry.subject, T0)
    at = T0 + 5 * DAY

    dispute = fresh(reconsider(dispute, sue, Decision.CORRECTED, corrections={"overdue_amount": "900"}, now=at))

    assert (dispute.status, dispute.reconsideration, dispute.reconsidered_by, dispute.closed_at) == (
        Status.CLOSED, Decision.CORRECTED, sue, at,
    )
    assert dispute.reconsideration_reasons == "Reconsidered."
    changed = Entry.objects.get(pk=entry.pk)
    assert (changed.overdue_amount, changed.disputed) == (Decimal("900.00"), False)
    change = changed.history.get(history_change_reason=f"dispute {dispute.receipt_no}")
    assert (change.history_user, change.overdue_amount) == (sue, Decimal("900.00"))
    assert titles(other_lender_staff) == ["A record you queried was Corrected"]


def test_reconsideration_needs_a_decision_and_reasons(appealed_after_sam_decided, sue):
    dispute = appealed_after_sam_decided
    before = snapshot(dispute)

    with pytest.raises(ValidationError) as refused:
        reconsider(dispute, sue, "maybe")
    assert refused.value.message_dict == {"decision": ["Choose a decision."]}
    with pytest.raises(ValidationError) as refused:
        reconsider(dispute, sue, reasons=" ")
    assert refused.value.message_dict == {"reasons": ["Write the reasons for the decision."]}
    with pytest.raises(ValidationError) as refused:
        reconsider(dispute, sue, Decision.CORRECTED)
    assert refused.value.message_dict == {"decision": ["Enter the corrected values."]}

    assert snapshot(dispute) == before


def test_reconsidering_a_correction_with_other_values_applies_them(counter_clerk, review_officer, sue, entry):
    dispute = decide(
        assign(receive(counter_clerk, entry), review_officer), review_officer, Decision.CORRECTED,
        corrections={"overdue_amount": "1500.00"},
    )
    dispute = appeal(dispute, counter_clerk)

    reconsider(dispute, sue, Decision.CORRECTED, corrections={"overdue_amount": "0.00"})

    corrected = Entry.objects.get(pk=entry.pk)
    assert (corrected.overdue_amount, corrected.disputed) == (Decimal("0.00"), False)
    last_change = corrected.history.exclude(history_change_reason=None).order_by("-history_id").first()
    assert (last_change.history_user, last_change.overdue_amount) == (sue, Decimal("0.00"))


def test_a_correction_overturned_on_appeal_restores_the_reported_values(counter_clerk, lender_staff, review_officer, sue, entry):
    dispute = decide(
        assign(receive(counter_clerk, entry), review_officer), review_officer, Decision.CORRECTED,
        corrections={"overdue_amount": "1500.00", "delinquent_since": "2020-01-01"},
    )
    reported_since = entry.delinquent_since
    dispute = appeal(dispute, counter_clerk)

    reconsider(dispute, sue, Decision.UPHELD)

    restored = Entry.objects.get(pk=entry.pk)
    assert (restored.overdue_amount, restored.delinquent_since) == (Decimal("2000.00"), reported_since)
    assert restored.history.get(history_change_reason=f"reconsideration {fresh(dispute).receipt_no}").history_user == sue


def test_a_deletion_overturned_on_appeal_puts_the_entry_back(counter_clerk, review_officer, sue, entry):
    dispute = decide(assign(receive(counter_clerk, entry), review_officer), review_officer, Decision.DELETED)
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == []
    dispute = appeal(dispute, counter_clerk)

    reconsider(dispute, sue, Decision.UPHELD)

    back = Entry.objects.get(pk=entry.pk)
    assert (back.status, back.disputed) == (Entry.Status.ACTIVE, False)
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == [back]
    assert AuditEvent.objects.filter(action="entry.restore_after_dispute", target_id=str(entry.pk), actor=sue).count() == 1


def test_overturning_one_deletion_does_not_undo_another_disputes_deletion(counter_clerk, review_officer, sue, entry):
    first = decide(assign(receive(counter_clerk, entry), review_officer), review_officer, Decision.DELETED)
    second = assign(receive(counter_clerk, entry, claim=ClaimType.REPAID), review_officer)
    # The entry is off the register already when the second dispute is decided.
    second = decide(second, review_officer, Decision.DELETED)
    assert fresh(first).status == fresh(second).status == Status.DECIDED

    reconsider(appeal(second, counter_clerk), sue, Decision.UPHELD)

    # The first dispute's deletion stands.
    assert Entry.objects.get(pk=entry.pk).status == Entry.Status.DELETED


def test_the_reporting_member_cannot_appeal_but_a_member_that_filed_can(
    counter_clerk, lender_staff, other_lender_staff, review_officer, entry
):
    at_the_counter = decide(assign(receive(counter_clerk, entry), review_officer), review_officer, Decision.DELETED)
    before = snapshot(at_the_counter)

    for member_user in (lender_staff, other_lender_staff):  # the reporting member, and a stranger
        with pytest.raises(PermissionDenied):
            appeal(at_the_counter, member_user)
    assert snapshot(at_the_counter) == before

    # lender_b takes its customer's request about lender_a's entry, and may appeal its outcome.
    on_behalf = receive(other_lender_staff, entry)
    assert fresh(on_behalf).filed_by_member == other_lender_staff.institution
    on_behalf = decide(assign(on_behalf, review_officer), review_officer, Decision.UPHELD)
    assert fresh(appeal(on_behalf, other_lender_staff)).status == Status.APPEALED


# --- The one extension -----------------------------------------------------------------------------


def test_one_extension_with_a_reason(assigned, review_officer):
    due = fresh(assigned).decision_due_at
    before = snapshot(assigned)
    with pytest.raises(ValidationError) as refused:
        services.dispute_extend(dispute=assigned, actor=review_officer, reason="  ", now=T0 + DAY)
    assert refused.value.message_dict == {"reason": ["Give the reason for the extension."]}
    assert snapshot(assigned) == before

    dispute = fresh(services.dispute_extend(dispute=assigned, actor=review_officer, reason="Court file requested.", now=T0 + DAY))

    assert dispute.decision_due_at == due + datetime.timedelta(days=10)
    assert dispute.extension_reason == "Court file requested."
    assert dispute.status == Status.ASSIGNED
    assert timeline(dispute)[-1] == ("extend", Status.ASSIGNED, Status.ASSIGNED, review_officer.pk)
    assert audit_actions(dispute)[-1] == ("dispute.extend", review_officer.pk)

    before = snapshot(dispute)
    with pytest.raises(ValidationError) as refused:
        services.dispute_extend(dispute=dispute, actor=review_officer, reason="Again.", now=T0 + 2 * DAY)
    assert refused.value.messages == ["The deadline has been extended once already."]
    assert snapshot(dispute) == before


def test_only_an_officer_extends(assigned, lender_staff, counter_clerk):
    before = snapshot(assigned)

    for outsider in (lender_staff, counter_clerk):
        with pytest.raises(PermissionDenied):
            services.dispute_extend(dispute=assigned, actor=outsider, reason="Please.", now=T0)

    assert snapshot(assigned) == before


# --- Out-of-order actions -------------------------------------------------------------------------


@pytest.fixture
def world(counter_clerk, lender_staff, review_officer, senior_review_officer, sue, entry):
    """The dispute in each status, and each action as a function of the dispute."""
    def in_status(status):
        dispute = receive(counter_clerk, entry)
        if status == Status.RECEIVED:
            return dispute
        dispute = assign(dispute, review_officer)
        if status == Status.ASSIGNED:
            return dispute
        dispute = ask_member(dispute, review_officer)
        if status == Status.AWAITING_VERIFICATION:
            return dispute
        dispute = answer(dispute, lender_staff)
        if status == Status.VERIFIED:
            return dispute
        dispute = decide(dispute, review_officer)
        if status == Status.DECIDED:
            return dispute
        dispute = appeal(dispute, counter_clerk)
        if status == Status.APPEALED:
            return dispute
        return reconsider(dispute, sue)

    actions = {
        "assign": lambda d: assign(d, review_officer, now=T0 + 6 * DAY),
        "request_verification": lambda d: ask_member(d, review_officer, now=T0 + 6 * DAY),
        "answer_verification": lambda d: answer(d, lender_staff, now=T0 + 2 * DAY),
        "extend": lambda d: services.dispute_extend(dispute=d, actor=review_officer, reason="More time.", now=T0 + 6 * DAY),
        "decide": lambda d: decide(d, review_officer, now=T0 + 6 * DAY),
        "appeal": lambda d: appeal(d, counter_clerk, now=T0 + 6 * DAY),
        "reconsider": lambda d: reconsider(d, senior_review_officer, now=T0 + 6 * DAY),
        "close": lambda d: services.dispute_close(dispute=d, now=T0 + 60 * DAY),
    }
    return in_status, actions


OUT_OF_ORDER = [
    (Status.RECEIVED, "request_verification"),
    (Status.RECEIVED, "answer_verification"),
    (Status.RECEIVED, "decide"),
    (Status.RECEIVED, "appeal"),
    (Status.RECEIVED, "reconsider"),
    (Status.RECEIVED, "close"),
    (Status.ASSIGNED, "answer_verification"),
    (Status.ASSIGNED, "appeal"),
    (Status.ASSIGNED, "close"),
    (Status.AWAITING_VERIFICATION, "request_verification"),
    (Status.AWAITING_VERIFICATION, "decide"),
    (Status.AWAITING_VERIFICATION, "appeal"),
    (Status.VERIFIED, "request_verification"),
    (Status.VERIFIED, "answer_verification"),
    (Status.VERIFIED, "reconsider"),
    (Status.DECIDED, "assign"),
    (Status.DECIDED, "request_verification"),
    (Status.DECIDED, "decide"),
    (Status.DECIDED, "extend"),
    (Status.DECIDED, "reconsider"),
    (Status.APPEALED, "decide"),
    (Status.APPEALED, "appeal"),
    (Status.APPEALED, "close"),
    (Status.APPEALED, "extend"),
    (Status.CLOSED, "assign"),
    (Status.CLOSED, "decide"),
    (Status.CLOSED, "appeal"),
    (Status.CLOSED, "reconsider"),
    (Status.CLOSED, "close"),
    (Status.CLOSED, "extend"),
]


@pytest.mark.parametrize(("status", "action"), OUT_OF_ORDER, ids=[f"{s.value}-{a}" for s, a in OUT_OF_ORDER])
def test_an_out_of_order_action_is_refused_and_changes_nothing(world, status, action):
    in_status, actions = world
    dispute = in_status(status)
    assert fresh(dispute).status == status
    before = snapshot(dispute)

    with pytest.raises(TransitionRefused) as refused:
        actions[action](dispute)

    assert (refused.value.status, refused.value.action) == (status, action)
    assert refused.value.message.endswith(f"is not possible while the dispute is “{Status(status).label}”.")
    assert snapshot(dispute) == before


# --- Every step on record -----------------------------------------------------------------------------


def test_every_step_writes_a_timeline_event_and_an_audit_row(
    counter_clerk, lender_staff, review_officer, senior_review_officer, sue, entry
):
    dispute = receive(counter_clerk, entry)
    dispute = assign(dispute, review_officer)
    dispute = services.dispute_extend(dispute=dispute, actor=review_officer, reason="Court file.", now=T0)
    dispute = ask_member(dispute, review_officer)
    dispute = answer(dispute, lender_staff)
    dispute = decide(dispute, review_officer)
    dispute = appeal(dispute, counter_clerk)
    dispute = assign(dispute, review_officer, sue, now=T0 + 4 * DAY)
    dispute = reconsider(dispute, sue)

    S = Status
    assert timeline(dispute) == [
        ("receive", "", S.RECEIVED, counter_clerk.pk),
        ("assign", S.RECEIVED, S.ASSIGNED, review_officer.pk),
        ("extend", S.ASSIGNED, S.ASSIGNED, review_officer.pk),
        ("request_verification", S.ASSIGNED, S.AWAITING_VERIFICATION, review_officer.pk),
        ("answer_verification", S.AWAITING_VERIFICATION, S.VERIFIED, lender_staff.pk),
        ("decide", S.VERIFIED, S.DECIDED, review_officer.pk),
        ("appeal", S.DECIDED, S.APPEALED, counter_clerk.pk),
        ("assign", S.APPEALED, S.APPEALED, review_officer.pk),
        ("reconsider", S.APPEALED, S.CLOSED, sue.pk),
    ]
    assert audit_actions(dispute) == [
        ("dispute.receive", counter_clerk.pk),
        ("dispute.assign", review_officer.pk),
        ("dispute.extend", review_officer.pk),
        ("dispute.request_verification", review_officer.pk),
        ("dispute.answer_verification", lender_staff.pk),
        ("dispute.decide", review_officer.pk),
        ("dispute.appeal", counter_clerk.pk),
        ("dispute.assign", review_officer.pk),
        ("dispute.reconsider", sue.pk),
    ]
    # The audit rows say which way the status moved, and the timeline when.
    decide_row = AuditEvent.objects.get(target_type="disputes.dispute", target_id=str(dispute.pk), action="dispute.decide")
    assert decide_row.details == {"from": S.VERIFIED, "to": S.DECIDED}
    assert decide_row.institution == review_officer.institution
    assert dispute.events.get(action="decide").at == T0 + 2 * DAY
    # The dispute keeps its own history of changes, with who made them.
    assert fresh(dispute).history.first().history_user == sue


def test_closing_is_on_record_without_a_person(decided):
    closed = services.dispute_close(dispute=decided, now=fresh(decided).appeal_due_at + DAY)

    assert timeline(closed)[-1] == ("close", Status.DECIDED, Status.CLOSED, None)
    assert audit_actions(closed)[-1] == ("dispute.close", None)


def test_closing_inside_the_appeal_window_is_refused(decided):
    before = snapshot(decided)

    with pytest.raises(ValidationError) as refused:
        services.dispute_close(dispute=decided, now=fresh(decided).appeal_due_at)

    assert refused.value.messages == ["The applicant may still appeal until 2026-03-19."]
    assert snapshot(decided) == before
