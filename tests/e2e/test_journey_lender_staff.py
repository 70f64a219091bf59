"""Lender staff (alice at 甲小额贷款): report an entry with prior notice and evidence, see it
pending, a review officer approves it (password + TOTP), upload the borrower's consent, run a
loan-approval query and read the result (the entry, multi-lending counts, risk grade), then
the print view. Her mistakes: a Word file as evidence, and a query without a consent."""

from datetime import timedelta

import pytest
from helpers import (
    LI,
    TODAY,
    Person,
    demo_prices,
    loan_approval_query,
    texts,
    upload,
    word_document,
    zh,
)
from helpers import PDF as PDF_BYTES

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CONTRACT = "HT-2026-0042"


def fill_entry_form(page, *, evidence) -> None:
    today = TODAY()
    page.select_option("#id_subject_type", "person")
    page.select_option("#id_id_type", "RIC")
    page.fill("#id_id_number", LI[0])
    page.fill("#id_name", LI[1])
    page.fill("#id_phone", "13812345678")
    page.select_option("#id_role", "borrower")
    page.fill("#id_contract_no", CONTRACT)
    page.select_option("#id_category", "overdue")
    page.fill("#id_loan_amount", "12,000.00")
    page.fill("#id_overdue_amount", "4,500.00")
    page.fill("#id_delinquent_since", (today - timedelta(days=75)).isoformat())
    page.fill("#id_notified_on", (today - timedelta(days=60)).isoformat())
    page.select_option("#id_notice_method", "sms")
    page.set_input_files("#id_evidence", evidence)


def fill_query_form(page, *, consent_no: str = "") -> None:
    page.select_option("#id_id_type", "RIC")
    page.fill("#id_id_number", LI[0])
    page.fill("#id_name", LI[1])
    page.select_option("#id_purpose", "loan_approval")
    page.fill("#id_consent", consent_no)
    page.fill("#id_amount", "30,000")
    page.select_option("#id_loan_type", "consumer")
    page.fill("#id_applied_on", TODAY().isoformat())


def test_lender_staff_reports_an_entry_and_queries_with_a_consent(
    live_server,
    new_context,
    shots,
    password,
    lender_staff,
    lender_a,
    other_lender_staff,
    review_officer,
):
    demo_prices()
    # 李四 has applied elsewhere this week: another lender checked him twice.
    loan_approval_query(other_lender_staff, LI, amount="30000")
    loan_approval_query(other_lender_staff, LI, amount="50000")

    alice = Person(new_context(), live_server.url, shots)
    page = alice.page
    alice.sign_in(lender_staff, password, shot_as="login")
    assert page.locator("h1").inner_text().startswith(zh("Lender staff"))
    alice.shot("home-lender-staff")

    # --- Report an entry; first with a Word file as evidence ---------------------------------
    alice.follow(page.locator("main a[href$='/registry/entries/new/']"))
    fill_entry_form(
        page,
        evidence=upload(
            "借款合同.docx",
            word_document(),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
    )
    alice.submit(alice.main_form_button())

    error = alice.field_error("evidence")
    assert "借款合同.docx" in error and zh("a ZIP archive") in error, error
    assert alice.field_error("id_number") == ""  # only the evidence is wrong
    assert page.input_value("#id_contract_no") == CONTRACT  # nothing else to type again
    alice.shot("entry-form-wrong-file-type")

    page.set_input_files("#id_evidence", upload("借款合同.pdf", PDF_BYTES))
    alice.submit(alice.main_form_button())
    assert "/registry/entries/" in page.url
    assert zh("Pending review") in page.locator("h1").inner_text()
    body = alice.main_text()
    assert "借款合同.pdf" in body and LI[0] not in body  # evidence on file, identity masked
    alice.shot("entry-pending")

    alice.follow(page.locator("header nav a", has_text=zh("My entries")))
    row = page.locator("table.data tbody tr", has_text=CONTRACT)
    assert zh("Pending review") in row.inner_text()
    alice.shot("my-entries-pending")

    # --- A review officer approves it --------------------------------------------------------
    rita = Person(new_context(), live_server.url, shots)
    rita.sign_in(review_officer, password, shot_as="login-review-officer")
    rita.follow(rita.page.locator("header nav a", has_text=zh("Review queue")))
    rita.follow(rita.page.locator("table.data a", has_text=CONTRACT))
    rita.shot("entry-to-review")
    rita.submit(rita.main_form_button(zh("Approve")))
    assert (
        zh("Approved: the entry is now visible to queries.")
        in rita.page.locator(".messages").inner_text()
    )
    assert rita.page.locator("table.data a", has_text=CONTRACT).count() == 0

    # --- Query without a consent (the mistake), upload the consent, query again ---------------
    alice.reload()
    assert zh("Active") in page.locator("table.data tbody tr", has_text=CONTRACT).inner_text()
    alice.follow(page.locator("header nav a", has_text=zh("Query")).first)
    fill_query_form(page)
    alice.submit(alice.main_form_button())
    assert alice.field_error("consent") == zh("No consent was given."), alice.field_error("consent")
    alice.shot("query-without-consent")

    alice.follow(page.locator("main a", has_text=zh("Upload a consent")))
    page.select_option("#id_id_type", "RIC")
    page.fill("#id_id_number", LI[0].lower())  # as typed, with a lower-case x if there were one
    page.fill("#id_name", LI[1])
    page.check("#id_purposes_0")  # loan approval
    page.fill("#id_signed_on", (TODAY() - timedelta(days=1)).isoformat())
    page.fill("#id_expires_on", (TODAY() + timedelta(days=180)).isoformat())
    page.set_input_files("#id_file", upload("授权书.pdf", PDF_BYTES))
    alice.shot("consent-form")
    alice.submit(alice.main_form_button())

    # Back on the query form with the new consent's number filled in.
    assert "/billing/queries/new/" in page.url
    consent_no = page.input_value("#id_consent")
    assert consent_no.isdigit()
    assert consent_no in page.locator(".messages").inner_text()
    fill_query_form(page, consent_no=consent_no)
    alice.shot("query-form")
    alice.submit(alice.main_form_button())

    # --- The result ---------------------------------------------------------------------------
    assert "/billing/queries/" in page.url
    assert page.locator("#result-title").inner_text() == zh("Hit: the subject is on the register")
    entry_row = page.locator("table.data tbody tr", has_text=lender_a.name)
    assert zh("Overdue") in entry_row.inner_text() and "12000.00" in entry_row.inner_text()
    grade = page.locator(".grade").inner_text()
    assert grade in "BCDE" and len(grade) == 1  # an entry: never the clean grade A
    multi = page.locator("section", has_text=zh("Multi-lending indicators"))
    queries = texts(multi.locator("tr", has_text=zh("Queries by members")).locator("td"))
    institutions = texts(multi.locator("tr", has_text=zh("Distinct institutions")).locator("td"))
    assert queries[0] == "2" and institutions[0] == "1", (queries, institutions)  # 7 days
    assert "10.00" in page.locator(".result-head").inner_text()  # the loan-approval hit price
    alice.shot("query-result")

    alice.follow(page.locator("main a", has_text=zh("Print view")))
    assert page.locator("body.report").count() == 1
    assert lender_a.name in alice.main_text()
    alice.shot("query-print")
