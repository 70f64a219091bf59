"""The offline counter (柜台): a borrower's self-query after an in-person ID check (2 free per
calendar year in Asia/Shanghai, then the counter price with a cash receipt; the report lists
who queried the subject in the last two years), a representative's query with a scanned paper
consent billed to the member represented, and forms usable with the keyboard alone."""

import datetime
import hashlib
import os
from decimal import Decimal
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from billing import services
from billing.choices import RefusalReason
from billing.demo import DEMO_PRICES
from billing.forms import SelfQueryForm
from billing.models import Consent, FeeLine, PriceRule, PriceSchedule, Query, Receipt
from billing.services import QueryRefused
from blacklist_portal.accounts.models import Institution
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.uploads import check_upload
from registry import services as registry
from registry.importing.rows import parse_row
from registry.services import id_index_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ZHANG = ("11010519491231002X", "张三")
LI = ("110101199003077571", "李四")
TODAY = timezone.localdate()
CHECKED = "居民身份证原件，已核对照片"


def sh(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=SHANGHAI)


def days(n):
    return datetime.timedelta(days=n)


@pytest.fixture
def prices(db):
    schedule = PriceSchedule.objects.create(name="价目", effective_from=sh(2020, 1, 1))
    for channel, purpose, hit, tier_from, price in DEMO_PRICES:
        PriceRule.objects.create(
            schedule=schedule,
            channel=channel,
            purpose=purpose,
            hit=hit,
            tier_from=tier_from,
            price=Decimal(price),
        )
    return schedule


@pytest.fixture
def zhang_on_register(lender_staff, lender_a, review_officer, prices):
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": ZHANG[0],
        "name": ZHANG[1],
        "role": "borrower",
        "contract_no": "HT-1",
        "category": "overdue",
        "loan_amount": "5000",
        "overdue_amount": "1200",
        "delinquent_since": (TODAY - days(100)).isoformat(),
        "notified_on": (TODAY - days(80)).isoformat(),
        "notice_method": "sms",
    }
    f = SimpleUploadedFile("e.pdf", PDF)
    entry, _ = registry.entry_report(
        actor=lender_staff,
        member=lender_a,
        row=parse_row(values, today=TODAY).data,
        evidence=[(f, check_upload(f))],
    )
    return registry.entry_approve(entry=entry, actor=review_officer)


def self_query(clerk, person=ZHANG, *, now, identity_check=CHECKED, name=None) -> Query:
    return services.self_query_run(
        clerk=clerk,
        id_type="RIC",
        id_number=person[0],
        name=name or person[1],
        identity_check=identity_check,
        now=now,
    )


def member_query(member, person=ZHANG, *, at, purpose="loan_approval"):
    return Query.objects.create(
        query_no=f"QPAST{member.pk}{at:%Y%m%d%H%M}",
        member=member,
        channel="web",
        purpose=purpose,
        id_type="RIC",
        subject_index=id_index_for("RIC", person[0]),
        id_masked="x",
        name_masked="x",
        hit=False,
        created_at=at,
    )


# --- Self-query: the free allowance -------------------------------------------------------------------


def test_two_self_queries_a_year_are_free_the_third_is_charged_with_a_receipt(
    counter_clerk, zhang_on_register
):
    first = self_query(counter_clerk, now=sh(2026, 3, 1, 10))
    second = self_query(counter_clerk, now=sh(2026, 7, 1, 10))
    third = self_query(counter_clerk, now=sh(2026, 11, 1, 10))

    assert [q.fee for q in (first, second, third)] == [
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("20.00"),
    ]
    assert [q.result["free_used_before"] for q in (first, second, third)] == [0, 1, 2]
    assert not Receipt.objects.filter(query__in=[first, second]).exists()
    receipt = Receipt.objects.get(query=third)
    assert receipt.amount == Decimal("20.00")
    assert receipt.receipt_no.startswith("R20261101")
    assert receipt.clerk == counter_clerk
    assert receipt.payer_masked == third.name_masked != ZHANG[1]
    assert (third.kind, third.channel, third.purpose, third.member) == (
        "self",
        "counter",
        "self",
        counter_clerk.institution,
    )
    assert third.identity_check == CHECKED
    assert third.hit is True and len(third.result["entries"]) == 1
    # Paid in cash at the counter: nothing goes on a member's statement.
    assert not FeeLine.objects.exists()
    assert AuditEvent.objects.filter(action="query.self", actor=counter_clerk).count() == 3


def test_free_self_queries_reset_on_1_january_in_shanghai(counter_clerk, prices):
    december = [self_query(counter_clerk, now=sh(2026, 12, 31, 23, m)) for m in (40, 45, 50)]
    # 00:05 on 1 January in Shanghai is still 31 December in UTC (16:05).
    january = [self_query(counter_clerk, now=sh(2027, 1, 1, 0, m)) for m in (5, 10, 15)]

    assert [q.fee for q in december] == [Decimal("0.00"), Decimal("0.00"), Decimal("20.00")]
    assert [q.fee for q in january] == [Decimal("0.00"), Decimal("0.00"), Decimal("20.00")]
    assert january[0].result["free_used_before"] == 0
    assert Receipt.objects.filter(query__in=[december[2], january[2]]).count() == 2


def test_the_free_allowance_is_per_person(counter_clerk, prices):
    for m in range(3):
        self_query(counter_clerk, ZHANG, now=sh(2026, 5, 1, 10, m))

    other = self_query(counter_clerk, LI, now=sh(2026, 5, 1, 11))

    assert (other.fee, other.result["free_used_before"]) == (Decimal("0.00"), 0)


def test_self_query_needs_the_id_check(counter_clerk, prices):
    with pytest.raises(QueryRefused) as refused:
        self_query(counter_clerk, identity_check="  ", now=sh(2026, 5, 1, 10))

    assert (refused.value.code, refused.value.field) == (
        RefusalReason.ID_NOT_CHECKED.value,
        "identity_check",
    )
    assert not Query.objects.exists()


def test_self_query_with_a_name_not_matching_the_id_is_refused(counter_clerk, zhang_on_register):
    with pytest.raises(ValidationError) as exc:
        self_query(counter_clerk, name="张四", now=sh(2026, 5, 1, 10))

    assert set(exc.value.message_dict) == {"name"}
    assert not Query.objects.exists() and not Receipt.objects.exists()


def test_self_query_report_lists_who_queried_in_the_last_two_years(
    counter_clerk, lender_a, lender_b, zhang_on_register
):
    now = sh(2026, 6, 1, 10)
    member_query(lender_a, at=now - days(100))
    member_query(lender_b, at=now - days(729), purpose="guarantor_check")
    member_query(lender_b, at=now - days(731))  # over two years ago
    member_query(lender_a, LI, at=now - days(5))  # someone else
    self_query(counter_clerk, now=now - days(50))  # self-queries are not "who queried"

    query = self_query(counter_clerk, now=now)

    listed = query.result["who_queried"]
    assert [(w["member"], w["at"]) for w in listed] == [
        (lender_a.name, timezone.localtime(now - days(100)).strftime("%Y-%m-%d %H:%M")),
        (lender_b.name, timezone.localtime(now - days(729)).strftime("%Y-%m-%d %H:%M")),
    ]
    assert listed[1]["purpose"] and listed[0]["purpose"] != listed[1]["purpose"]


def test_self_query_of_a_person_not_on_file_is_a_clean_report(counter_clerk, prices):
    query = self_query(counter_clerk, LI, now=sh(2026, 5, 1, 10))

    assert (query.hit, query.subject, query.name_matches) == (False, None, None)
    assert query.result["entries"] == [] and query.result["who_queried"] == []


# --- Self-query at the counter screen ---------------------------------------------------------------


def test_clerk_runs_a_self_query_and_sees_who_queried(
    client, login, counter_clerk, lender_a, zhang_on_register
):
    member_query(lender_a, at=timezone.now() - days(30))
    login(client, counter_clerk)
    label = dict(SelfQueryForm().fields["identity_check"].choices)["ric_original"]

    response = client.post(
        reverse("billing:counter_self_query"),
        {
            "id_type": "RIC",
            "id_number": ZHANG[0],
            "name": ZHANG[1],
            "identity_check": "ric_original",
        },
        follow=True,
    )

    query = Query.objects.get(kind="self")
    assert response.redirect_chain[-1][0] == reverse("billing:query_detail", args=[query.query_no])
    assert query.identity_check == str(label)
    page = response.content.decode()
    assert query.query_no in page
    assert lender_a.name in page  # in the "who queried" table


def test_self_query_form_requires_the_id_check(client, login, counter_clerk, prices, zh):
    login(client, counter_clerk)

    response = client.post(
        reverse("billing:counter_self_query"),
        {
            "id_type": "RIC",
            "id_number": ZHANG[0],
            "name": ZHANG[1],
            "identity_check": "",
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "identity_check": [zh("Check the ID card in person and record how.")]
    }
    assert not Query.objects.exists()


def test_self_query_form_puts_a_name_mismatch_next_to_the_name(
    client, login, counter_clerk, zhang_on_register
):
    login(client, counter_clerk)

    response = client.post(
        reverse("billing:counter_self_query"),
        {
            "id_type": "RIC",
            "id_number": ZHANG[0],
            "name": "张四",
            "identity_check": "ric_reader",
        },
    )

    assert list(response.context["form"].errors) == ["name"]
    assert not Query.objects.exists()


def test_receipt_prints_for_the_clerk(client, login, counter_clerk, prices):
    for m in range(3):
        query = self_query(counter_clerk, now=sh(2026, 5, 1, 10, m))
    receipt = Receipt.objects.get()
    login(client, counter_clerk)

    detail = client.get(reverse("billing:query_detail", args=[query.query_no]))
    printed = client.get(reverse("billing:receipt_print", args=[receipt.pk]))

    assert reverse("billing:receipt_print", args=[receipt.pk]) in detail.content.decode()
    assert printed.status_code == 200
    page = printed.content.decode()
    assert receipt.receipt_no in page and "20.00" in page and query.query_no in page


@pytest.mark.parametrize("who", ["other_lender_staff", "other_lender_admin"])
def test_it_checks_ownership_of_counter_pages_receipts_and_self_query_reports(
    client, login, counter_clerk, prices, who, request
):
    for m in range(3):
        query = self_query(counter_clerk, now=sh(2026, 5, 1, 10, m))
    receipt = Receipt.objects.get()
    login(client, request.getfixturevalue(who))

    assert client.get(reverse("billing:counter_home")).status_code == 403
    assert client.get(reverse("billing:counter_self_query")).status_code == 403
    assert client.get(reverse("billing:counter_member_query")).status_code == 403
    assert client.get(reverse("billing:receipt_print", args=[receipt.pk])).status_code == 404
    assert client.get(reverse("billing:query_detail", args=[query.query_no])).status_code == 404


# --- Representative query -------------------------------------------------------------------------


def representative_form(member, **overrides) -> dict:
    data = {
        "member": member.pk,
        "representative": "赵六",
        "id_type": "RIC",
        "id_number": ZHANG[0],
        "name": ZHANG[1],
        "purpose": "loan_approval",
        "consent_file": SimpleUploadedFile("scan.pdf", PDF, content_type="application/pdf"),
        "consent_signed_on": (TODAY - days(1)).isoformat(),
        "consent_expires_on": (TODAY + days(180)).isoformat(),
        "amount": "20000",
        "loan_type": "business",
        "applied_on": TODAY.isoformat(),
    }
    data.update(overrides)
    return data


def test_representative_query_stores_the_scan_and_bills_the_member_represented(
    client, login, counter_clerk, lender_a, zhang_on_register
):
    login(client, counter_clerk)

    response = client.post(reverse("billing:counter_member_query"), representative_form(lender_a))

    query = Query.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("billing:query_detail", args=[query.query_no])
    consent = Consent.objects.get()
    assert (consent.member, consent.channel, consent.uploaded_by) == (
        lender_a,
        "counter",
        counter_clerk,
    )
    assert consent.covers_loan_approval and not consent.covers_post_loan
    assert consent.sha256 == hashlib.sha256(PDF).hexdigest()
    with default_storage.open(consent.file, "rb") as stored:
        assert stored.read() == PDF
    assert (query.member, query.user, query.channel, query.consent) == (
        lender_a,
        counter_clerk,
        "counter",
        consent,
    )
    assert query.representative == "赵六"
    assert query.application_amount == Decimal("20000.00")
    line = FeeLine.objects.get(query=query)
    assert (line.member, line.amount) == (lender_a, Decimal("10.00"))  # loan approval, hit


def test_clerk_sees_and_prints_the_result_of_a_representative_query(
    client, login, counter_clerk, lender_a, zhang_on_register
):
    login(client, counter_clerk)
    response = client.post(reverse("billing:counter_member_query"), representative_form(lender_a))
    query = Query.objects.get()

    result = client.get(response["Location"])
    printed = client.get(response["Location"] + "?print=1")

    assert result.status_code == printed.status_code == 200
    assert query.query_no in printed.content.decode()


def test_representative_query_refuses_a_disguised_scan_and_stores_nothing(
    client, login, counter_clerk, lender_a, prices
):
    login(client, counter_clerk)
    html = b"<html><body><script>alert(1)</script></body></html>"

    response = client.post(
        reverse("billing:counter_member_query"),
        representative_form(lender_a, consent_file=SimpleUploadedFile("scan.pdf", html)),
    )

    assert list(response.context["form"].errors) == ["consent_file"]
    assert (
        not Consent.objects.exists() and not Query.objects.exists() and not FeeLine.objects.exists()
    )


def test_representative_query_with_an_expired_paper_consent_is_refused_next_to_its_expiry(
    client, login, counter_clerk, lender_a, prices, zh
):
    login(client, counter_clerk)

    response = client.post(
        reverse("billing:counter_member_query"),
        representative_form(
            lender_a,
            consent_signed_on=(TODAY - days(400)).isoformat(),
            consent_expires_on=(TODAY - days(35)).isoformat(),
        ),
    )

    assert response.context["form"].errors == {
        "consent_expires_on": [zh(RefusalReason.CONSENT_EXPIRED.label)]
    }
    assert (
        not Consent.objects.exists() and not Query.objects.exists() and not FeeLine.objects.exists()
    )


def stored_consent_files() -> set[str]:
    root = default_storage.path("consents")
    return {os.path.join(folder, name) for folder, _dirs, files in os.walk(root) for name in files}


def test_refused_representative_query_leaves_no_scan_in_storage(
    client, login, counter_clerk, lender_a, prices
):
    login(client, counter_clerk)
    before = stored_consent_files()

    client.post(
        reverse("billing:counter_member_query"),
        representative_form(
            lender_a,
            consent_signed_on=(TODAY - days(400)).isoformat(),
            consent_expires_on=(TODAY - days(35)).isoformat(),
        ),
    )

    assert not Consent.objects.exists()
    assert stored_consent_files() == before


def test_representative_of_a_suspended_member_is_refused(
    client, login, counter_clerk, lender_a, prices, zh
):
    Institution.objects.filter(pk=lender_a.pk).update(status=Institution.Status.SUSPENDED)
    login(client, counter_clerk)

    response = client.post(reverse("billing:counter_member_query"), representative_form(lender_a))

    assert response.context["form"].non_field_errors() == [zh(RefusalReason.MEMBER_SUSPENDED.label)]
    assert (
        not Consent.objects.exists() and not Query.objects.exists() and not FeeLine.objects.exists()
    )


def test_refused_representative_query_is_audit_logged(
    client, login, counter_clerk, lender_a, prices
):
    Institution.objects.filter(pk=lender_a.pk).update(status=Institution.Status.SUSPENDED)
    login(client, counter_clerk)

    client.post(reverse("billing:counter_member_query"), representative_form(lender_a))

    event = AuditEvent.objects.get(action="query.refused")
    assert (event.actor, event.details["reason"]) == (counter_clerk, "member_suspended")


# --- Keyboard use ---------------------------------------------------------------------------------


class _Controls(HTMLParser):
    """Form controls, labels and submit buttons inside <main>."""

    def __init__(self):
        super().__init__()
        self.in_main = False
        self.controls: list[dict] = []
        self.label_for: set[str] = set()
        self.submits: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "main":
            self.in_main = True
        if not self.in_main:
            return
        if tag == "label" and attrs.get("for"):
            self.label_for.add(attrs["for"])
        elif tag in ("select", "textarea") or (
            tag == "input" and attrs.get("type") not in ("hidden", "submit", "button")
        ):
            self.controls.append({"tag": tag, **attrs})
        elif tag == "button" and attrs.get("type", "submit") == "submit":
            self.submits.append(attrs)

    def handle_endtag(self, tag):
        if tag == "main":
            self.in_main = False


@pytest.mark.parametrize("url_name", ["counter_self_query", "counter_member_query"])
def test_every_counter_control_has_a_label_and_the_submit_button_an_access_key(
    client, login, counter_clerk, url_name
):
    login(client, counter_clerk)

    parser = _Controls()
    parser.feed(client.get(reverse(f"billing:{url_name}")).content.decode())

    assert len(parser.controls) >= 4
    unlabelled = [
        c.get("name") for c in parser.controls if not c.get("id") or c["id"] not in parser.label_for
    ]
    assert unlabelled == []
    assert len(parser.submits) == 1
    assert parser.submits[0].get("accesskey")


def test_counter_home_reaches_both_screens_by_access_key(client, login, counter_clerk):
    login(client, counter_clerk)

    page = client.get(reverse("billing:counter_home")).content.decode()

    assert f'href="{reverse("billing:counter_self_query")}" accesskey="1"' in page
    assert f'href="{reverse("billing:counter_member_query")}" accesskey="2"' in page
