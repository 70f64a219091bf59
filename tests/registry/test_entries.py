"""Reporting an entry: the web form and its refusals, re-reports, roles, amounts and the
days-past-due band (product.md, "The life of an entry", steps 1–4)."""

import datetime
import html
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation
from stdnum.cn import ric as stdnum_ric

from blacklist_portal.uploads import check_upload
from registry import selectors, services
from registry.importing.rows import parse_row
from registry.models import Entry, Evidence, Subject, dpd_band

TODAY = timezone.localdate()
PDF = (
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n"
    b"%%EOF\n"
)
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>x</title></head><body>hi</body></html>\n"


def ric(n: int, born: str = "19800101", region: str = "110105") -> str:
    """A valid 18-digit resident ID number (check character from python-stdnum)."""
    body = f"{region}{born}{n:03d}"
    return body + stdnum_ric.calc_check_digit(body + "0")


ID_NUMBER = ric(1)
BAD_CHECK = ID_NUMBER[:-1] + ("1" if ID_NUMBER[-1] != "1" else "2")


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    # LocaleMiddleware picks the language per request: messages are asserted in English.
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def days_ago(n: int) -> str:
    return (TODAY - datetime.timedelta(days=n)).isoformat()


def raw_row(**overrides) -> dict:
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": ID_NUMBER,
        "name": "张三",
        "phone": "13812345678",
        "role": "borrower",
        "contract_no": "HT-2024-0001",
        "category": "overdue",
        "loan_amount": "12345.60",
        "overdue_amount": "2345.60",
        "delinquent_since": days_ago(100),
        "court_name": "",
        "case_number": "",
        "judgment_date": "",
        "notified_on": days_ago(10),
        "notice_method": "sms",
        "settled_on": "",
        "remarks": "",
    }
    values.update(overrides)
    return values


def parsed(**overrides):
    result = parse_row(raw_row(**overrides), today=TODAY)
    assert result.ok, result.errors
    return result.data


def pdf_evidence(name: str = "ledger.pdf"):
    f = SimpleUploadedFile(name, PDF, content_type="application/pdf")
    return [(f, check_upload(f))]


def report(actor, member, *, evidence=True, **overrides):
    return services.entry_report(
        actor=actor,
        member=member,
        row=parsed(**overrides),
        evidence=pdf_evidence() if evidence else [],
    )


def counts() -> tuple[int, int, int]:
    return Entry.objects.count(), Subject.objects.count(), Evidence.objects.count()


def field_errors(response, field: str) -> str:
    """The error list rendered directly beneath a form field, as text."""
    match = re.search(
        rf'<ul class="errorlist" id="id_{field}_error"[^>]*>(.*?)</ul>',
        response.content.decode(),
        re.S,
    )
    return html.unescape(match.group(1)) if match else ""


def post_form(client, **overrides):
    data = raw_row(**overrides)
    data = {k: v for k, v in data.items() if v is not None}
    if "evidence" not in overrides:
        data["evidence"] = SimpleUploadedFile("ledger.pdf", PDF, content_type="application/pdf")
    return client.post(reverse("registry:entry_create"), data)


# --- The web form ------------------------------------------------------------------------------


def test_a_valid_form_report_creates_a_pending_entry_with_its_evidence(
    client, login, lender_staff, lender_a
):
    login(client, lender_staff)

    response = post_form(client, loan_amount="¥12,345.60")

    entry = Entry.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("registry:entry_detail", args=[entry.pk])
    assert entry.member == lender_a
    assert entry.submitted_by == lender_staff
    assert entry.status == Entry.Status.PENDING_REVIEW
    assert entry.loan_amount == Decimal("12345.60")
    assert entry.subject.id_masked == ID_NUMBER[:6] + "********" + ID_NUMBER[-4:]
    assert entry.subject.name_masked == "张*"
    evidence = entry.evidence.get()
    assert evidence.kind == "pdf"
    assert evidence.original_name == "ledger.pdf"
    assert evidence.uploaded_by == lender_staff


def test_a_bad_check_character_is_explained_next_to_the_id_number(client, login, lender_staff):
    login(client, lender_staff)
    before = counts()

    response = post_form(client, id_number=BAD_CHECK)

    assert response.status_code == 200
    errors = field_errors(response, "id_number")
    assert f"The check character should be {ID_NUMBER[-1]}, not {BAD_CHECK[-1]}." in errors
    assert counts() == before


def test_a_report_without_prior_notice_is_refused(client, login, lender_staff):
    login(client, lender_staff)
    before = counts()

    response = post_form(client, notified_on="")

    assert response.status_code == 200
    assert response.context["form"].errors["notified_on"]
    assert field_errors(response, "notified_on")
    assert counts() == before


def test_a_notice_date_in_the_future_is_refused(client, login, lender_staff):
    login(client, lender_staff)
    before = counts()

    response = post_form(client, notified_on=(TODAY + datetime.timedelta(days=1)).isoformat())

    assert "is in the future" in field_errors(response, "notified_on")
    assert counts() == before


def test_a_report_without_evidence_is_refused(client, login, lender_staff):
    login(client, lender_staff)
    before = counts()

    response = post_form(client, evidence=[])

    assert response.status_code == 200
    form = response.context["form"]
    assert any("Evidence is required" in e for e in form.non_field_errors())
    assert "Evidence is required" in html.unescape(response.content.decode())
    assert counts() == before


def test_a_court_judgment_with_a_case_number_needs_no_attachment(client, login, lender_staff):
    login(client, lender_staff)

    response = post_form(
        client,
        evidence=[],
        category="court_judgment",
        overdue_amount="",
        delinquent_since="",
        court_name="北京市朝阳区人民法院",
        case_number="（2023）京0105执1234号",
        judgment_date=days_ago(200),
    )

    assert response.status_code == 302
    entry = Entry.objects.get()
    assert entry.category == "court_judgment"
    assert entry.case_number == "(2023)京0105执1234号"
    assert not entry.evidence.exists()


def test_a_court_judgment_without_a_case_number_is_refused(client, login, lender_staff):
    login(client, lender_staff)
    before = counts()

    response = post_form(
        client,
        evidence=[],
        category="court_judgment",
        overdue_amount="",
        delinquent_since="",
        court_name="北京市朝阳区人民法院",
        case_number="",
        judgment_date=days_ago(200),
    )

    assert response.status_code == 200
    assert "A value is required for category" in field_errors(response, "case_number")
    assert counts() == before


def test_an_html_page_renamed_png_is_refused_next_to_the_evidence_field(
    client, login, lender_staff
):
    login(client, lender_staff)
    before = counts()

    response = post_form(
        client, evidence=SimpleUploadedFile("photo.png", HTML_PAGE, content_type="image/png")
    )

    assert response.status_code == 200
    errors = field_errors(response, "evidence")
    assert "photo.png" in errors
    assert "this file is an HTML page" in errors
    assert counts() == before


@override_settings(PORTAL_UPLOAD_MAX_BYTES=64)
def test_an_oversized_evidence_file_is_refused_next_to_the_evidence_field(
    client, login, lender_staff
):
    login(client, lender_staff)
    before = counts()

    response = post_form(client)  # the PDF is larger than 64 bytes

    assert response.status_code == 200
    assert "This file is too large" in field_errors(response, "evidence")
    assert counts() == before


def test_a_negative_amount_is_refused_next_to_its_field(client, login, lender_staff):
    login(client, lender_staff)
    before = counts()

    response = post_form(client, loan_amount="-5")

    assert "must not be negative" in field_errors(response, "loan_amount")
    assert counts() == before


def test_the_report_form_needs_the_report_permission(client, login, review_officer, regulator):
    for user in (review_officer, regulator):
        client.logout()
        login(client, user)
        assert client.get(reverse("registry:entry_create")).status_code == 403
        assert post_form(client).status_code == 403
    assert Entry.objects.count() == 0


def test_it_checks_ownership(client, login, lender_staff, other_lender_staff, lender_a):
    """The outsider reporting the same contract and subject gets an entry of its own: an
    entry is keyed by the reporting member, never by another member's contract."""
    mine, _ = report(lender_staff, lender_a)
    login(client, other_lender_staff)

    response = post_form(client)

    assert response.status_code == 302
    theirs = Entry.objects.exclude(pk=mine.pk).get()
    assert theirs.member == other_lender_staff.institution
    mine.refresh_from_db()
    assert mine.submitted_by == lender_staff


# --- Re-reports --------------------------------------------------------------------------------


def test_re_reporting_the_same_contract_and_subject_updates_the_entry(lender_staff, lender_a):
    first, outcome1 = report(lender_staff, lender_a)
    again, outcome2 = report(lender_staff, lender_a, overdue_amount="3000.00", evidence=False)

    assert (outcome1, outcome2) == ("created", "updated")
    assert again.pk == first.pk
    assert Entry.objects.count() == 1
    again.refresh_from_db()
    assert again.overdue_amount == Decimal("3000.00")


def test_an_identical_re_report_is_unchanged(lender_staff, lender_a):
    entry, _ = report(lender_staff, lender_a)
    history_rows = entry.history.count()

    again, outcome = report(lender_staff, lender_a, evidence=False)

    assert outcome == "unchanged"
    assert again.pk == entry.pk
    assert Entry.objects.count() == 1
    assert entry.history.count() == history_rows


def test_an_identical_re_report_by_form_says_nothing_changed(client, login, lender_staff, lender_a):
    entry, _ = report(lender_staff, lender_a)
    login(client, lender_staff)

    response = post_form(client, evidence=[])

    assert response.status_code == 302
    assert Entry.objects.get().pk == entry.pk
    page = client.get(response["Location"])
    assert "nothing changed" in page.content.decode()


def test_the_same_subject_typed_differently_is_the_same_entry(lender_staff, lender_a):
    entry, _ = report(lender_staff, lender_a, id_number=ID_NUMBER)
    # Full-width digits and spaces normalise to the same identifier, so the same subject.
    full_width = " ".join(ID_NUMBER[:9]) + ID_NUMBER[9:].translate(
        {ord(c): ord(c) + 0xFEE0 for c in "0123456789"}
    )

    again, outcome = report(lender_staff, lender_a, id_number=full_width, evidence=False)

    assert again.pk == entry.pk
    assert outcome == "unchanged"
    assert Subject.objects.count() == 1


def test_a_legacy_15_digit_id_number_is_the_same_subject_as_its_18_digit_form(
    lender_staff, lender_a
):
    eighteen = "11010519491231002X"
    fifteen = "110105491231002"
    entry, _ = report(lender_staff, lender_a, id_number=eighteen)

    again, outcome = report(lender_staff, lender_a, id_number=fifteen, evidence=False)

    assert again.pk == entry.pk
    assert outcome == "unchanged"
    assert services.subject_find(id_type="RIC", id_number=fifteen) == entry.subject


def test_a_guarantor_and_a_borrower_on_one_contract_are_two_entries(lender_staff, lender_a):
    borrower, _ = report(lender_staff, lender_a, id_number=ric(1), role="borrower")
    guarantor, outcome = report(
        lender_staff,
        lender_a,
        id_number=ric(2),
        name="李四",
        role="guarantor",
        category="guarantor_default",
    )

    assert outcome == "created"
    assert borrower.pk != guarantor.pk
    assert borrower.contract_no == guarantor.contract_no
    assert Entry.objects.filter(contract_no="HT-2024-0001").count() == 2
    assert {e.subject_role for e in Entry.objects.all()} == {"borrower", "guarantor"}
    assert Subject.objects.count() == 2


def test_re_reporting_an_expired_entry_is_refused(lender_staff, lender_a):
    entry, _ = report(lender_staff, lender_a)
    Entry.objects.filter(pk=entry.pk).update(status=Entry.Status.EXPIRED)

    with pytest.raises(ValidationError, match="expired"):
        report(lender_staff, lender_a, overdue_amount="1.00", evidence=False)


def test_re_reporting_an_entry_deleted_after_a_dispute_is_refused(lender_staff, lender_a):
    entry, _ = report(lender_staff, lender_a)
    Entry.objects.filter(pk=entry.pk).update(status=Entry.Status.DELETED)

    with pytest.raises(ValidationError):
        report(lender_staff, lender_a, overdue_amount="1.00", evidence=False)
    entry.refresh_from_db()
    assert entry.status == Entry.Status.DELETED


def test_a_suspended_member_cannot_report(lender_staff, lender_a):
    lender_a.status = lender_a.Status.SUSPENDED
    lender_a.save()

    with pytest.raises(ValidationError, match="suspended"):
        report(lender_staff, lender_a)
    assert Entry.objects.count() == 0


# --- Amounts and days past due -----------------------------------------------------------------


def test_amounts_are_decimals_in_yuan_and_fen(lender_staff, lender_a):
    report(lender_staff, lender_a, loan_amount="￥12,345.6", overdue_amount="0.10")

    entry = Entry.objects.get()
    assert isinstance(entry.loan_amount, Decimal)
    assert isinstance(entry.overdue_amount, Decimal)
    assert entry.loan_amount == Decimal("12345.60")
    assert entry.overdue_amount == Decimal("0.10")
    assert str(entry.loan_amount) == "12345.60"


@pytest.mark.parametrize(
    ("days", "band"),
    [
        (0, ""),
        (1, "1–30"),
        (30, "1–30"),
        (31, "31–60"),
        (60, "31–60"),
        (61, "61–90"),
        (90, "61–90"),
        (91, "91–180"),
        (180, "91–180"),
        (181, "180+"),
    ],
)
def test_days_past_due_fall_in_metro2_bands(days, band):
    entry = Entry(delinquent_since=TODAY - datetime.timedelta(days=days))

    assert entry.dpd_days(TODAY) == days
    assert entry.dpd_band(TODAY) == band
    assert dpd_band(days) == band


def test_days_past_due_stop_counting_at_settlement():
    entry = Entry(
        delinquent_since=TODAY - datetime.timedelta(days=200),
        settled_on=TODAY - datetime.timedelta(days=150),
    )

    assert entry.dpd_days(TODAY) == 50
    assert entry.dpd_band(TODAY) == "31–60"


def test_an_entry_without_an_overdue_start_has_no_band():
    assert Entry(delinquent_since=None).dpd_band(TODAY) == ""


# --- Visibility --------------------------------------------------------------------------------


def test_a_reported_entry_is_pending_and_invisible_to_queries(lender_staff, lender_a):
    entry, _ = report(lender_staff, lender_a)

    assert entry.status == Entry.Status.PENDING_REVIEW
    assert not entry.is_visible_to_queries
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == []


def test_history_records_the_reporter(lender_staff, lender_a):
    entry, _ = report(lender_staff, lender_a)

    record = entry.history.get()
    assert record.history_user == lender_staff
    assert record.history_type == "+"
