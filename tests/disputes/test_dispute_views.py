"""Pages of the dispute workflow: intake and receipt, the officers' queue, the dispute page and
its actions, the member's verification requests, the decision letter and the corrections
bulletin. Refusals come back as messages and change nothing; another member's dispute is a 404.

alice (lender_staff) works at lender_a, whose entry is disputed; charlie (other_lender_staff)
at lender_b is the outsider; rita reviews, sam is the senior officer, cora the counter clerk."""

import datetime
from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation

from blacklist_portal.accounts.roles import Role
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.uploads import check_upload
from disputes import services
from disputes.models import Attachment, ClaimType, Decision, Dispute, IntakeChannel
from disputes.views import time_left
from disputes.workflow import Action, Status, TransitionRefused
from registry import services as registry_services
from registry.identifiers import IdentifierError, normalize_id_number
from registry.importing.rows import parse_row
from registry.models import Entry

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
RIC_A = "11010519491231002X"
RIC_B = "110101199003077571"
RIC_C = "310101198507150018"
NAME_A = "王小明"
NAME_B = "李建国"
TODAY = timezone.localdate()


def pdf(name: str = "receipt.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, PDF, content_type="application/pdf")


def report(staff, member, approver, *, id_number=RIC_A, name=NAME_A, contract="HT-0001", **overrides) -> Entry:
    """An approved overdue entry with PDF evidence."""
    values = {
        "subject_type": "person", "id_type": "RIC", "id_number": id_number, "name": name,
        "phone": "13912345678", "role": "borrower", "contract_no": contract, "category": "overdue",
        "loan_amount": "8000.00", "overdue_amount": "3000.00",
        "delinquent_since": (TODAY - datetime.timedelta(days=120)).isoformat(),
        "notified_on": (TODAY - datetime.timedelta(days=100)).isoformat(), "notice_method": "sms",
    }
    values.update(overrides)
    result = parse_row(values, today=TODAY)
    assert result.ok, result.errors
    f = pdf("contract.pdf")
    entry, _outcome = registry_services.entry_report(
        actor=staff, member=member, row=result.data, evidence=[(f, check_upload(f))]
    )
    return registry_services.entry_approve(entry=entry, actor=approver)


def file_dispute(actor, entry, *, now=None, claim=ClaimType.WRONG_AMOUNT, attach=False, subject=None) -> Dispute:
    attachments = []
    if attach:
        f = pdf()
        attachments = [(f, check_upload(f))]
    return services.dispute_receive(
        actor=actor, subject=subject or entry.subject, entry=entry, claim_type=claim,
        description="The amount was repaid in part.", applicant_name=NAME_A,
        applicant_contact="13800001111", channel=IntakeChannel.COUNTER, attachments=attachments, now=now,
    )


def page(response) -> str:
    return response.content.decode()


def follow_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def entry(lender_staff, lender_a, review_officer) -> Entry:
    return report(lender_staff, lender_a, review_officer)


@pytest.fixture
def dispute(counter_clerk, entry) -> Dispute:
    return file_dispute(counter_clerk, entry, attach=True)


@pytest.fixture
def second_senior(user_factory, operator):
    return user_factory("susan", Role.SENIOR_REVIEW_OFFICER, institution=operator)


def detail_url(d) -> str:
    return reverse("disputes:detail", args=[d.pk])


def action_url(name: str, d) -> str:
    return reverse(f"disputes:{name}", args=[d.pk])


def to_awaiting(d, officer) -> Dispute:
    services.dispute_assign(dispute=d, actor=officer, assignee=officer)
    return services.dispute_request_verification(dispute=d, actor=officer)


def to_decided(d, officer, *, decision=Decision.UPHELD, corrections=None, now=None) -> Dispute:
    services.dispute_assign(dispute=d, actor=officer, assignee=officer, now=now)
    return services.dispute_decide(dispute=d, actor=officer, decision=decision, reasons="Checked the ledger.",
                                   corrections=corrections, now=now)


# --- Intake ------------------------------------------------------------------------------------


def intake_data(entry_choice, **overrides) -> dict:
    data = {
        "applicant_name": NAME_A, "applicant_contact": "13800001111", "id_type": "RIC",
        "id_number": RIC_A.lower(), "entry": entry_choice, "claim_type": ClaimType.REPAID,
        "channel": IntakeChannel.COUNTER, "description": "Repaid in full on 1 March.",
    }
    data.update(overrides)
    return data


def test_the_clerk_finds_the_entries_takes_the_request_and_prints_a_receipt(
    client, login, counter_clerk, entry, lender_staff, zh
):
    login(client, counter_clerk)

    found = client.post(reverse("disputes:intake"), {"id_type": "RIC", "id_number": f" {RIC_A.lower()} ", "find": "1"})

    html = page(found)
    assert found.status_code == 200
    assert f'value="{entry.pk}"' in html
    assert entry.subject.id_masked in html and entry.member.name in html
    assert RIC_A not in html
    assert AuditEvent.objects.filter(action="dispute.intake_lookup", actor=counter_clerk).exists()

    response = client.post(
        reverse("disputes:intake"),
        {**intake_data(str(entry.pk)), "attachments": [pdf("a.pdf"), pdf("b.pdf")]},
    )

    d = Dispute.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("disputes:receipt", args=[d.pk])
    assert d.channel == IntakeChannel.COUNTER and d.taken_by == counter_clerk
    assert list(d.entries.all()) == [entry]
    assert d.attachments.count() == 2
    receipt = page(client.get(response["Location"]))
    assert d.receipt_no in receipt
    due = services.end_of_day_after(d.received_at, 20)
    assert f"{timezone.localtime(due):%Y-%m-%d}" in receipt
    assert 'class="print-button"' in receipt

    entry.refresh_from_db()
    assert entry.disputed
    client.logout()
    login(client, lender_staff)
    assert zh("Under dispute") in page(client.get(reverse("registry:entry_list")))


def test_lender_staff_files_for_its_customer_and_sees_only_its_own_entries(
    client, login, lender_staff, other_lender_staff, lender_b, review_officer, entry, zh
):
    theirs = report(other_lender_staff, lender_b, review_officer, contract="B-777", loan_amount="12345.00")
    login(client, lender_staff)

    found = page(client.post(reverse("disputes:intake"), {"id_type": "RIC", "id_number": RIC_A, "find": "1"}))
    assert f'value="{entry.pk}"' in found
    assert f'value="{theirs.pk}"' not in found and "B-777" not in found
    assert 'name="channel"' not in found

    response = client.post(reverse("disputes:intake"), intake_data(str(entry.pk)))

    d = Dispute.objects.get()
    assert response.status_code == 302
    assert d.channel == IntakeChannel.MEMBER and d.filed_by_member == lender_staff.institution
    receipt = page(client.get(reverse("disputes:receipt", args=[d.pk])))
    assert d.receipt_no in receipt
    assert f"{timezone.localtime(d.decision_due_at):%Y-%m-%d}" in receipt
    assert zh("Under dispute") in page(client.get(reverse("registry:entry_list")))
    mine = page(client.get(reverse("disputes:mine")))
    assert d.receipt_no in mine


def test_not_me_at_all_covers_every_entry_of_the_person(client, login, counter_clerk, entry, lender_b,
                                                        other_lender_staff, review_officer):
    theirs = report(other_lender_staff, lender_b, review_officer, contract="B-777")
    login(client, counter_clerk)

    response = client.post(reverse("disputes:intake"), intake_data("all", claim_type=ClaimType.NOT_ME))

    assert response.status_code == 302
    assert set(Dispute.objects.get().entries.all()) == {entry, theirs}
    assert Entry.objects.filter(disputed=True).count() == 2


def test_a_wrong_check_character_is_refused_next_to_the_id_number(client, login, counter_clerk, entry):
    wrong = RIC_A[:-1] + "1"
    with pytest.raises(IdentifierError) as refused:
        normalize_id_number("RIC", wrong)
    login(client, counter_clerk)

    response = client.post(reverse("disputes:intake"), intake_data(str(entry.pk), id_number=wrong))

    html = page(response)
    assert response.status_code == 200
    error_list = html.split('id="id_id_number_error"', 1)[1].split("</ul>", 1)[0]
    assert str(refused.value.message) in error_list
    assert not Dispute.objects.exists()


def test_an_unknown_person_is_refused_next_to_the_id_number(client, login, counter_clerk, entry):
    login(client, counter_clerk)

    response = client.post(reverse("disputes:intake"), {"id_type": "RIC", "id_number": RIC_C, "find": "1"})

    html = page(response)
    assert 'id="id_id_number_error"' in html
    assert 'name="entry"' not in html
    assert not Dispute.objects.exists()


def test_an_entry_of_another_person_cannot_be_chosen(client, login, counter_clerk, entry, lender_staff,
                                                     lender_a, review_officer):
    someone_else = report(lender_staff, lender_a, review_officer, id_number=RIC_B, name=NAME_B, contract="HT-2")
    login(client, counter_clerk)

    response = client.post(reverse("disputes:intake"), intake_data(str(someone_else.pk)))

    assert response.status_code == 200
    assert 'id="id_entry_error"' in page(response)
    assert not Dispute.objects.exists()


def test_a_file_that_is_not_a_document_is_refused_next_to_the_attachments(client, login, counter_clerk, entry):
    login(client, counter_clerk)
    fake = SimpleUploadedFile("proof.pdf", b"MZ\x90\x00 not a pdf", content_type="application/pdf")

    response = client.post(reverse("disputes:intake"), {**intake_data(str(entry.pk)), "attachments": [fake]})

    assert response.status_code == 200
    assert 'id="id_attachments_error"' in page(response)
    assert not Dispute.objects.exists() and not Attachment.objects.exists()


def test_a_lender_admin_cannot_take_requests(client, login, lender_admin):
    login(client, lender_admin)

    assert client.get(reverse("disputes:intake")).status_code == 403


# --- Isolation ---------------------------------------------------------------------------------


def test_it_checks_ownership(client, login, dispute, other_lender_staff, other_lender_admin, lender_admin,
                             platform_admin, review_officer):
    to_awaiting(dispute, review_officer)
    before = Dispute.objects.get(pk=dispute.pk)
    attachment = dispute.attachments.get()
    for user in (other_lender_staff, other_lender_admin, lender_admin, platform_admin):
        client.logout()
        login(client, user)
        assert client.get(detail_url(dispute)).status_code == 404, user
        assert client.get(action_url("letter", dispute)).status_code == 404, user
        assert client.get(action_url("receipt", dispute)).status_code == 404, user
        assert client.get(reverse("disputes:attachment_download", args=[attachment.pk])).status_code == 404, user
        answer = client.post(action_url("answer", dispute), {"answer-answer": "delete", "answer-note": ""})
        assert answer.status_code == 404, user
    after = Dispute.objects.get(pk=dispute.pk)
    assert (after.status, after.verification_answer) == (before.status, "")


def test_the_reporting_member_the_taker_and_platform_readers_see_the_dispute(
    client, login, dispute, lender_staff, counter_clerk, review_officer, senior_review_officer, regulator
):
    for user in (lender_staff, counter_clerk, review_officer, senior_review_officer, regulator):
        client.logout()
        login(client, user)
        response = client.get(detail_url(dispute))
        assert response.status_code == 200, user
        assert dispute.receipt_no in page(response)
        assert AuditEvent.objects.filter(action="dispute.view", actor=user).exists()


def test_the_regulator_reads_but_cannot_act(client, login, dispute, regulator, review_officer):
    login(client, regulator)

    html = page(client.get(detail_url(dispute)))
    response = client.post(action_url("assign", dispute), {"assign-assignee": review_officer.pk})

    assert f'action="{action_url("assign", dispute)}"' not in html
    assert response.status_code == 403
    assert Dispute.objects.get(pk=dispute.pk).status == Status.RECEIVED


def test_a_member_sees_only_its_own_entries_of_a_not_me_at_all_request(
    client, login, counter_clerk, entry, lender_b, other_lender_staff, lender_staff, review_officer
):
    report(other_lender_staff, lender_b, review_officer, contract="B-777")
    d = services.dispute_receive(actor=counter_clerk, subject=entry.subject, entry=None, claim_type=ClaimType.NOT_ME,
                                 description="Never borrowed.", applicant_name=NAME_A, channel=IntakeChannel.LETTER)
    login(client, lender_staff)

    html = page(client.get(detail_url(d)))

    assert entry.contract_no in html
    assert "B-777" not in html


def test_the_attachment_download_is_permission_checked_and_audited(client, login, dispute, review_officer):
    login(client, review_officer)
    attachment = dispute.attachments.get()

    response = client.get(reverse("disputes:attachment_download", args=[attachment.pk]))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["X-Content-Type-Options"] == "nosniff"
    assert AuditEvent.objects.filter(action="dispute.attachment_download", actor=review_officer).exists()


# --- Actions -----------------------------------------------------------------------------------


def test_an_officer_assigns_and_reassigns_from_the_dispute_page(client, login, dispute, review_officer,
                                                                senior_review_officer):
    login(client, review_officer)

    first = client.post(action_url("assign", dispute), {"assign-assignee": review_officer.pk})
    second = client.post(action_url("assign", dispute), {"assign-assignee": senior_review_officer.pk}, follow=True)

    assert first.status_code == 302
    dispute.refresh_from_db()
    assert (dispute.status, dispute.assignee) == (Status.ASSIGNED, senior_review_officer)
    assert list(dispute.events.filter(action=Action.ASSIGN).values_list("note", flat=True)) == [
        str(review_officer), str(senior_review_officer)
    ]
    assert second.status_code == 200


def test_assigning_someone_who_is_not_an_officer_is_refused_next_to_the_field(client, login, dispute,
                                                                             review_officer, counter_clerk):
    login(client, review_officer)

    response = client.post(action_url("assign", dispute), {"assign-assignee": counter_clerk.pk})

    assert response.status_code == 200
    assert 'id="id_assign-assignee_error"' in page(response)
    assert Dispute.objects.get(pk=dispute.pk).status == Status.RECEIVED


def test_the_member_answers_the_verification_request_from_its_inbox(
    client, login, dispute, review_officer, lender_staff, other_lender_staff
):
    to_awaiting(dispute, review_officer)
    login(client, lender_staff)

    inbox = page(client.get(reverse("disputes:verification_inbox")))
    assert dispute.receipt_no in inbox
    form = page(client.get(detail_url(dispute)))
    assert f'action="{action_url("answer", dispute)}"' in form

    response = client.post(action_url("answer", dispute),
                           {"answer-answer": "corrected", "answer-note": "Overdue is 1000, not 3000."})

    assert response.status_code == 302
    dispute.refresh_from_db()
    assert (dispute.status, dispute.verification_answer) == (Status.VERIFIED, "corrected")
    client.logout()
    login(client, other_lender_staff)
    assert dispute.receipt_no not in page(client.get(reverse("disputes:verification_inbox")))


def test_a_corrected_answer_without_a_note_is_refused_next_to_the_note(client, login, dispute, review_officer,
                                                                     lender_staff):
    to_awaiting(dispute, review_officer)
    login(client, lender_staff)

    response = client.post(action_url("answer", dispute), {"answer-answer": "corrected", "answer-note": " "})

    assert response.status_code == 200
    assert 'id="id_answer-note_error"' in page(response)
    assert Dispute.objects.get(pk=dispute.pk).status == Status.AWAITING_VERIFICATION


def test_the_answer_from_another_member_is_refused_and_changes_nothing(
    client, login, entry, other_lender_staff, review_officer, zh
):
    # lender_b filed the request (its customer), but the entry is lender_a's: lender_b reads
    # the dispute and may not answer for lender_a.
    d = file_dispute(other_lender_staff, entry)
    to_awaiting(d, review_officer)
    events = d.events.count()
    login(client, other_lender_staff)

    response = client.post(action_url("answer", d), {"answer-answer": "delete", "answer-note": ""}, follow=True)

    assert zh("You may not take this action on this dispute.") in follow_messages(response)
    d.refresh_from_db()
    assert (d.status, d.verification_answer, d.events.count()) == (Status.AWAITING_VERIFICATION, "", events)
    assert Entry.objects.get(pk=entry.pk).status == Entry.Status.ACTIVE


def test_an_out_of_order_action_shows_the_refusal_and_changes_nothing(client, login, dispute, counter_clerk,
                                                                    review_officer):
    login(client, counter_clerk)
    with translation.override("zh-hans"):
        expected = TransitionRefused(Status.RECEIVED, Action.APPEAL).message

    response = client.post(action_url("appeal", dispute), {"appeal-reason": "I disagree."}, follow=True)

    assert expected in follow_messages(response)
    assert expected in page(response)
    dispute.refresh_from_db()
    assert (dispute.status, dispute.appeal_reason, dispute.events.count()) == (Status.RECEIVED, "", 1)

    client.logout()
    login(client, review_officer)
    with translation.override("zh-hans"):
        expected = TransitionRefused(Status.RECEIVED, Action.REQUEST_VERIFICATION).message
    response = client.post(action_url("request_verification", dispute), follow=True)
    assert expected in follow_messages(response)
    assert Dispute.objects.get(pk=dispute.pk).verification_due_at is None


def test_the_deadline_is_extended_once_with_a_reason(client, login, dispute, review_officer, zh):
    login(client, review_officer)
    due = dispute.decision_due_at

    empty = client.post(action_url("extend", dispute), {"extend-reason": ""})
    assert 'id="id_extend-reason_error"' in page(empty)
    assert Dispute.objects.get(pk=dispute.pk).decision_due_at == due

    client.post(action_url("extend", dispute), {"extend-reason": "Waiting for the court's file."})
    dispute.refresh_from_db()
    assert timezone.localdate(dispute.decision_due_at) == timezone.localdate(due) + datetime.timedelta(days=10)
    assert f'action="{action_url("extend", dispute)}"' not in page(client.get(detail_url(dispute)))

    again = client.post(action_url("extend", dispute), {"extend-reason": "Again."}, follow=True)
    assert zh("The deadline has been extended once already.") in follow_messages(again)
    assert Dispute.objects.get(pk=dispute.pk).decision_due_at == dispute.decision_due_at


def test_a_corrected_decision_changes_the_entry_and_the_letter_says_how_to_appeal(
    client, login, dispute, entry, review_officer, counter_clerk
):
    services.dispute_assign(dispute=dispute, actor=review_officer, assignee=review_officer)
    login(client, review_officer)

    no_values = client.post(action_url("decide", dispute), {"decide-decision": "corrected", "decide-reasons": "Ledger."})
    assert 'id="id_decide-decision_error"' in page(no_values)
    bad_amount = client.post(action_url("decide", dispute), {
        "decide-decision": "corrected", "decide-reasons": "Ledger.", "decide-overdue_amount": "a lot",
    })
    assert 'id="id_decide-overdue_amount_error"' in page(bad_amount)
    assert Dispute.objects.get(pk=dispute.pk).status == Status.ASSIGNED

    response = client.post(action_url("decide", dispute), {
        "decide-decision": "corrected", "decide-reasons": "The ledger shows 1,000 overdue.",
        "decide-overdue_amount": "1000",
    })

    assert response.status_code == 302
    dispute.refresh_from_db()
    entry.refresh_from_db()
    assert (dispute.status, dispute.decision) == (Status.DECIDED, Decision.CORRECTED)
    assert str(entry.overdue_amount) == "1000.00"
    assert not entry.disputed
    client.logout()
    login(client, counter_clerk)
    letter = page(client.get(action_url("letter", dispute)))
    assert dispute.receipt_no in letter
    assert "1000.00" in letter
    assert f"{timezone.localtime(dispute.appeal_due_at):%Y-%m-%d}" in letter
    assert "The ledger shows 1,000 overdue." in letter
    assert NAME_A not in letter and RIC_A not in letter
    assert AuditEvent.objects.filter(action="dispute.letter", actor=counter_clerk).exists()


def test_there_is_no_letter_before_the_decision(client, login, dispute, counter_clerk, zh):
    login(client, counter_clerk)

    response = client.get(action_url("letter", dispute), follow=True)

    assert response.redirect_chain[-1][0] == detail_url(dispute)
    assert zh("There is no decision yet, so no letter to print.") in follow_messages(response)


def test_another_officer_cannot_decide_a_dispute_assigned_to_a_colleague(
    client, login, dispute, review_officer, user_factory, operator, zh
):
    colleague = user_factory("ralph", Role.REVIEW_OFFICER, institution=operator)
    services.dispute_assign(dispute=dispute, actor=review_officer, assignee=review_officer)
    login(client, colleague)

    response = client.post(action_url("decide", dispute),
                           {"decide-decision": "upheld", "decide-reasons": "Fine."}, follow=True)

    assert zh("Only the assigned officer (or a senior officer) decides this dispute.") in follow_messages(response)
    assert Dispute.objects.get(pk=dispute.pk).status == Status.ASSIGNED


def test_the_officer_who_decided_cannot_reconsider(client, login, dispute, senior_review_officer, second_senior,
                                                   counter_clerk, zh):
    to_decided(dispute, senior_review_officer)
    login(client, counter_clerk)
    appealed = client.post(action_url("appeal", dispute), {"appeal-reason": "The amount is still wrong."})
    assert appealed.status_code == 302
    assert Dispute.objects.get(pk=dispute.pk).status == Status.APPEALED
    client.logout()
    login(client, senior_review_officer)
    message = zh("You decided this dispute; another senior officer must reconsider it.")

    shown = page(client.get(detail_url(dispute)))
    response = client.post(action_url("reconsider", dispute),
                           {"reconsider-decision": "upheld", "reconsider-reasons": "Still right."}, follow=True)

    assert message in shown
    assert f'action="{action_url("reconsider", dispute)}"' not in shown
    assert message in follow_messages(response)
    dispute.refresh_from_db()
    assert (dispute.status, dispute.reconsideration) == (Status.APPEALED, "")

    client.logout()
    login(client, second_senior)
    done = client.post(action_url("reconsider", dispute),
                       {"reconsider-decision": "upheld", "reconsider-reasons": "The decision stands."})
    assert done.status_code == 302
    dispute.refresh_from_db()
    assert (dispute.status, dispute.reconsidered_by) == (Status.CLOSED, second_senior)


def test_an_appeal_needs_grounds(client, login, dispute, review_officer, counter_clerk):
    to_decided(dispute, review_officer)
    login(client, counter_clerk)

    response = client.post(action_url("appeal", dispute), {"appeal-reason": ""})

    assert 'id="id_appeal-reason_error"' in page(response)
    assert Dispute.objects.get(pk=dispute.pk).status == Status.DECIDED


def test_the_reporting_member_cannot_appeal_against_its_own_entry(client, login, dispute, review_officer,
                                                                 lender_staff, zh):
    to_decided(dispute, review_officer, decision=Decision.DELETED)
    login(client, lender_staff)

    response = client.post(action_url("appeal", dispute), {"appeal-reason": "We disagree."}, follow=True)

    assert zh("You may not take this action on this dispute.") in follow_messages(response)
    assert Dispute.objects.get(pk=dispute.pk).status == Status.DECIDED


def test_an_officer_closes_a_decided_dispute_once_the_appeal_time_is_over(client, login, counter_clerk, entry,
                                                                        review_officer, zh):
    long_ago = timezone.now() - datetime.timedelta(days=40)
    old = file_dispute(counter_clerk, entry, now=long_ago)
    to_decided(old, review_officer, now=long_ago)
    fresh_entry = report(entry.submitted_by, entry.member, review_officer, contract="HT-9")
    fresh = to_decided(file_dispute(counter_clerk, fresh_entry), review_officer)
    login(client, review_officer)

    refused = client.post(action_url("close", fresh), follow=True)
    closed = client.post(action_url("close", old))

    assert zh("The applicant may still appeal until %(date)s.") % {
        "date": f"{timezone.localtime(fresh.appeal_due_at):%Y-%m-%d}"} in follow_messages(refused)
    assert Dispute.objects.get(pk=fresh.pk).status == Status.DECIDED
    assert closed.status_code == 302
    assert Dispute.objects.get(pk=old.pk).status == Status.CLOSED


# --- Queue -------------------------------------------------------------------------------------


@pytest.fixture
def three_disputes(counter_clerk, lender_staff, lender_a, other_lender_staff, lender_b, review_officer):
    """Overdue by 5 days, due in 3 days, due in 20 days; lender_b's is the one due in 3 days."""
    now = timezone.now()
    e1 = report(lender_staff, lender_a, review_officer, contract="A-1")
    e2 = report(other_lender_staff, lender_b, review_officer, id_number=RIC_B, name=NAME_B, contract="B-1")
    e3 = report(lender_staff, lender_a, review_officer, id_number=RIC_C, name="赵六", contract="A-3")
    overdue = file_dispute(counter_clerk, e1, now=now - datetime.timedelta(days=25), claim=ClaimType.NOT_ME)
    soon = file_dispute(counter_clerk, e2, now=now - datetime.timedelta(days=17), claim=ClaimType.REPAID)
    later = file_dispute(counter_clerk, e3, now=now, claim=ClaimType.REPAID)
    services.dispute_assign(dispute=later, actor=review_officer, assignee=review_officer)
    return overdue, soon, later


def receipts_in_order(html: str, disputes) -> list[str]:
    found = [(html.find(d.receipt_no), d.receipt_no) for d in disputes if d.receipt_no in html]
    return [no for _pos, no in sorted(found)]


def test_the_queue_is_sorted_by_due_date(client, login, review_officer, three_disputes):
    login(client, review_officer)

    html = page(client.get(reverse("disputes:queue")))

    assert receipts_in_order(html, three_disputes) == [d.receipt_no for d in three_disputes]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"overdue": "on"}, [0]),
        ({"due_within": "5"}, [1]),
        ({"due_within": "30"}, [1, 2]),
        ({"claim_type": ClaimType.REPAID}, [1, 2]),
        ({"mine": "on"}, [2]),
        ({"status": Status.ASSIGNED}, [2]),
        ({"status": Status.DECIDED}, []),
    ],
)
def test_queue_filters_narrow(client, login, review_officer, three_disputes, params, expected):
    login(client, review_officer)

    html = page(client.get(reverse("disputes:queue"), params))

    assert receipts_in_order(html, three_disputes) == [three_disputes[i].receipt_no for i in expected]


def test_the_queue_filters_by_reporting_member(client, login, review_officer, three_disputes, lender_b):
    login(client, review_officer)

    html = page(client.get(reverse("disputes:queue"), {"member": lender_b.pk}))

    assert receipts_in_order(html, three_disputes) == [three_disputes[1].receipt_no]


def test_the_queue_says_plainly_how_much_time_is_left(client, login, review_officer, three_disputes, settings):
    login(client, review_officer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"

    html = page(client.get(reverse("disputes:queue")))

    assert "5 days overdue" in html
    assert "3 days left" in html
    assert "20 days left" in html


def test_the_time_left_is_said_in_the_pages_language(client, login, review_officer, three_disputes):
    login(client, review_officer)
    with translation.override("zh-hans"):
        overdue = translation.ngettext("%(n)d day overdue", "%(n)d days overdue", 5) % {"n": 5}
        left = translation.ngettext("%(n)d day left", "%(n)d days left", 3) % {"n": 3}

    html = page(client.get(reverse("disputes:queue")))

    assert overdue in html and left in html
    assert "days left" not in html or left == "3 days left"


def test_lenders_and_clerks_have_no_queue(client, login, lender_staff, counter_clerk):
    for user in (lender_staff, counter_clerk):
        client.logout()
        login(client, user)
        assert client.get(reverse("disputes:queue")).status_code == 403


def test_time_left_counts_whole_beijing_days():
    tz = timezone.get_default_timezone()
    now = datetime.datetime(2024, 3, 10, 23, 30, tzinfo=tz)
    with translation.override("en"):
        assert time_left(datetime.datetime(2024, 3, 13, 23, 59, tzinfo=tz), now) == "3 days left"
        assert time_left(datetime.datetime(2024, 3, 11, 0, 1, tzinfo=tz), now) == "1 day left"
        assert time_left(datetime.datetime(2024, 3, 10, 23, 59, tzinfo=tz), now) == "Due today"
        assert time_left(datetime.datetime(2024, 3, 9, 23, 59, tzinfo=tz), now) == "1 day overdue"
        assert time_left(datetime.datetime(2024, 3, 8, 23, 59, tzinfo=tz), now) == "2 days overdue"
        # 16:00 UTC on the 10th is already the 11th in Beijing.
        utc_due = datetime.datetime(2024, 3, 10, 16, 0, tzinfo=datetime.UTC)
        assert time_left(utc_due, now - datetime.timedelta(hours=8)) == "1 day left"


# --- Bulletin ----------------------------------------------------------------------------------


def test_the_bulletin_lists_corrections_with_masked_identities_only(
    client, login, counter_clerk, entry, lender_staff, lender_a, review_officer, other_lender_staff, zh
):
    corrected = to_decided(file_dispute(counter_clerk, entry), review_officer, decision=Decision.CORRECTED,
                           corrections={"overdue_amount": "1000"})
    upheld_entry = report(lender_staff, lender_a, review_officer, id_number=RIC_B, name=NAME_B, contract="HT-2")
    upheld = to_decided(file_dispute(counter_clerk, upheld_entry), review_officer, decision=Decision.UPHELD)
    login(client, other_lender_staff)

    html = page(client.get(reverse("disputes:bulletin")))

    assert corrected.subject.id_masked in html and corrected.subject.name_masked in html
    assert zh("Corrected") in html and zh("Overdue amount (CNY)") in html
    assert upheld.subject.id_masked not in html
    for clear in (RIC_A, RIC_A.lower(), NAME_A, RIC_B, NAME_B, corrected.receipt_no):
        assert clear not in html


# --- Forms are labelled ------------------------------------------------------------------------


class ControlsAndLabels(HTMLParser):
    def __init__(self):
        super().__init__()
        self.label_for: set[str] = set()
        self.controls: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label" and attrs.get("for"):
            self.label_for.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") not in ("hidden", "submit", "button", "reset"):
            self.controls.append(attrs)

    def unlabelled(self) -> list[str]:
        return [c.get("name", "?") for c in self.controls
                if not c.get("aria-label") and c.get("id") not in self.label_for]


def assert_labelled(html: str) -> int:
    parser = ControlsAndLabels()
    parser.feed(html)
    assert parser.unlabelled() == []
    return len(parser.controls)


def test_every_form_control_has_a_label(client, login, counter_clerk, entry, review_officer, lender_staff,
                                        senior_review_officer, second_senior, three_disputes):
    login(client, counter_clerk)
    assert assert_labelled(page(client.post(reverse("disputes:intake"), {"id_type": "RIC", "id_number": RIC_A, "find": "1"}))) >= 8
    d = file_dispute(counter_clerk, entry, attach=True)
    assert assert_labelled(page(client.get(reverse("disputes:mine")))) == 0

    client.logout()
    login(client, review_officer)
    services.dispute_assign(dispute=d, actor=review_officer, assignee=review_officer)
    assert assert_labelled(page(client.get(detail_url(d)))) >= 9  # assign, extend, decide
    assert assert_labelled(page(client.get(reverse("disputes:queue")))) >= 7
    services.dispute_request_verification(dispute=d, actor=review_officer)

    client.logout()
    login(client, lender_staff)
    assert assert_labelled(page(client.get(detail_url(d)))) >= 4  # the answer
    assert assert_labelled(page(client.get(reverse("disputes:verification_inbox")))) == 0

    services.dispute_answer_verification(dispute=d, actor=lender_staff, answer="verified", note="")
    services.dispute_decide(dispute=d, actor=review_officer, decision=Decision.UPHELD, reasons="Correct.")
    client.logout()
    login(client, counter_clerk)
    assert assert_labelled(page(client.get(detail_url(d)))) == 1  # the grounds of appeal
    services.dispute_appeal(dispute=d, actor=counter_clerk, reason="No.")

    client.logout()
    login(client, second_senior)
    assert assert_labelled(page(client.get(detail_url(d)))) >= 9  # assign, reconsider
    assert assert_labelled(page(client.get(reverse("disputes:bulletin")))) == 0


# --- Navigation and admin ------------------------------------------------------------------------


def test_the_menus_lead_to_the_dispute_pages(client, login, review_officer, lender_staff, counter_clerk, regulator):
    expected = {
        review_officer: ["disputes:queue", "disputes:intake", "disputes:bulletin"],
        lender_staff: ["disputes:verification_inbox", "disputes:intake", "disputes:bulletin"],
        counter_clerk: ["disputes:intake", "disputes:bulletin"],
        regulator: ["disputes:bulletin"],
    }
    for user, names in expected.items():
        client.logout()
        login(client, user)
        response = client.get(reverse("accounts:home"), follow=True)
        urls = {item["url"] for item in response.context["nav_items"]}
        assert {reverse(n) for n in names} <= urls, user
        if user is regulator:
            assert reverse("disputes:queue") not in urls


def test_the_admin_shows_disputes_read_only_without_the_applicants_name(client, login, platform_admin, dispute):
    login(client, platform_admin)

    listing = client.get("/admin/disputes/dispute/")
    change = client.get(f"/admin/disputes/dispute/{dispute.pk}/change/")

    assert listing.status_code == 200 and dispute.receipt_no in page(listing)
    assert change.status_code == 200
    assert NAME_A not in page(change) and "13800001111" not in page(change)
    assert client.get("/admin/disputes/dispute/add/").status_code == 403
