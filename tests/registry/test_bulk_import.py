"""Bulk report files (import-format.md): upload, dry run with a downloadable error report,
load nothing or only the valid rows, re-upload as a no-op, progress, templates. Validation and
loading run in Celery tasks queued on commit (eager in tests)."""

import csv
import datetime
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation
from openpyxl import Workbook, load_workbook
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from stdnum.cn import ric as stdnum_ric

from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.uploads import check_upload
from registry import bulk, services
from registry.importing.columns import COLUMNS
from registry.importing.reader import _sheet_values, iter_rows
from registry.importing.rows import parse_row
from registry.models import Entry, ImportBatch, Subject

TODAY = timezone.localdate()
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
CHINESE_HEADERS = [c.header for c in COLUMNS]
ALIASES = [c.key for c in COLUMNS]


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


def row(n: int, **overrides) -> dict:
    """One file row in the Chinese vocabulary of import-format.md, keyed by alias."""
    values = {
        "subject_type": "个人",
        "id_type": "居民身份证",
        "id_number": ric(n),
        "name": "张三",
        "phone": "13812345678",
        "role": "借款人",
        "contract_no": f"HT-{n:04d}",
        "category": "逾期",
        "loan_amount": "¥12,345.60",
        "overdue_amount": "2345.6",
        "delinquent_since": f"{days_ago(100):%Y/%-m/%-d}",
        "court_name": "",
        "case_number": "",
        "judgment_date": "",
        "notified_on": f"{days_ago(20):%Y年%-m月%-d日}",
        "notice_method": "短信",
        "settled_on": "",
        "remarks": "",
    }
    values.update(overrides)
    return values


def csv_bytes(rows: list[dict], *, headers=CHINESE_HEADERS, encoding="utf-8") -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(headers)
    for r in rows:
        writer.writerow([r.get(key, "") for key in ALIASES])
    return out.getvalue().encode(encoding)


def xlsx_bytes(rows: list[dict], *, headers=CHINESE_HEADERS) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(headers)
    for r in rows:
        sheet.append([r.get(key) for key in ALIASES])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(client, capture, name: str, content: bytes, *, evidence: bool = True) -> ImportBatch:
    data = {"file": SimpleUploadedFile(name, content)}
    if evidence:
        data["evidence"] = SimpleUploadedFile("ledger.pdf", PDF, content_type="application/pdf")
    with capture(execute=True):
        response = client.post(reverse("registry:batch_upload"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    batch = ImportBatch.objects.latest("pk")
    assert response["Location"] == reverse("registry:batch_detail", args=[batch.pk])
    return batch


def load(client, capture, batch, mode: str, **extra):
    with capture(execute=True):
        response = client.post(
            reverse("registry:batch_detail", args=[batch.pk]), {"mode": mode, **extra}
        )
    batch.refresh_from_db()
    return response


def error_report(client, batch) -> list[list[str]]:
    response = client.get(reverse("registry:batch_error_report", args=[batch.pk]))
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


@pytest.fixture
def staff(client, login, lender_staff):
    login(client, lender_staff)
    return lender_staff


# --- Files that load ---------------------------------------------------------------------------


def test_a_gb18030_csv_with_chinese_headers_loads(
    client, staff, lender_a, django_capture_on_commit_callbacks
):
    content = csv_bytes([row(1), row(2, name="欧阳锋")], encoding="gb18030")
    with pytest.raises(UnicodeDecodeError):
        content.decode("utf-8")  # really GB18030, not UTF-8 in disguise

    batch = upload(client, django_capture_on_commit_callbacks, "报送.csv", content)
    assert (batch.status, batch.total_rows, batch.error_rows) == ("validated", 2, 0)
    load(client, django_capture_on_commit_callbacks, batch, "all")

    assert batch.status == ImportBatch.Status.LOADED
    assert batch.created_rows == 2
    entries = Entry.objects.order_by("contract_no")
    assert [e.subject.name for e in entries] == ["张三", "欧阳锋"]
    for entry in entries:
        assert entry.member == lender_a
        assert entry.submitted_by == staff
        assert entry.status == Entry.Status.PENDING_REVIEW
        assert entry.import_batch == batch
        assert entry.loan_amount == Decimal("12345.60")
        assert entry.overdue_amount == Decimal("2345.60")
        assert entry.delinquent_since == days_ago(100)
        assert entry.notified_on == days_ago(20)
        assert entry.category == "overdue"
        assert entry.history.get().history_user == staff


def test_a_utf8_csv_with_a_bom_loads(client, staff, django_capture_on_commit_callbacks):
    content = csv_bytes([row(1)], encoding="utf-8-sig")
    assert content.startswith(b"\xef\xbb\xbf")

    batch = upload(client, django_capture_on_commit_callbacks, "export.csv", content)
    load(client, django_capture_on_commit_callbacks, batch, "all")

    assert batch.status == ImportBatch.Status.LOADED
    assert Entry.objects.get().subject.id_number == ric(1)


def test_an_xlsx_workbook_with_real_dates_and_numbers_loads(
    client, staff, django_capture_on_commit_callbacks
):
    r = row(
        1,
        loan_amount=12345.6,
        overdue_amount=2000,
        delinquent_since=datetime.datetime.combine(days_ago(100), datetime.time()),
        notified_on=days_ago(20),
    )
    batch = upload(client, django_capture_on_commit_callbacks, "报送.xlsx", xlsx_bytes([r]))
    assert batch.status == ImportBatch.Status.VALIDATED, batch.problem
    load(client, django_capture_on_commit_callbacks, batch, "all")

    entry = Entry.objects.get()
    assert entry.loan_amount == Decimal("12345.60")
    assert entry.overdue_amount == Decimal("2000.00")
    assert entry.delinquent_since == days_ago(100)
    assert entry.notified_on == days_ago(20)


def test_english_headers_and_values_load(client, staff, django_capture_on_commit_callbacks):
    r = row(
        1,
        subject_type="person",
        id_type="RIC",
        role="guarantor",
        category="guarantor_default",
        notice_method="letter",
        delinquent_since="",
    )
    content = csv_bytes([r], headers=[f"  {a.upper()} " for a in ALIASES])

    batch = upload(client, django_capture_on_commit_callbacks, "en.csv", content)
    load(client, django_capture_on_commit_callbacks, batch, "all")

    entry = Entry.objects.get()
    assert (entry.subject_role, entry.category, entry.notice_method) == (
        "guarantor",
        "guarantor_default",
        "letter",
    )


def test_court_judgment_rows_need_no_evidence_file(
    client, staff, django_capture_on_commit_callbacks
):
    judgment = row(
        1,
        category="法院判决未履行",
        overdue_amount="",
        delinquent_since="",
        court_name="北京市朝阳区人民法院",
        case_number="〔2023〕京0105执1234号",
        judgment_date="2023-05-06",
    )
    batch = upload(
        client,
        django_capture_on_commit_callbacks,
        "f.csv",
        csv_bytes([judgment, row(2)]),
        evidence=False,
    )

    assert batch.error_rows == 1
    assert error_report(client, batch)[1][:2] == ["3", "失信类别 (category)"]
    load(client, django_capture_on_commit_callbacks, batch, "valid_only")
    assert Entry.objects.get().case_number == "(2023)京0105执1234号"


def test_rows_share_the_batch_evidence(client, staff, django_capture_on_commit_callbacks):
    batch = upload(client, django_capture_on_commit_callbacks, "f.csv", csv_bytes([row(1)]))
    load(client, django_capture_on_commit_callbacks, batch, "all")

    entry = Entry.objects.get()
    evidence = batch.evidence.get()
    page = client.get(reverse("registry:entry_detail", args=[entry.pk]))
    assert evidence in page.context["evidence"]
    download = client.get(reverse("registry:evidence_download", args=[evidence.pk]))
    assert b"".join(download.streaming_content) == PDF


# --- Dry run and error report ------------------------------------------------------------------


@pytest.fixture
def mixed_batch(client, staff, django_capture_on_commit_callbacks):
    """Rows 2 and 5 are valid; rows 3 and 4 are not."""
    bad_check = ric(2)[:-1] + ("0" if ric(2)[-1] != "0" else "1")
    rows = [
        row(1),
        row(2, id_number=bad_check),
        row(3, loan_amount="-5", notice_method="飞鸽传书"),
        row(4),
    ]
    return upload(client, django_capture_on_commit_callbacks, "mixed.csv", csv_bytes(rows))


def test_the_dry_run_reports_every_bad_row_with_row_column_and_message(client, mixed_batch):
    assert mixed_batch.status == ImportBatch.Status.VALIDATED
    assert (mixed_batch.total_rows, mixed_batch.error_rows, mixed_batch.valid_rows) == (4, 2, 2)
    assert Entry.objects.count() == 0  # a dry run stores no entry

    report = error_report(client, mixed_batch)

    assert report[0] == ["行号 row", "列 column", "错误 message"]
    problems = {(r[0], r[1]): r[2] for r in report[1:]}
    assert set(problems) == {
        ("3", "证件号码 (id_number)"),
        ("4", "借款金额 (loan_amount)"),
        ("4", "告知方式 (notice_method)"),
    }
    assert problems[("3", "证件号码 (id_number)")].startswith("The check character should be")
    assert "must not be negative" in problems[("4", "借款金额 (loan_amount)")]
    assert "飞鸽传书" in problems[("4", "告知方式 (notice_method)")]


def test_the_batch_page_links_the_error_report(client, mixed_batch):
    page = client.get(reverse("registry:batch_detail", args=[mixed_batch.pk])).content.decode()

    assert reverse("registry:batch_error_report", args=[mixed_batch.pk]) in page


def test_loading_all_is_refused_when_rows_have_errors(
    client, mixed_batch, django_capture_on_commit_callbacks
):
    response = load(client, django_capture_on_commit_callbacks, mixed_batch, "all")

    assert response.status_code == 200
    assert "2 rows have errors" in response.context["form"].errors["mode"][0]
    assert "2 rows have errors" in response.content.decode()
    assert mixed_batch.status == ImportBatch.Status.VALIDATED
    assert Entry.objects.count() == 0


def test_loading_the_valid_rows_only_skips_the_bad_ones(
    client, staff, mixed_batch, django_capture_on_commit_callbacks
):
    subjects_before = Subject.objects.count()

    response = load(client, django_capture_on_commit_callbacks, mixed_batch, "valid_only")

    assert response.status_code == 302
    assert mixed_batch.status == ImportBatch.Status.LOADED
    assert mixed_batch.created_rows == 2
    assert sorted(Entry.objects.values_list("contract_no", flat=True)) == ["HT-0001", "HT-0004"]
    assert Subject.objects.count() == subjects_before + 2
    assert AuditEvent.objects.filter(action="import.load", actor=staff).exists()


def test_cancelling_loads_nothing(client, staff, mixed_batch, django_capture_on_commit_callbacks):
    load(client, django_capture_on_commit_callbacks, mixed_batch, "", action="cancel")

    assert mixed_batch.status == ImportBatch.Status.CANCELLED
    assert Entry.objects.count() == 0
    assert Subject.objects.count() == 0
    # A cancelled file cannot be loaded afterwards.
    response = load(client, django_capture_on_commit_callbacks, mixed_batch, "valid_only")
    assert mixed_batch.status == ImportBatch.Status.CANCELLED
    assert Entry.objects.count() == 0
    assert response.status_code == 200


def test_reuploading_the_same_file_changes_nothing(
    client, staff, django_capture_on_commit_callbacks
):
    content = csv_bytes([row(1), row(2), row(3)])
    first = upload(client, django_capture_on_commit_callbacks, "f.csv", content)
    load(client, django_capture_on_commit_callbacks, first, "all")
    entries = list(Entry.objects.order_by("pk").values())
    history_rows = Entry.history.count()

    second = upload(client, django_capture_on_commit_callbacks, "f.csv", content)
    page = client.get(reverse("registry:batch_detail", args=[second.pk])).content.decode()
    assert "The same file was loaded on" in page
    load(client, django_capture_on_commit_callbacks, second, "all")

    assert second.status == ImportBatch.Status.LOADED
    assert (second.created_rows, second.updated_rows, second.unchanged_rows) == (0, 0, 3)
    assert list(Entry.objects.order_by("pk").values()) == entries
    assert Entry.history.count() == history_rows


def test_a_changed_row_updates_its_entry_and_leaves_the_others(
    client, staff, django_capture_on_commit_callbacks
):
    first = upload(client, django_capture_on_commit_callbacks, "f.csv", csv_bytes([row(1), row(2)]))
    load(client, django_capture_on_commit_callbacks, first, "all")
    history_rows = Entry.history.count()

    second = upload(
        client,
        django_capture_on_commit_callbacks,
        "g.csv",
        csv_bytes([row(1), row(2, overdue_amount="9999.00")]),
    )
    load(client, django_capture_on_commit_callbacks, second, "all")

    assert (second.created_rows, second.updated_rows, second.unchanged_rows) == (0, 1, 1)
    assert Entry.objects.count() == 2
    assert Entry.objects.get(contract_no="HT-0002").overdue_amount == Decimal("9999.00")
    assert Entry.history.count() == history_rows + 1
    assert Entry.history.latest("history_id").history_user == staff


def test_a_settlement_date_later_than_the_one_on_file_is_an_error(
    client, staff, lender_a, review_officer, django_capture_on_commit_callbacks
):
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": ric(1),
        "name": "张三",
        "role": "borrower",
        "contract_no": "HT-0001",
        "category": "overdue",
        "loan_amount": "12345.60",
        "overdue_amount": "2345.60",
        "delinquent_since": days_ago(100).isoformat(),
        "notified_on": days_ago(20).isoformat(),
        "notice_method": "sms",
    }
    f = SimpleUploadedFile("x.pdf", PDF)
    entry, _ = services.entry_report(
        actor=staff,
        member=lender_a,
        row=parse_row(values, today=TODAY).data,
        evidence=[(f, check_upload(f))],
    )
    services.entry_approve(entry=entry, actor=review_officer)
    services.entry_settle(entry=entry, actor=staff, settled_on=days_ago(30))

    batch = upload(
        client,
        django_capture_on_commit_callbacks,
        "f.csv",
        csv_bytes([row(1, settled_on=days_ago(10).isoformat())]),
    )

    assert batch.error_rows == 1
    [_header, problem] = error_report(client, batch)
    assert problem[:2] == ["2", "结清日期 (settled_on)"]
    assert "cannot be moved later" in problem[2]
    entry.refresh_from_db()
    assert entry.settled_on == days_ago(30)


# --- Whole-file problems -----------------------------------------------------------------------


def test_an_unknown_column_rejects_the_file_with_the_problem_on_the_page(
    client, staff, django_capture_on_commit_callbacks
):
    headers = [*CHINESE_HEADERS[:-1], "备考"]  # a typo of 备注
    batch = upload(
        client, django_capture_on_commit_callbacks, "f.csv", csv_bytes([row(1)], headers=headers)
    )

    assert batch.status == ImportBatch.Status.REJECTED
    assert "Unknown column “备考”" in batch.problem
    page = client.get(reverse("registry:batch_detail", args=[batch.pk])).content.decode()
    assert "Unknown column “备考” (column R)" in page
    response = load(client, django_capture_on_commit_callbacks, batch, "valid_only")
    assert response.status_code == 200
    assert Entry.objects.count() == 0


def test_a_missing_required_column_rejects_the_file(
    client, staff, django_capture_on_commit_callbacks
):
    headers = [h if h != "告知日期" else "" for h in CHINESE_HEADERS]
    batch = upload(
        client, django_capture_on_commit_callbacks, "f.csv", csv_bytes([row(1)], headers=headers)
    )

    assert batch.status == ImportBatch.Status.REJECTED
    assert "Required column 告知日期 (notified_on) is missing." in batch.problem


def test_a_file_that_is_not_a_spreadsheet_is_refused_at_upload(client, staff):
    response = client.post(
        reverse("registry:batch_upload"), {"file": SimpleUploadedFile("data.csv", PDF)}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["file"]
    assert ImportBatch.objects.count() == 0


@override_settings(PORTAL_IMPORT_MAX_BYTES=100)
def test_an_oversized_bulk_file_is_refused_at_upload(client, staff):
    response = client.post(
        reverse("registry:batch_upload"),
        {"file": SimpleUploadedFile("f.csv", csv_bytes([row(1)]))},
    )

    assert response.status_code == 200
    assert "This file is too large" in response.context["form"].errors["file"][0]
    assert ImportBatch.objects.count() == 0


def test_a_csv_in_an_unknown_encoding_is_rejected_with_a_message(
    client, staff, django_capture_on_commit_callbacks
):
    # The upload check sniffs the head of the file, which is fine; a byte that is neither
    # UTF-8 nor GB18030 comes much later, so the dry run must find it.
    content = csv_bytes([row(1, remarks="备" * 30000)]) + b"\xff\xff\n"

    batch = upload(client, django_capture_on_commit_callbacks, "f.csv", content)

    assert batch.status == ImportBatch.Status.REJECTED
    assert "encoding could not be recognised" in batch.problem
    page = client.get(reverse("registry:batch_detail", args=[batch.pk])).content.decode()
    assert "encoding could not be recognised" in page
    assert Entry.objects.count() == 0


def test_a_header_without_rows_is_rejected(client, staff, django_capture_on_commit_callbacks):
    batch = upload(client, django_capture_on_commit_callbacks, "f.csv", csv_bytes([]))

    assert batch.status == ImportBatch.Status.REJECTED
    assert "no data rows" in batch.problem


# --- Progress, ownership, templates ------------------------------------------------------------


def test_the_progress_endpoint_reports_rows_done(client, staff, mixed_batch):
    response = client.get(reverse("registry:batch_progress", args=[mixed_batch.pk]))

    assert response.status_code == 200
    assert response.json() == {"status": "validated", "processed": 4, "total": 4, "percent": 100}


def test_progress_is_a_share_of_the_rows(mixed_batch):
    ImportBatch.objects.filter(pk=mixed_batch.pk).update(status="loading", processed_rows=1)
    mixed_batch.refresh_from_db()

    assert mixed_batch.progress_percent == 25


def test_it_checks_ownership(client, login, mixed_batch, other_lender_staff, review_officer):
    for user in (other_lender_staff, review_officer):
        client.logout()
        login(client, user)
        for name in ("batch_detail", "batch_progress", "batch_error_report"):
            assert client.get(reverse(f"registry:{name}", args=[mixed_batch.pk])).status_code == 404
        load_attempt = client.post(
            reverse("registry:batch_detail", args=[mixed_batch.pk]), {"mode": "valid_only"}
        )
        assert load_attempt.status_code == 404
    client.logout()
    login(client, other_lender_staff)
    assert mixed_batch not in client.get(reverse("registry:batch_list")).context["page"]
    mixed_batch.refresh_from_db()
    assert mixed_batch.status == ImportBatch.Status.VALIDATED
    assert Entry.objects.count() == 0


def test_the_batch_list_shows_my_uploads(client, staff, mixed_batch):
    response = client.get(reverse("registry:batch_list"))

    assert list(response.context["page"]) == [mixed_batch]


def test_the_csv_template_opens_with_the_chinese_headers(client, staff):
    response = client.get(reverse("registry:import_template", args=["csv"]))

    assert response.status_code == 200
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == CHINESE_HEADERS
    assert len(rows) == 2  # one example row
    assert parse_row(dict(zip(ALIASES, rows[1], strict=True)), today=TODAY).ok


def test_the_xlsx_template_opens_with_the_chinese_headers(client, staff):
    response = client.get(reverse("registry:import_template", args=["xlsx"]))

    assert response.status_code == 200
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    first = next(workbook.worksheets[0].iter_rows(min_row=1, max_row=1, values_only=True))
    assert list(first) == CHINESE_HEADERS


def test_templates_are_for_reporting_members(client, login, review_officer, other_lender_staff):
    login(client, review_officer)
    assert client.get(reverse("registry:import_template", args=["csv"])).status_code == 403
    assert client.get(reverse("registry:batch_upload")).status_code == 403
    client.logout()
    login(client, other_lender_staff)
    assert client.get(reverse("registry:import_template", args=["xlsx"])).status_code == 200


# === Fast paths (issue 7): the dry run stages the rows it parsed (encrypted) and the load uses
# them; the worksheet reader gives what openpyxl gives; on PostgreSQL entries and their history
# rows are written in one statement, with the content bulk_create_with_history writes.

# --- Staged rows -------------------------------------------------------------------------------


def test_the_load_uses_the_rows_staged_by_the_dry_run(
    client, staff, django_capture_on_commit_callbacks
):
    rows = [row(1), row(2, name="欧阳锋"), row(3, loan_amount="-5")]
    batch = upload(client, django_capture_on_commit_callbacks, "a.csv", csv_bytes(rows))
    assert (batch.total_rows, batch.error_rows) == (3, 1)
    staged = Path(default_storage.path(bulk.staged_name(batch)))
    content = staged.read_bytes()
    # Encrypted at rest: no identifier, name or contract number in clear.
    for clear in (ric(1), ric(2), "欧阳锋", "张三", "HT-0001", "13812345678"):
        assert clear.encode() not in content
    # The load does not read the uploaded file again.
    Path(default_storage.path(batch.file)).unlink()

    load(client, django_capture_on_commit_callbacks, batch, "valid_only")

    assert batch.status == ImportBatch.Status.LOADED
    assert (batch.created_rows, batch.processed_rows) == (2, 3)
    entries = Entry.objects.order_by("contract_no")
    assert [(e.contract_no, e.subject.id_number, e.subject.name) for e in entries] == [
        ("HT-0001", ric(1), "张三"),
        ("HT-0002", ric(2), "欧阳锋"),
    ]
    assert entries[0].loan_amount == Decimal("12345.60")
    assert all(e.history.get().history_user == staff for e in entries)
    assert not staged.exists()  # deleted once loaded


def test_without_staged_rows_the_load_reads_the_file_again(
    client, staff, django_capture_on_commit_callbacks
):
    rows = [row(1), row(2), row(3, loan_amount="-5")]
    batch = upload(client, django_capture_on_commit_callbacks, "a.csv", csv_bytes(rows))
    Path(default_storage.path(bulk.staged_name(batch))).unlink()

    load(client, django_capture_on_commit_callbacks, batch, "valid_only")

    assert (batch.status, batch.created_rows, batch.processed_rows) == ("loaded", 2, 3)


def test_staged_rows_of_another_batch_are_not_used(
    client, staff, django_capture_on_commit_callbacks
):
    first = upload(client, django_capture_on_commit_callbacks, "a.csv", csv_bytes([row(1)]))
    second = upload(client, django_capture_on_commit_callbacks, "b.csv", csv_bytes([row(2)]))
    a = Path(default_storage.path(bulk.staged_name(first)))
    b = Path(default_storage.path(bulk.staged_name(second)))
    b.write_bytes(a.read_bytes())  # bound to the first batch: does not decrypt for the second
    assert bulk.staged_rows(second) is None

    load(client, django_capture_on_commit_callbacks, second, "all")

    assert second.created_rows == 1
    assert Entry.objects.get().contract_no == "HT-0002"  # from the file, not the copied rows


def test_a_row_refused_at_load_time_is_skipped(client, staff, django_capture_on_commit_callbacks):
    """The staged rows are checked again against the entries on file when they are loaded."""
    batch = upload(client, django_capture_on_commit_callbacks, "a.csv", csv_bytes([row(1)]))
    earlier = upload(client, django_capture_on_commit_callbacks, "b.csv", csv_bytes([row(1)]))
    load(client, django_capture_on_commit_callbacks, earlier, "all")
    Entry.objects.update(status=Entry.Status.EXPIRED, retention_until=timezone.localdate())

    load(client, django_capture_on_commit_callbacks, batch, "all")

    assert (batch.status, batch.created_rows, batch.updated_rows, batch.unchanged_rows) == (
        "loaded", 0, 0, 0,
    )
    assert Entry.objects.get().status == Entry.Status.EXPIRED


def test_cancelling_deletes_the_staged_rows(client, staff, django_capture_on_commit_callbacks):
    batch = upload(client, django_capture_on_commit_callbacks, "a.csv", csv_bytes([row(1)]))
    staged = Path(default_storage.path(bulk.staged_name(batch)))
    assert staged.exists()
    load(client, django_capture_on_commit_callbacks, batch, "", action="cancel")
    assert batch.status == ImportBatch.Status.CANCELLED
    assert not staged.exists()


# --- The worksheet reader ----------------------------------------------------------------------


def _workbook(tmp_path, *, write_only: bool) -> Path:
    workbook = Workbook(write_only=write_only)
    sheet = workbook.create_sheet() if write_only else workbook.active
    rich = CellRichText("富", TextBlock(InlineFont(b=True), "文本"))
    sheet.append(["a", "b", "c", "d", "e", "f", "g", "h"])
    sheet.append(["张三", 12345.6, 7, True, datetime.date(2024, 3, 5), None, "=1+1", " x "])
    sheet.append([])
    sheet.append([None, None, "only c"])
    sheet.append([datetime.datetime(2024, 3, 5, 10, 30), 1e20, -0.0, False, "", 110105194912310021])
    if not write_only:
        sheet["J7"] = "far"
        sheet["A8"] = rich
        sheet["B8"] = datetime.time(12, 30)
        sheet["C8"] = datetime.timedelta(hours=30)
        sheet["C8"].number_format = "[h]:mm:ss"
    path = tmp_path / f"t-{write_only}.xlsx"
    workbook.save(path)
    return path


@pytest.mark.parametrize("write_only", [False, True])
def test_the_worksheet_reader_gives_what_openpyxl_gives(tmp_path, write_only):
    path = _workbook(tmp_path, write_only=write_only)
    expected = load_workbook(path, read_only=True, data_only=True).worksheets[0]
    expected.reset_dimensions()
    ours = load_workbook(path, read_only=True, data_only=True).worksheets[0]
    ours.reset_dimensions()
    assert list(_sheet_values(ours)) == list(expected.iter_rows(values_only=True))
    numbers = [number for number, _values in iter_rows(path, "t.xlsx")]
    assert numbers == ([1, 2, 4, 5, 7, 8] if not write_only else [1, 2, 4, 5])


# --- Writing entries ---------------------------------------------------------------------------


def _entries(lender_a, staff, subject, contracts, now):
    return [
        Entry(
            member=lender_a,
            subject=subject,
            contract_no=contract,
            subject_role="borrower",
            category="overdue",
            loan_amount=Decimal("12345.60"),
            overdue_amount=None if i else Decimal("0.10"),
            delinquent_since=datetime.date(2024, 1, 2),
            notified_on=datetime.date(2024, 2, 3),
            notice_method="sms",
            remarks="备注 \"引号\" \\ 反斜杠",
            fingerprint="f" * 64,
            submitted_by=staff,
            submitted_at=now,
        )
        for i, contract in enumerate(contracts)
    ]


def _content(entry) -> dict:
    data = model_to_dict(entry)
    data.pop("id")
    data.pop("contract_no")
    history = entry.history.get()
    return {
        **data,
        "history": (history.history_type, history.history_user_id, history.history_date,
                    history.history_change_reason, history.loan_amount, history.remarks),
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the JSON insert is for PostgreSQL")
def test_the_postgresql_insert_writes_what_bulk_create_with_history_writes(
    lender_a, lender_staff, monkeypatch
):
    subject = Subject.objects.create(
        subject_type="person", id_type="RIC", id_number=ric(1), id_index="i" * 64,
        id_masked="x", name="张三", name_index="n" * 64, name_masked="张*",
    )
    now = timezone.now()
    bulk.entries_create_with_history(
        _entries(lender_a, lender_staff, subject, ["A-1", "A-2"], now), user=lender_staff, now=now
    )
    monkeypatch.setattr(connection, "vendor", "sqlite")  # the portable path
    bulk.entries_create_with_history(
        _entries(lender_a, lender_staff, subject, ["B-1", "B-2"], now), user=lender_staff, now=now
    )
    monkeypatch.undo()
    fast = [_content(e) for e in Entry.objects.filter(contract_no__startswith="A").order_by("contract_no")]
    portable = [
        _content(e) for e in Entry.objects.filter(contract_no__startswith="B").order_by("contract_no")
    ]
    for entry in fast + portable:
        entry.pop("created_at", None)
        entry.pop("updated_at", None)
    assert fast == portable
    assert fast[0]["history"][0:3] == ("+", lender_staff.pk, now)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the JSON insert is for PostgreSQL")
def test_the_postgresql_subject_insert_encrypts_and_skips_existing(lender_a):
    from registry.services import id_index_for

    rows = {}
    for n in (1, 2):
        parsed = parse_row(row(n, name=f"名{n}"), today=TODAY).data
        rows[id_index_for(parsed.id_type, parsed.id_number)] = parsed
    first = bulk._subjects_for(dict(list(rows.items())[:1]))
    both = bulk._subjects_for(rows)
    assert Subject.objects.count() == 2
    assert both[next(iter(rows))] == first[next(iter(rows))]
    with connection.cursor() as cursor:
        cursor.execute("SELECT id_number, name, phone FROM registry_subject")
        stored = [v for r in cursor.fetchall() for v in r]
    assert all(v.startswith("v1.") for v in stored)
    assert {s.name for s in Subject.objects.all()} == {"名1", "名2"}
    assert Subject.objects.get(pk=both[next(iter(rows))]).id_number == ric(1)
    assert Subject.objects.get(pk=both[next(iter(rows))]).phone == "13812345678"


def _show_jit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="JIT is a PostgreSQL setting")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_postgresql_key_lookup_turns_jit_off_for_its_transaction_only(lender_a, lender_staff):
    subject = Subject.objects.create(
        subject_type="person", id_type="RIC", id_number=ric(1), id_index="i" * 64,
        id_masked="x", name="张三", name_index="n" * 64, name_masked="张*",
    )
    now = timezone.now()
    Entry.objects.bulk_create(_entries(lender_a, lender_staff, subject, ["A-1"], now))
    before = _show_jit()
    # Outside a transaction (the dry run): one of its own, the session's setting unchanged after.
    subjects = {}
    found = bulk.entries_by_key(
        lender_a.pk, {("A-1", "i" * 64), ("A-2", "i" * 64), ("A-1", "u" * 64)}, subjects=subjects
    )
    assert list(found) == [("A-1", "i" * 64)]
    assert subjects == {"i" * 64: subject.pk}  # the unknown subject left out
    assert bulk._subjects_for({"i" * 64: None}, known=subjects) == {"i" * 64: subject.pk}
    assert not connection.in_atomic_block
    assert _show_jit() == before
    # Inside the load's chunk transaction: off until it ends, locked rows found as before.
    with transaction.atomic():
        locked = bulk.entries_by_key(lender_a.pk, {("A-1", "i" * 64)}, lock=True)
        assert locked[("A-1", "i" * 64)].contract_no == "A-1"
        assert _show_jit() == "off"
    assert _show_jit() == before


def test_staged_rows_round_trip(tmp_path, lender_a, lender_staff):
    """Every field of a parsed row comes back as it was written."""
    batch = ImportBatch.objects.create(
        member=lender_a, uploaded_by=lender_staff, file="x", filename="x.csv", sha256="0" * 64
    )
    parsed = [
        parse_row(row(1), today=TODAY).data,
        parse_row(
            row(2, category="法院判决未履行", court_name="北京市海淀区人民法院",
                case_number="(2022)京0108执77号", judgment_date="2022-06-01", settled_on="2023-01-02",
                overdue_amount="", phone="", remarks="a\nb"),
            today=TODAY,
        ).data,
    ]
    assert all(parsed)
    writer = bulk.StagedRowsWriter(batch)
    for i, p in enumerate(parsed * 700, start=1):  # more than a chunk
        writer.add(i, p, f"index{i}")
    writer.close()
    chunks = list(bulk.staged_rows(batch))
    read = [item for chunk in chunks for item in chunk]
    assert len(chunks) == 2
    assert [r for _o, r, _i in read] == parsed * 700
    assert [(o, i) for o, _r, i in read][:2] == [(1, "index1"), (2, "index2")]
    bulk.staged_delete(batch)
    assert bulk.staged_rows(batch) is None


def test_prefetching_keeps_order_and_raises_in_the_caller():
    assert list(bulk._prefetched(range(5), lambda n: n * n)) == [0, 1, 4, 9, 16]

    def broken(n):
        if n == 2:
            raise ValueError("bad chunk")
        return n

    seen = []
    with pytest.raises(ValueError, match="bad chunk"):
        for n in bulk._prefetched(range(5), broken):
            seen.append(n)
    assert seen == [0, 1]
    # Leaving early stops the worker.
    for n in bulk._prefetched(range(1000), lambda n: n):
        if n == 3:
            break
