"""Member and staff pages of the registry: my entries (filters, CSV export, a bounded number
of queries and no COUNT(*)), entry detail, evidence downloads and revealing identifiers.
Another member's rows are a 404, never a 403 that confirms they exist."""

import csv
import datetime
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation
from stdnum.cn import ric as stdnum_ric

from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.uploads import check_upload
from registry import services
from registry.importing.rows import parse_row
from registry.models import Entry

TODAY = timezone.localdate()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
NAME = "王小明"
PHONE = "13912345678"


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


def report(actor, member, n: int = 1, *, evidence=False, **overrides) -> Entry:
    """A court-judgment entry (its case number is its evidence) unless evidence=True."""
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": ric(n),
        "name": NAME,
        "phone": PHONE,
        "role": "borrower",
        "contract_no": f"HT-{n:04d}",
        "category": "court_judgment",
        "loan_amount": "8000.00",
        "court_name": "北京市朝阳区人民法院",
        "case_number": f"(2023)京0105执{n}号",
        "judgment_date": (TODAY - datetime.timedelta(days=300)).isoformat(),
        "notified_on": (TODAY - datetime.timedelta(days=200)).isoformat(),
        "notice_method": "letter",
    }
    values.update(overrides)
    result = parse_row(values, today=TODAY)
    assert result.ok, result.errors
    files = []
    if evidence:
        f = SimpleUploadedFile("contract.pdf", PDF, content_type="application/pdf")
        files = [(f, check_upload(f))]
    entry, _outcome = services.entry_report(
        actor=actor, member=member, row=result.data, evidence=files
    )
    return entry


@pytest.fixture
def entry(lender_staff, lender_a) -> Entry:
    return report(lender_staff, lender_a, evidence=True)


def detail_url(entry) -> str:
    return reverse("registry:entry_detail", args=[entry.pk])


# --- Entry detail ------------------------------------------------------------------------------


def test_the_reporting_member_sees_its_entry_masked(client, login, entry, lender_staff):
    login(client, lender_staff)

    response = client.get(detail_url(entry))

    page = response.content.decode()
    assert response.status_code == 200
    assert entry.subject.id_masked in page
    assert "王**" in page
    assert "139****5678" in page
    assert ric(1) not in page
    assert NAME not in page
    assert PHONE not in page
    assert AuditEvent.objects.filter(action="entry.view", actor=lender_staff).exists()


def test_it_checks_ownership(client, login, entry, other_lender_staff, other_lender_admin):
    for user in (other_lender_staff, other_lender_admin):
        client.logout()
        login(client, user)
        assert client.get(detail_url(entry)).status_code == 404
        assert client.get(reverse("registry:entry_edit", args=[entry.pk])).status_code == 404


def test_a_missing_entry_is_a_404_like_anothers(client, login, lender_staff):
    login(client, lender_staff)

    assert client.get(reverse("registry:entry_detail", args=[99999])).status_code == 404


def test_review_staff_and_the_regulator_read_every_members_entry(
    client, login, entry, review_officer, senior_review_officer, regulator
):
    for user in (review_officer, senior_review_officer, regulator):
        client.logout()
        login(client, user)
        assert client.get(detail_url(entry)).status_code == 200


def test_the_regulator_reads_but_cannot_write(client, login, entry, regulator, review_officer):
    services.entry_approve(entry=entry, actor=review_officer)
    login(client, regulator)

    page = client.get(detail_url(entry))
    assert page.status_code == 200
    assert not page.context["can_write"]
    assert not page.context["can_review"]
    posts = {
        "entry_edit": {},
        "entry_settle": {"settled_on": TODAY.isoformat()},
        "entry_revoke": {"reason": "x"},
    }
    for name, data in posts.items():
        assert client.post(reverse(f"registry:{name}", args=[entry.pk]), data).status_code == 404
    assert client.post(reverse("registry:entry_approve", args=[entry.pk])).status_code == 403
    assert client.get(reverse("registry:entry_list")).status_code == 403
    entry.refresh_from_db()
    assert entry.status == Entry.Status.ACTIVE


def test_roles_without_registry_access_get_a_404(client, login, entry, lender_admin):
    login(client, lender_admin)
    assert client.get(detail_url(entry)).status_code == 404


def test_the_counter_clerk_opens_an_entry_to_record_a_statement_but_not_its_evidence(
    client, login, entry, counter_clerk
):
    login(client, counter_clerk)
    page = client.get(detail_url(entry))
    assert page.status_code == 200
    assert reverse("registry:entry_statement", args=[entry.pk]) in page.content.decode()
    evidence = entry.evidence.get()
    assert client.get(reverse("registry:evidence_download", args=[evidence.pk])).status_code == 404


def test_anonymous_visitors_are_sent_to_login(client, entry):
    response = client.get(detail_url(entry))

    assert response.status_code == 302
    assert "login" in response["Location"]


# --- Evidence downloads ------------------------------------------------------------------------


def test_the_member_downloads_its_evidence_and_the_download_is_audited(
    client, login, entry, lender_staff
):
    evidence = entry.evidence.get()
    login(client, lender_staff)

    response = client.get(reverse("registry:evidence_download", args=[evidence.pk]))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert "attachment" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    event = AuditEvent.objects.get(action="evidence.download")
    assert event.actor == lender_staff
    assert event.target_id == str(evidence.pk)


def test_evidence_checks_ownership(client, login, entry, other_lender_staff, counter_clerk):
    evidence = entry.evidence.get()
    for user in (other_lender_staff, counter_clerk):
        client.logout()
        login(client, user)
        assert (
            client.get(reverse("registry:evidence_download", args=[evidence.pk])).status_code == 404
        )
    assert not AuditEvent.objects.filter(action="evidence.download").exists()


def test_review_staff_and_the_regulator_may_download_evidence(
    client, login, entry, review_officer, regulator
):
    evidence = entry.evidence.get()
    for user in (review_officer, regulator):
        client.logout()
        login(client, user)
        response = client.get(reverse("registry:evidence_download", args=[evidence.pk]))
        assert response.status_code == 200
        assert b"".join(response.streaming_content) == PDF


# --- Revealing identifiers ---------------------------------------------------------------------


def test_a_review_officer_reveals_the_identifiers_and_it_is_audited(
    client, login, entry, review_officer
):
    login(client, review_officer)
    assert "Reveal full identifiers" in client.get(detail_url(entry)).content.decode()

    response = client.post(reverse("registry:subject_reveal", args=[entry.subject_id]))

    page = response.content.decode()
    assert response.status_code == 200
    assert ric(1) in page
    assert NAME in page
    assert PHONE in page
    event = AuditEvent.objects.get(action="subject.reveal")
    assert event.actor == review_officer
    assert event.target_type == "registry.subject"
    assert event.target_id == str(entry.subject_id)


def test_the_regulator_may_reveal_identifiers(client, login, entry, regulator):
    login(client, regulator)

    response = client.post(reverse("registry:subject_reveal", args=[entry.subject_id]))

    assert response.status_code == 200
    assert ric(1) in response.content.decode()
    assert AuditEvent.objects.filter(action="subject.reveal", actor=regulator).exists()


def test_members_cannot_reveal_identifiers(
    client, login, entry, lender_staff, other_lender_staff, counter_clerk
):
    for user in (lender_staff, other_lender_staff, counter_clerk):
        client.logout()
        login(client, user)
        response = client.post(reverse("registry:subject_reveal", args=[entry.subject_id]))
        assert response.status_code == 404
        assert ric(1) not in response.content.decode()
    assert not AuditEvent.objects.filter(action="subject.reveal").exists()


def test_the_reveal_button_is_offered_only_to_roles_that_may_reveal(
    client, login, entry, lender_staff
):
    login(client, lender_staff)

    assert "Reveal full identifiers" not in client.get(detail_url(entry)).content.decode()


def test_revealing_is_a_post(client, login, entry, review_officer):
    login(client, review_officer)

    assert (
        client.get(reverse("registry:subject_reveal", args=[entry.subject_id])).status_code == 405
    )
    assert not AuditEvent.objects.filter(action="subject.reveal").exists()


# --- My entries --------------------------------------------------------------------------------


def test_my_entries_lists_only_my_institutions_entries(
    client, login, lender_staff, lender_a, other_lender_staff, lender_b
):
    mine = report(lender_staff, lender_a, 1)
    theirs = report(other_lender_staff, lender_b, 2)
    login(client, lender_staff)

    response = client.get(reverse("registry:entry_list"))

    assert response.status_code == 200
    assert list(response.context["page"]) == [mine]
    assert theirs.contract_no not in response.content.decode()


def test_my_entries_filter_by_status_category_and_contract(
    client, login, lender_staff, lender_a, review_officer
):
    judgment = report(lender_staff, lender_a, 1)
    fraud = report(
        lender_staff,
        lender_a,
        2,
        category="fraud",
        court_name="",
        case_number="",
        judgment_date="",
        evidence=True,
    )
    services.entry_approve(entry=fraud, actor=review_officer)
    login(client, lender_staff)

    def listed(**params):
        return list(client.get(reverse("registry:entry_list"), params).context["page"])

    assert listed(status="active") == [fraud]
    assert listed(status="pending_review") == [judgment]
    assert listed(category="court_judgment") == [judgment]
    assert listed(contract_no="HT-0002") == [fraud]


def test_my_entries_needs_the_report_permission(client, login, review_officer, lender_admin):
    for user in (review_officer, lender_admin):
        client.logout()
        login(client, user)
        assert client.get(reverse("registry:entry_list")).status_code == 403


def _list_queries(client) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("registry:entry_list"))
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def test_my_entries_runs_a_bounded_number_of_queries(
    client, login, lender_staff, lender_a, django_assert_max_num_queries
):
    for n in range(1, 4):
        report(lender_staff, lender_a, n)
    login(client, lender_staff)
    with django_assert_max_num_queries(12):
        three = client.get(reverse("registry:entry_list"))
    assert len(three.context["page"]) == 3

    for n in range(4, 31):
        report(lender_staff, lender_a, n)
    with django_assert_max_num_queries(12):
        thirty = client.get(reverse("registry:entry_list"))
    assert len(thirty.context["page"]) == 30

    assert len(_list_queries(client)) == len(_list_queries(client))


def test_my_entries_never_counts_the_whole_table(client, login, lender_staff, lender_a):
    for n in range(1, 56):  # more than a page, so there is a next page
        report(lender_staff, lender_a, n)
    login(client, lender_staff)

    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("registry:entry_list"))
        second = client.get(
            reverse("registry:entry_list"), {"page": "2", "category": "court_judgment"}
        )

    assert response.context["page"].has_next
    assert len(response.context["page"]) == 50
    assert len(second.context["page"]) == 5
    sql = [q["sql"].upper() for q in ctx.captured_queries]
    counts = [s for s in sql if "COUNT(" in s]
    # The only count allowed is the page header's unread-inbox badge: one user's unread
    # notifications, not the list's rows.
    assert not [s for s in counts if not _is_inbox_badge(s)]
    assert not [s for s in counts if "REGISTRY_" in s]


def _is_inbox_badge(sql: str) -> bool:
    return 'FROM "INBOX_NOTIFICATION"' in sql and '"USER_ID" =' in sql


# --- CSV export --------------------------------------------------------------------------------


def _csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def test_the_csv_export_streams_masked_identifiers_only(client, login, lender_staff, lender_a):
    report(lender_staff, lender_a, 1)
    report(lender_staff, lender_a, 2)
    login(client, lender_staff)

    response = client.get(reverse("registry:entry_list"), {"format": "csv"})

    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = _csv_rows(response)
    assert len(rows) == 3  # header and two entries
    flat = "\n".join(",".join(r) for r in rows)
    for n in (1, 2):
        assert ric(n) not in flat
        assert ric(n)[:6] + "********" + ric(n)[-4:] in flat
    assert NAME not in flat
    assert PHONE not in flat
    assert "王**" in flat


def test_the_csv_export_is_audited_with_its_filters(client, login, lender_staff, lender_a):
    report(lender_staff, lender_a, 1)
    login(client, lender_staff)

    response = client.get(
        reverse("registry:entry_list"), {"format": "csv", "status": "pending_review"}
    )
    b"".join(response.streaming_content)

    event = AuditEvent.objects.get(action="entry.export")
    assert event.actor == lender_staff
    assert event.details["filters"] == {"status": "pending_review"}


def test_the_csv_export_checks_ownership(client, login, lender_staff, lender_a, other_lender_staff):
    report(lender_staff, lender_a, 1)
    login(client, other_lender_staff)

    rows = _csv_rows(client.get(reverse("registry:entry_list"), {"format": "csv"}))

    assert len(rows) == 1  # the header only


def test_the_csv_export_neutralises_formulas(client, login, lender_staff, lender_a):
    report(lender_staff, lender_a, 1, contract_no='=HYPERLINK("http://evil.example","x")')
    login(client, lender_staff)

    rows = _csv_rows(client.get(reverse("registry:entry_list"), {"format": "csv"}))

    assert not rows[1][0].startswith(("=", "+", "-", "@"))


def test_the_edit_form_does_not_disclose_another_members_data(
    client, login, lender_staff, lender_a, other_lender_staff, lender_b
):
    report(lender_staff, lender_a, 1, phone=PHONE)  # lender A knows the phone
    theirs = report(other_lender_staff, lender_b, 1, phone="", contract_no="B-1")  # B does not
    login(client, other_lender_staff)

    response = client.get(reverse("registry:entry_edit", args=[theirs.pk]))

    assert response.status_code == 200
    assert PHONE not in response.content.decode()
