"""Data feeds: platform admins load court-judgment (失信被执行人) and bureau files, tagged
with their source, through the same validation; reviewed like member reports or approved
automatically, per source (issue 3, item 8)."""

import csv
import datetime
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation
from stdnum.cn import ric as stdnum_ric

from blacklist_portal.accounts.models import Institution
from registry import selectors, services
from registry.importing.columns import COLUMNS
from registry.models import Entry, FeedSource, ImportBatch

TODAY = timezone.localdate()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def ric(n: int) -> str:
    body = f"32010219700505{n:03d}"
    return body + stdnum_ric.calc_check_digit(body + "0")


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def court(db) -> Institution:
    return Institution.objects.create(
        name="最高人民法院失信被执行人名单",
        kind=Institution.Kind.COURT_SOURCE,
        uscc="11100000000013127D",
        region="全国",
    )


@pytest.fixture
def court_feed(court) -> FeedSource:
    return FeedSource.objects.create(institution=court, source=Entry.Source.COURT)


@pytest.fixture
def bureau_feed(db) -> FeedSource:
    bureau = Institution.objects.create(
        name="百行征信有限公司",
        kind=Institution.Kind.BUREAU,
        uscc="91440300MA5EYUH77D",
        region="广东省",
    )
    return FeedSource.objects.create(institution=bureau, source=Entry.Source.BUREAU)


def judgment_row(n: int) -> list[str]:
    case = f"(2024)苏0102执{100 + n}号"
    values = {
        "subject_type": "个人",
        "id_type": "居民身份证",
        "id_number": ric(n),
        "name": "赵六",
        "phone": "",
        "role": "借款人",
        "contract_no": case,
        "category": "法院判决未履行",
        "loan_amount": "30000",
        "overdue_amount": "",
        "delinquent_since": "",
        "court_name": "南京市玄武区人民法院",
        "case_number": case,
        "judgment_date": (TODAY - datetime.timedelta(days=90)).isoformat(),
        "notified_on": (TODAY - datetime.timedelta(days=60)).isoformat(),
        "notice_method": "信函",
        "settled_on": "",
        "remarks": "",
    }
    return [values[c.key] for c in COLUMNS]


def judgment_file(*numbers: int) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([c.header for c in COLUMNS])
    for n in numbers:
        writer.writerow(judgment_row(n))
    return out.getvalue().encode("gb18030")


def load_feed(client, capture, feed: FeedSource, content: bytes, **extra) -> ImportBatch:
    data = {"source": feed.pk, "file": SimpleUploadedFile("失信名单.csv", content), **extra}
    with capture(execute=True):
        response = client.post(reverse("registry:feed_upload"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    batch = ImportBatch.objects.latest("pk")
    assert batch.status == ImportBatch.Status.VALIDATED, batch.problem
    with capture(execute=True):
        response = client.post(reverse("registry:batch_detail", args=[batch.pk]), {"mode": "all"})
    assert response.status_code == 302
    batch.refresh_from_db()
    return batch


@pytest.fixture
def admin_client(client, login, platform_admin):
    login(client, platform_admin)
    return client


def test_a_court_feed_creates_court_entries_pending_review(
    admin_client, platform_admin, court, court_feed, django_capture_on_commit_callbacks
):
    batch = load_feed(
        admin_client, django_capture_on_commit_callbacks, court_feed, judgment_file(1, 2)
    )

    assert batch.is_feed
    assert batch.member == court
    assert batch.status == ImportBatch.Status.LOADED
    entries = list(Entry.objects.order_by("contract_no"))
    assert len(entries) == 2
    for entry in entries:
        assert entry.source == Entry.Source.COURT
        assert entry.member == court
        assert entry.submitted_by == platform_admin
        assert entry.status == Entry.Status.PENDING_REVIEW
        assert entry.court_name == "南京市玄武区人民法院"
        assert entry.history.get().history_user == platform_admin
        assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == []
    assert set(selectors.review_queue()) == set(entries)


def test_a_pending_feed_entry_is_reviewed_like_any_other(
    admin_client, court_feed, review_officer, django_capture_on_commit_callbacks
):
    load_feed(admin_client, django_capture_on_commit_callbacks, court_feed, judgment_file(1))
    entry = Entry.objects.get()

    services.entry_approve(entry=entry, actor=review_officer)

    entry.refresh_from_db()
    assert entry.status == Entry.Status.ACTIVE
    assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == [entry]


def test_an_auto_approved_source_goes_live_without_review(
    admin_client, court_feed, django_capture_on_commit_callbacks
):
    court_feed.auto_approve = True
    court_feed.save()

    load_feed(admin_client, django_capture_on_commit_callbacks, court_feed, judgment_file(1, 2))

    assert Entry.objects.count() == 2
    for entry in Entry.objects.all():
        assert entry.status == Entry.Status.ACTIVE
        assert entry.source == Entry.Source.COURT
        assert list(selectors.entries_visible_for_subject(subject=entry.subject)) == [entry]
    assert not selectors.review_queue().exists()


def test_a_bureau_feed_is_tagged_with_its_source_and_needs_evidence(
    admin_client, bureau_feed, django_capture_on_commit_callbacks
):
    row = judgment_row(1)
    keys = [c.key for c in COLUMNS]
    overdue = dict(zip(keys, row, strict=True)) | {
        "category": "逾期",
        "court_name": "",
        "case_number": "",
        "judgment_date": "",
        "overdue_amount": "3000",
        "contract_no": "BH-0001",
        "delinquent_since": (TODAY - datetime.timedelta(days=45)).isoformat(),
    }
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([c.header for c in COLUMNS])
    writer.writerow([overdue[k] for k in keys])

    batch = load_feed(
        admin_client,
        django_capture_on_commit_callbacks,
        bureau_feed,
        out.getvalue().encode(),
        evidence=SimpleUploadedFile("extract.pdf", PDF, content_type="application/pdf"),
    )

    entry = Entry.objects.get()
    assert entry.source == Entry.Source.BUREAU
    assert entry.member == bureau_feed.institution
    assert entry.dpd_band(TODAY) == "31–60"
    assert batch.evidence.count() == 1


def test_a_feed_upload_needs_a_source(admin_client, court_feed):
    response = admin_client.post(
        reverse("registry:feed_upload"),
        {"file": SimpleUploadedFile("f.csv", judgment_file(1))},
    )

    assert response.status_code == 200
    assert "Choose the data source" in response.content.decode()
    assert ImportBatch.objects.count() == 0


@pytest.mark.parametrize("source", ["", "court"])
def test_a_blank_or_malformed_source_is_a_form_error_not_a_500(admin_client, court_feed, source):
    response = admin_client.post(
        reverse("registry:feed_upload"),
        {"source": source, "file": SimpleUploadedFile("f.csv", judgment_file(1))},
    )

    assert response.status_code == 200
    assert "Choose the data source" in response.content.decode()
    assert ImportBatch.objects.count() == 0


def test_the_feed_pages_list_sources_and_batches(
    admin_client, court_feed, django_capture_on_commit_callbacks
):
    batch = load_feed(
        admin_client, django_capture_on_commit_callbacks, court_feed, judgment_file(1)
    )

    upload_page = admin_client.get(reverse("registry:feed_upload"))
    listing = admin_client.get(reverse("registry:feed_list"))

    assert upload_page.status_code == 200
    assert "最高人民法院失信被执行人名单" in upload_page.content.decode()
    assert listing.status_code == 200
    assert list(listing.context["page"]) == [batch]


def test_lender_staff_cannot_open_feed_pages(
    client, login, lender_staff, other_lender_staff, review_officer, regulator, court_feed
):
    for user in (lender_staff, other_lender_staff, review_officer, regulator):
        client.logout()
        login(client, user)
        assert client.get(reverse("registry:feed_list")).status_code == 403
        assert client.get(reverse("registry:feed_upload")).status_code == 403
        response = client.post(
            reverse("registry:feed_upload"),
            {"source": court_feed.pk, "file": SimpleUploadedFile("f.csv", judgment_file(1))},
        )
        assert response.status_code == 403
    assert ImportBatch.objects.count() == 0


def test_it_checks_ownership(
    client, login, platform_admin, lender_staff, court_feed, django_capture_on_commit_callbacks
):
    login(client, platform_admin)
    batch = load_feed(client, django_capture_on_commit_callbacks, court_feed, judgment_file(1))
    client.logout()

    login(client, lender_staff)
    for name in ("batch_detail", "batch_progress", "batch_error_report"):
        assert client.get(reverse(f"registry:{name}", args=[batch.pk])).status_code == 404
    entry = Entry.objects.get()
    assert client.get(reverse("registry:entry_detail", args=[entry.pk])).status_code == 404
