"""Review officer (rita, password + TOTP): the review queue, return one entry with a reason and
approve another; the dispute queue by due date; open a dispute, assign it to herself and ask
the reporting member to verify; the member (alice) answers; rita decides a correction; the
member's next query shows the corrected entry, and the corrections bulletin lists it.
The member's mistake: querying with her expired consent."""

import re

import pytest
from helpers import (
    LI,
    WANG,
    ZHANG,
    Person,
    consent,
    counter_dispute,
    demo_prices,
    reported_entry,
    texts,
    zh,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def query_zhang(alice: Person, consent_no: int) -> None:
    page = alice.page
    alice.follow(page.locator("header nav a[href$='/billing/queries/new/']"))
    page.fill("#id_id_number", ZHANG[0])
    page.fill("#id_name", ZHANG[1])
    page.select_option("#id_purpose", "post_loan")
    page.fill("#id_consent", str(consent_no))
    alice.submit(alice.main_form_button())


def test_review_officer_reviews_entries_and_decides_a_correction(
    live_server,
    new_context,
    shots,
    password,
    review_officer,
    counter_clerk,
    lender_staff,
    lender_a,
    other_lender_staff,
):
    demo_prices()
    # Two entries wait for review.
    to_return = reported_entry(lender_staff, lender_a, WANG, contract="HT-2026-0101")
    to_approve = reported_entry(
        lender_staff, lender_a, LI, contract="HT-2026-0102", loan_amount="15000.00"
    )
    # Three correction requests taken at the counter, the one we work on the most recent.
    disputed = reported_entry(
        lender_staff, lender_a, ZHANG, contract="HT-2025-0007", approve_by=review_officer
    )
    overdue = counter_dispute(
        counter_clerk,
        reported_entry(
            other_lender_staff,
            other_lender_staff.institution,
            WANG,
            contract="B-0077",
            approve_by=review_officer,
        ),
        WANG[1],
        days_ago=22,
    )
    counter_dispute(
        counter_clerk,
        reported_entry(
            other_lender_staff,
            other_lender_staff.institution,
            LI,
            contract="B-0078",
            approve_by=review_officer,
        ),
        LI[1],
        days_ago=8,
    )
    dispute = counter_dispute(counter_clerk, disputed, ZHANG[1], days_ago=2)
    # The member's consents for 张三: last year's has expired, this year's is valid.
    expired = consent(lender_staff, ZHANG, signed_days_ago=400, valid_days=365)
    valid = consent(lender_staff, ZHANG)

    rita = Person(new_context(), live_server.url, shots)
    page = rita.page
    rita.sign_in(review_officer, password, shot_as="login-review-officer")
    rita.shot("home-review-officer")

    # --- The review queue: return one, approve the other ---------------------------------------
    rita.follow(page.locator("header nav a", has_text=zh("Review queue")))
    assert page.locator("table.data tbody tr").count() == 2
    rita.shot("review-queue")

    rita.follow(page.locator("table.data a", has_text=to_return.contract_no))
    page.fill("#id_reason", "缺少事先告知的凭证，请补充短信发送记录后重新提交。")
    rita.shot("entry-return-with-reason")
    rita.submit(rita.main_form_button(zh("Return to the member")))
    assert zh("Returned to the member with your reason.") in page.locator(".messages").inner_text()
    assert page.locator("table.data tbody tr").count() == 1  # back in the queue, one to go
    to_return.refresh_from_db()
    assert (to_return.status, to_return.return_reason) == (
        "returned",
        "缺少事先告知的凭证，请补充短信发送记录后重新提交。",
    )
    rita.shot("review-queue-after-return")

    rita.follow(page.locator("table.data a", has_text=to_approve.contract_no))
    rita.submit(rita.main_form_button(zh("Approve")))
    assert (
        zh("Approved: the entry is now visible to queries.")
        in page.locator(".messages").inner_text()
    )
    assert zh("Nothing waits for review.") in page.locator("table.data").inner_text()

    # --- The dispute queue, earliest deadline first -------------------------------------------
    rita.follow(page.locator("header nav a", has_text=zh("Dispute queue")))
    rows = page.locator("table.data tbody tr")
    due_dates = [
        re.match(r"\d{4}-\d{2}-\d{2}", t).group() for t in texts(rows.locator("td:first-child"))
    ]
    assert len(due_dates) == 3 and due_dates == sorted(due_dates), due_dates
    assert overdue.receipt_no in rows.first.inner_text()
    assert rows.first.locator(".due-overdue").count() == 1
    assert dispute.receipt_no in rows.last.inner_text()
    rita.shot("dispute-queue")

    rita.follow(page.locator("table.data a", has_text=dispute.receipt_no))
    rita.shot("dispute-received")
    page.select_option("select[name='assign-assignee']", str(review_officer.pk))
    rita.submit(rita.main_form_button(zh("Assign")))
    assert zh("Assigned.") in page.locator(".messages").inner_text()
    rita.submit(rita.main_form_button(zh("Send the verification request")))
    assert (
        zh("The reporting member was asked to verify the entry.")
        in page.locator(".messages").inner_text()
    )
    rita.shot("dispute-awaiting-verification")

    # --- The member: the entry is flagged in her query; she answers the verification ----------
    alice = Person(new_context(), live_server.url, shots)
    alice.sign_in(lender_staff, password)
    query_zhang(alice, valid.pk)
    entry_row = alice.page.locator("table.data tbody tr", has_text=lender_a.name)
    assert zh("Under dispute") in entry_row.inner_text() and "3000.00" in entry_row.inner_text()
    alice.shot("member-query-under-dispute")

    alice.follow(alice.page.locator("header nav a", has_text=zh("Verification requests")))
    alice.shot("member-verification-requests")
    alice.follow(alice.page.locator("table.data a", has_text=dispute.receipt_no))
    alice.page.check("input[name='answer-answer'][value='corrected']")
    alice.page.fill(
        "textarea[name='answer-note']", "借款人已于上月部分还款，逾期金额应为 1,000.00 元。"
    )
    alice.shot("member-answers")
    alice.submit(alice.main_form_button(zh("Send the answer")))
    assert zh("Your answer was recorded.") in alice.page.locator(".messages").inner_text()

    # --- The officer decides the correction ----------------------------------------------------
    rita.reload()
    assert zh("Corrected") in page.locator("section", has_text=zh("Outcome")).first.inner_text()
    page.check("input[name='decide-decision'][value='corrected']")
    page.fill(
        "textarea[name='decide-reasons']",
        "报送机构核实确认借款人已部分还款，逾期金额更正为 1000.00 元。",
    )
    page.fill("input[name='decide-overdue_amount']", "1000.00")
    rita.shot("dispute-decide")
    rita.submit(rita.main_form_button(zh("Record the decision")))
    assert (
        zh("The decision was recorded. Print the letter for the applicant.")
        in page.locator(".messages").inner_text()
    )
    rita.shot("dispute-decided")
    rita.follow(page.locator("main a", has_text=zh("Decision letter")))
    assert "1000.00" in rita.main_text()
    rita.shot("decision-letter")

    # --- The member queries again: first with the expired consent (the mistake) ---------------
    query_zhang(alice, expired.pk)
    assert alice.field_error("consent") == zh("The consent has expired."), alice.field_error(
        "consent"
    )
    alice.shot("member-query-expired-consent")
    alice.page.fill("#id_consent", str(valid.pk))
    alice.submit(alice.main_form_button())
    entry_row = alice.page.locator("table.data tbody tr", has_text=lender_a.name)
    assert "1000.00" in entry_row.inner_text() and "3000.00" not in entry_row.inner_text()
    assert zh("Under dispute") not in entry_row.inner_text()
    alice.shot("member-query-corrected")

    # --- The corrections bulletin ----------------------------------------------------------------
    alice.follow(alice.page.locator("header nav a", has_text=zh("Corrections bulletin")))
    row = alice.page.locator("table.data tbody tr").first
    assert zh("Corrected") in row.inner_text() and zh("Overdue amount (CNY)") in row.inner_text()
    assert disputed.subject.id_masked in row.inner_text() and ZHANG[0] not in alice.main_text()
    alice.shot("corrections-bulletin")
