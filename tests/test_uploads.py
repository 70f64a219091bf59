import hashlib
import io
import re
import struct
import zipfile
import zlib

import pytest
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from django.http import Http404, HttpResponse
from django.test import RequestFactory, override_settings
from django.utils import timezone, translation
from django.utils.functional import Promise
from openpyxl import Workbook

from blacklist_portal.uploads import (
    DOCUMENT_KINDS,
    SPREADSHEET_KINDS,
    CheckedUpload,
    UploadRejected,
    check_upload,
    private_file_response,
    store_private,
)

# Closing a FileResponse sends request_finished, which checks the database connection.
pytestmark = pytest.mark.django_db

MIB = 1024 * 1024
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# --- Sample files --------------------------------------------------------------------------------


def make_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, 8-bit RGB
    pixels = zlib.compress(b"\x00\xff\x00\x00")  # filter byte + one red pixel
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = make_png()
JPEG = (
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    b"\xff\xdb\x00\x43\x00" + bytes(range(1, 65)) + b"\xff\xd9"
)
PDF = (
    b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
    b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
    b"trailer << /Root 1 0 R >>\n"
    b"%%EOF\n"
)
CSV_UTF8 = "\ufeff身份证号,姓名,金额\n110101199003071234,张三,5000\n".encode()
CSV_GB18030 = "身份证号,姓名,金额\n110101199003071234,张三,5000\n".encode("gb18030")
HTML = b"  \n<!DOCTYPE html>\n<html><head><title>Login</title></head><body>x</body></html>\n"
GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00"
    b"!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
EXE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + b"\x00" * 48
    + b"This program cannot be run in DOS mode.\r\r\n$"
)


def make_xlsx() -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(["身份证号", "姓名", "金额"])
    ws.append(["110101199003071234", "张三", 5000])
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def make_zip(names) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


XLSX = make_xlsx()


def upload(name, data, content_type="application/octet-stream"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def rejected(f, **kwargs) -> UploadRejected:
    with pytest.raises(UploadRejected) as info:
        check_upload(f, **kwargs)
    return info.value


@pytest.fixture(autouse=True)
def english():
    # The portal's default language is zh-hans; messages are checked in their English source.
    with translation.override("en"):
        yield


@pytest.fixture
def private_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "base_url": None},
        },
    }
    assert default_storage.location == str(tmp_path)
    return tmp_path


# --- Accepted files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "allowed", "kind", "content_type"),
    [
        ("contract.pdf", PDF, DOCUMENT_KINDS, "pdf", "application/pdf"),
        ("photo.jpg", JPEG, DOCUMENT_KINDS, "jpeg", "image/jpeg"),
        ("scan.png", PNG, DOCUMENT_KINDS, "png", "image/png"),
        ("report.csv", CSV_UTF8, SPREADSHEET_KINDS, "csv", "text/csv"),
        ("report-gbk.csv", CSV_GB18030, SPREADSHEET_KINDS, "csv", "text/csv"),
        ("report.xlsx", XLSX, SPREADSHEET_KINDS, "xlsx", XLSX_TYPE),
    ],
    ids=["pdf", "jpeg", "png", "csv-utf8", "csv-gb18030", "xlsx"],
)
def test_each_kind_is_accepted_with_its_hash_and_size(name, data, allowed, kind, content_type):
    f = upload(name, data)
    checked = check_upload(f, allowed=allowed)
    assert checked == CheckedUpload(
        kind=kind,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        original_name=name,
    )
    # Rewound, so it can be stored straight away.
    assert f.tell() == 0
    assert f.read() == data


def test_kind_comes_from_content_not_name_or_client_content_type():
    checked = check_upload(upload("invoice.pdf", PNG, content_type="application/pdf"))
    assert (checked.kind, checked.content_type) == ("png", "image/png")


def test_jpeg_with_trailing_padding_is_accepted():
    assert check_upload(upload("a.jpg", JPEG + b"\x00\x00\r\n ")).kind == "jpeg"


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_csv_with_a_character_split_at_the_64k_sniffing_cut_is_accepted(encoding):
    data = ("x" * 65535 + "张三,5000\n" * 10).encode(encoding)
    with pytest.raises(UnicodeDecodeError):
        data[: 64 * 1024].decode(encoding)  # the cut really splits a character
    checked = check_upload(upload("big.csv", data), allowed=SPREADSHEET_KINDS)
    assert (checked.kind, checked.size) == ("csv", len(data))
    assert checked.sha256 == hashlib.sha256(data).hexdigest()


def test_large_file_on_disk_is_hashed_whole():
    data = b"%PDF-1.7\n" + bytes(range(256)) * 12000 + b"\n%%EOF\n"  # ~3 MB, many chunks
    f = TemporaryUploadedFile("big.pdf", "application/pdf", len(data), None)
    f.write(data)
    try:
        checked = check_upload(f)
    finally:
        f.close()
    assert checked.size == len(data)
    assert checked.sha256 == hashlib.sha256(data).hexdigest()


# --- Rejected files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "allowed", "message"),
    [
        (
            "evidence.pdf",
            HTML,
            DOCUMENT_KINDS,
            "Only PDF, JPEG or PNG files are accepted; this file is an HTML page.",
        ),
        (
            "photo.png",
            GIF,
            DOCUMENT_KINDS,
            "Only PDF, JPEG or PNG files are accepted; this file is a GIF image.",
        ),
        (
            "photo.png",
            EXE,
            DOCUMENT_KINDS,
            "Only PDF, JPEG or PNG files are accepted; this file is a Windows program.",
        ),
        (
            "report.xlsx",
            make_zip(["readme.txt", "data/rows.xml"]),
            SPREADSHEET_KINDS,
            "Only CSV or Excel (.xlsx) files are accepted; this file is a ZIP archive.",
        ),
        (
            "report.xlsx",
            make_zip(["[Content_Types].xml", "xl/workbook.xml", "xl/vbaProject.bin"]),
            SPREADSHEET_KINDS,
            "Only CSV or Excel (.xlsx) files are accepted; this file is an Excel workbook with macros.",
        ),
        (
            "report.xlsx",
            XLSX[: len(XLSX) // 2],
            SPREADSHEET_KINDS,
            "Only CSV or Excel (.xlsx) files are accepted; this file is a damaged ZIP archive.",
        ),
        (
            "report.csv",
            bytes(range(256)) * 4,
            SPREADSHEET_KINDS,
            "Only CSV or Excel (.xlsx) files are accepted; this file's content is not one of them.",
        ),
        (
            "report.csv",
            b"\xff\xfe\xfd\xfc" * 64,  # no NUL, but neither UTF-8 nor GB18030
            SPREADSHEET_KINDS,
            "Only CSV or Excel (.xlsx) files are accepted; this file's content is not one of them.",
        ),
        (
            "report.csv",
            HTML,
            SPREADSHEET_KINDS,
            "Only CSV or Excel (.xlsx) files are accepted; this file is an HTML page.",
        ),
        (
            "report.csv",
            b'<?xml version="1.0"?><rows><row>1</row></rows>',
            SPREADSHEET_KINDS,
            "Only CSV or Excel (.xlsx) files are accepted; this file is an XML or HTML document.",
        ),
    ],
    ids=[
        "html-as-pdf",
        "gif-as-png",
        "exe-as-png",
        "zip-as-xlsx",
        "xlsm-as-xlsx",
        "truncated-xlsx",
        "binary-as-csv",
        "undecodable-csv",
        "html-as-csv",
        "xml-as-csv",
    ],
)
def test_wrong_content_is_rejected_naming_what_is_expected(name, data, allowed, message):
    error = rejected(upload(name, data), allowed=allowed)
    assert error.code == "bad_type"
    assert str(error.message) == message
    assert str(error) == message


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (PDF.replace(b"%%EOF", b"%%EOX"), "a PDF document"),
        (PDF[:-1] + b"\n" * 2000, "a PDF document"),  # %%EOF not within the last 1024 bytes
        (JPEG[:-2], "a JPEG image"),
        (PNG[:8] + PNG[33:], "a PNG image"),  # IHDR is not the first chunk
    ],
    ids=["pdf-no-eof", "pdf-eof-too-early", "jpeg-no-eoi", "png-no-ihdr"],
)
def test_truncated_or_damaged_document_is_rejected(data, what):
    error = rejected(upload("doc.pdf", data))
    assert error.code == "bad_type"
    assert str(error.message) == (
        f"This file looks like {what} but is incomplete or damaged. "
        "Only complete PDF, JPEG or PNG files are accepted."
    )


def test_empty_file_is_rejected():
    error = rejected(upload("empty.pdf", b""))
    assert error.code == "empty"
    assert str(error.message) == "This file is empty."


def test_file_over_the_setting_is_rejected_with_the_limit_in_mb():
    with override_settings(PORTAL_UPLOAD_MAX_BYTES=MIB // 2):
        error = rejected(upload("big.pdf", PDF + b"\0" * (MIB // 2)))
        assert check_upload(upload("ok.pdf", PDF)).kind == "pdf"
    assert error.code == "too_large"
    assert str(error.message) == "This file is too large: the limit is 0.5 MB."


def test_default_limit_is_ten_mib(settings):
    assert settings.PORTAL_UPLOAD_MAX_BYTES == 10 * MIB
    error = rejected(upload("big.pdf", b"%PDF-" + b"\0" * (10 * MIB)))
    assert (error.code, str(error.message)) == (
        "too_large",
        "This file is too large: the limit is 10 MB.",
    )


def test_explicit_max_bytes_wins_and_size_is_measured_by_reading():
    f = upload("big.png", PNG + b"\0" * 2 * MIB)
    f.size = 10  # the client's figure is not trusted
    error = rejected(f, max_bytes=2 * MIB)
    assert (error.code, str(error.message)) == (
        "too_large",
        "This file is too large: the limit is 2 MB.",
    )
    exact = upload("exact.png", PNG)
    exact.size = 100 * MIB
    assert check_upload(exact, max_bytes=len(PNG)).size == len(PNG)


@pytest.mark.parametrize(
    ("data", "allowed", "message"),
    [
        (
            PDF,
            SPREADSHEET_KINDS,
            "Only CSV or Excel (.xlsx) files are accepted; this file is a PDF document.",
        ),
        (
            XLSX,
            DOCUMENT_KINDS,
            "Only PDF, JPEG or PNG files are accepted; this file is an Excel (.xlsx) workbook.",
        ),
        (
            CSV_UTF8,
            DOCUMENT_KINDS,
            "Only PDF, JPEG or PNG files are accepted; this file is a text (CSV) file.",
        ),
        (JPEG, frozenset({"png"}), "Only PNG files are accepted; this file is a JPEG image."),
        (
            PDF.replace(b"%%EOF", b""),
            frozenset({"csv"}),
            "Only CSV files are accepted; this file is a PDF document.",
        ),
    ],
    ids=[
        "pdf-for-spreadsheet",
        "xlsx-for-document",
        "csv-for-document",
        "jpeg-for-png",
        "pdf-for-csv",
    ],
)
def test_valid_file_of_a_kind_not_allowed_is_rejected(data, allowed, message):
    error = rejected(upload("file.bin", data), allowed=allowed)
    assert error.code == "bad_type"
    assert str(error.message) == message


@pytest.mark.parametrize("allowed", [frozenset(), frozenset({"pdf", "docx"})])
def test_allowed_must_be_known_kinds(allowed):
    with pytest.raises(ValueError, match="allowed"):
        check_upload(upload("a.pdf", PDF), allowed=allowed)


def test_message_is_lazy_and_translated_when_rendered():
    error = rejected(upload("evidence.pdf", HTML))
    assert isinstance(error.message, Promise)
    with translation.override("zh-hans"):
        rendered = str(error.message)
    # Django's own zh-hans catalogue supplies the list separator and "or".
    assert "PDF，JPEG 或 PNG" in rendered
    assert "PDF, JPEG or PNG" in str(error.message)


def test_file_is_rewound_after_a_rejection():
    f = upload("evidence.pdf", HTML)
    rejected(f)
    assert f.tell() == 0


# --- original_name -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_name", "expected"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("C:\\Users\\张三\\Desktop\\借款合同.pdf", "借款合同.pdf"),
        ("..\\..\\windows\\evil.pdf", "evil.pdf"),
        ("in\x00vo\x1bice\r\n.pdf", "invoice.pdf"),
        ("photo\u202egnp.exe", "photognp.exe"),
        ("  spaced.pdf  ", "spaced.pdf"),
        ("", "upload.pdf"),
    ],
)
def test_original_name_is_sanitised(client_name, expected):
    f = upload("placeholder.pdf", PDF)
    f._name = client_name  # bypass Django's own basename() so the module's sanitising is tested
    assert check_upload(f).original_name == expected


def test_original_name_from_a_path_keeps_only_the_basename():
    assert check_upload(upload("../../etc/passwd", PDF)).original_name == "passwd"


def test_long_original_name_is_cut_to_200_characters_keeping_the_extension():
    f = upload("a" * 250 + ".pdf", PDF)
    name = check_upload(f).original_name
    assert len(name) == 200
    assert name == "a" * 196 + ".pdf"


# --- store_private -------------------------------------------------------------------------------

STORED_NAME = re.compile(r"evidence/(\d{4})/(\d{2})/([0-9a-f]{32})\.(pdf|jpg|png|csv|xlsx)")


def test_store_private_saves_under_folder_with_a_random_name(private_storage):
    f = upload("王五-身份证.pdf", PDF)
    checked = check_upload(f)
    name = store_private(f, checked, folder="evidence")

    match = STORED_NAME.fullmatch(name)
    assert match, name
    today = timezone.localdate()
    assert match.group(1, 2, 4) == (f"{today:%Y}", f"{today:%m}", "pdf")
    assert "王五" not in name and "身份证" not in name
    assert (private_storage / name).read_bytes() == PDF
    with default_storage.open(name, "rb") as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == checked.sha256

    again = upload("王五-身份证.pdf", PDF)
    other = store_private(again, check_upload(again), folder="evidence")
    assert other != name


@pytest.mark.parametrize(
    ("data", "ext"), [(JPEG, "jpg"), (PNG, "png"), (XLSX, "xlsx")], ids=["jpeg", "png", "xlsx"]
)
def test_store_private_uses_the_checked_kind_for_the_extension(private_storage, data, ext):
    f = upload("evil.html", data)
    checked = check_upload(f, allowed=DOCUMENT_KINDS | SPREADSHEET_KINDS)
    name = store_private(f, checked, folder="evidence")
    assert name.endswith(f".{ext}") and "evil" not in name
    with default_storage.open(name, "rb") as stored_file:
        assert stored_file.read() == data


def test_store_private_stores_a_temporary_upload(private_storage):
    data = b"%PDF-1.7\n" + bytes(range(256)) * 12000 + b"\n%%EOF\n"
    f = TemporaryUploadedFile("big.pdf", "application/pdf", len(data), None)
    f.write(data)
    try:
        name = store_private(f, check_upload(f), folder="disputes/attachments")
    finally:
        f.close()  # as Django does at the end of a request; the temporary file was moved
    assert name.startswith("disputes/attachments/")
    assert (private_storage / name).read_bytes() == data


@pytest.mark.parametrize("folder", ["", "../etc", "/abs", "a/../b", "a\\b", "a//b", "with space"])
def test_store_private_refuses_an_unsafe_folder(private_storage, folder):
    f = upload("a.pdf", PDF)
    with pytest.raises(ValueError, match="folder"):
        store_private(f, check_upload(f), folder=folder)
    assert list(private_storage.iterdir()) == []


def test_store_private_refuses_content_that_does_not_match_the_check(private_storage):
    checked = check_upload(upload("a.pdf", PDF))
    other = upload("b.pdf", PDF.replace(b"Catalog", b"Catalox"))
    with pytest.raises(ValueError, match="does not match"):
        store_private(other, checked, folder="evidence")
    assert [p for p in private_storage.rglob("*") if p.is_file()] == []


# --- private_file_response ------------------------------------------------------------------------


def stored(data=PDF, allowed=DOCUMENT_KINDS):
    f = upload("x", data)
    return store_private(f, check_upload(f, allowed=allowed), folder="evidence")


def test_private_file_response_is_a_locked_down_attachment(private_storage):
    response = private_file_response(stored(), kind="pdf", download_name="evidence-17.pdf")
    try:
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert response["Content-Disposition"] == 'attachment; filename="evidence-17.pdf"'
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert response["Cache-Control"] == "private, no-store"
        assert response["Content-Length"] == str(len(PDF))
        assert b"".join(response.streaming_content) == PDF
    finally:
        response.close()


@pytest.mark.parametrize(
    ("data", "kind", "content_type"),
    [(JPEG, "jpeg", "image/jpeg"), (CSV_UTF8, "csv", "text/csv"), (XLSX, "xlsx", XLSX_TYPE)],
    ids=["jpeg", "csv", "xlsx"],
)
def test_private_file_response_content_type_follows_the_kind(
    private_storage, data, kind, content_type
):
    name = stored(data, allowed=DOCUMENT_KINDS | SPREADSHEET_KINDS)
    response = private_file_response(name, kind=kind, download_name="file")
    try:
        assert response["Content-Type"] == content_type
        assert response["Content-Disposition"].startswith("attachment;")
    finally:
        response.close()


def test_private_file_response_sanitises_the_download_name(private_storage):
    response = private_file_response(stored(), kind="pdf", download_name="../张三\r\n借款合同.html")
    try:
        disposition = response["Content-Disposition"]
        # Non-ASCII names are RFC 5987-encoded; the wrong extension gets the kind's one added.
        assert disposition == (
            "attachment; filename*=utf-8''%E5%BC%A0%E4%B8%89%E5%80%9F%E6%AC%BE%E5%90%88%E5%90%8C.html.pdf"
        )
        assert "\n" not in disposition and ".." not in disposition
    finally:
        response.close()


def test_private_file_response_keeps_a_matching_extension(private_storage):
    response = private_file_response(stored(JPEG), kind="jpeg", download_name="Photo.JPEG")
    try:
        assert response["Content-Disposition"] == 'attachment; filename="Photo.JPEG"'
    finally:
        response.close()


@pytest.mark.parametrize("name", ["evidence/2024/01/" + "0" * 32 + ".pdf", "", "evidence"])
def test_private_file_response_404s_for_a_missing_file(private_storage, name):
    (private_storage / "evidence").mkdir(exist_ok=True)
    with pytest.raises(Http404):
        private_file_response(name, kind="pdf", download_name="x.pdf")


def test_private_file_response_refuses_a_path_outside_the_storage(private_storage):
    (private_storage.parent / "outside.pdf").write_bytes(PDF)
    with pytest.raises(SuspiciousFileOperation):
        private_file_response("../outside.pdf", kind="pdf", download_name="x.pdf")


def test_private_file_response_refuses_an_unknown_kind(private_storage):
    with pytest.raises(ValueError, match="kind"):
        private_file_response(stored(), kind="html", download_name="x.html")


def test_site_csp_middleware_keeps_the_sandbox_policy(private_storage):
    from csp.middleware import CSPMiddleware

    name = stored()
    request = RequestFactory().get("/files/1/")
    response = CSPMiddleware(
        lambda request: private_file_response(name, kind="pdf", download_name="a.pdf")
    )(request)
    try:
        assert response["Content-Security-Policy"] == "default-src 'none'; sandbox"
    finally:
        response.close()
    # ...while an ordinary page still gets the site policy.
    page = CSPMiddleware(lambda request: HttpResponse("ok"))(request)
    assert "default-src 'self'" in page["Content-Security-Policy"]
