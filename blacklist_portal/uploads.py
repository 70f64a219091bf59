"""Checking, storing and serving uploaded files (evidence, signed consents, dispute attachments,
bulk report files).

Every upload goes through the same three steps:

1. `check_upload` reads the whole file once: it measures the size by reading (never trusting the
   client's figure), hashes it (SHA-256), and decides the kind from the content alone. The client's
   file name and content type are ignored except to keep a sanitised copy of the name for display.
2. `store_private` saves it in the private default storage under a random name
   (`folder/YYYY/MM/<uuid>.<ext>`); the client's name never reaches the file system.
3. `private_file_response` serves it back as a download with headers that stop the browser from
   sniffing, rendering or caching it. Call it only from a view that has already checked the
   user's permission for the object the file belongs to (and written the audit entry).

Messages in `UploadRejected` are lazy: they are translated when rendered, in the language of
whoever reads them.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
import uuid
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.text import get_text_list
from django.utils.translation import gettext_lazy as _

__all__ = [
    "DOCUMENT_KINDS",
    "SPREADSHEET_KINDS",
    "CheckedUpload",
    "UploadRejected",
    "check_upload",
    "private_file_response",
    "store_private",
]

DOCUMENT_KINDS = frozenset({"pdf", "jpeg", "png"})
SPREADSHEET_KINDS = frozenset({"csv", "xlsx"})

CONTENT_TYPES = {
    "pdf": "application/pdf",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
# The extension used for stored files, then any other extension accepted in a download name.
EXTENSIONS = {
    "pdf": ("pdf",),
    "jpeg": ("jpg", "jpeg"),
    "png": ("png",),
    "csv": ("csv",),
    "xlsx": ("xlsx",),
}
_KIND_ORDER = ("pdf", "jpeg", "png", "csv", "xlsx")
_KIND_NAMES = {
    "pdf": _("PDF"),
    "jpeg": _("JPEG"),
    "png": _("PNG"),
    "csv": _("CSV"),
    "xlsx": _("Excel (.xlsx)"),
}
# What a file was recognised as, for the rejection message.
_WHAT = {
    "pdf": _("a PDF document"),
    "jpeg": _("a JPEG image"),
    "png": _("a PNG image"),
    "csv": _("a text (CSV) file"),
    "xlsx": _("an Excel (.xlsx) workbook"),
    "xlsm": _("an Excel workbook with macros"),
    "html": _("an HTML page"),
    "markup": _("an XML or HTML document"),
    "zip": _("a ZIP archive"),
    "badzip": _("a damaged ZIP archive"),
    "exe": _("a Windows program"),
    "gif": _("a GIF image"),
}

_MIB = 1024 * 1024
_HEAD_BYTES = 64 * 1024  # sniffed at the start (CSV text check, HTML check)
_TAIL_BYTES = 1024  # sniffed at the end (PDF %%EOF, JPEG end marker)
_MAX_NAME_CHARS = 200

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IHDR = b"\x00\x00\x00\x0dIHDR"  # first chunk: length 13, type IHDR
_JPEG_PADDING = b"\x00 \t\r\n"
_HTML_START = re.compile(r"<(?:!doctype\s+html|html|head|body|script|meta|title|iframe|!--)\b")
# Bidirectional-text controls: "photo\u202egnp.exe" would display as "photoexe.png".
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
_FOLDER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:/[A-Za-z0-9][A-Za-z0-9_-]*)*")


class UploadRejected(Exception):
    """The upload is refused. `message` is lazily translated user-facing text, `code` one of
    "too_large", "empty", "bad_type"."""

    def __init__(self, message, code: str):
        super().__init__(message, code)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return str(self.message)


@dataclass(frozen=True)
class CheckedUpload:
    kind: str  # "pdf" | "jpeg" | "png" | "csv" | "xlsx"
    content_type: str
    size: int
    sha256: str  # hex digest of the whole content
    original_name: str  # sanitised basename, for display only; never used in a storage path


# --- Lazy messages -----------------------------------------------------------------------------


def _render(template, params: dict) -> str:
    return str(template) % {key: str(value) for key, value in params.items()}


def _kinds_text(kinds: frozenset[str]) -> str:
    # "PDF, JPEG or PNG" / "PDF、JPEG 或 PNG": Django translates the separator and "or".
    return get_text_list([str(_KIND_NAMES[k]) for k in _KIND_ORDER if k in kinds])


_lazy_render = lazy(_render, str)
_lazy_kinds_text = lazy(_kinds_text, str)


def _format_mb(max_bytes: int) -> str:
    value = max_bytes / _MIB
    text = f"{value:.1f}" if value >= 0.1 else f"{value:.6f}"
    return text.rstrip("0").rstrip(".") or "0"


def _too_large(max_bytes: int) -> UploadRejected:
    message = _lazy_render(
        _("This file is too large: the limit is %(limit)s MB."), {"limit": _format_mb(max_bytes)}
    )
    return UploadRejected(message, "too_large")


def _bad_type(allowed: frozenset[str], label: str | None, damaged: bool) -> UploadRejected:
    kinds = _lazy_kinds_text(allowed)
    if label is None:
        template = _("Only %(kinds)s files are accepted; this file's content is not one of them.")
        params = {"kinds": kinds}
    elif damaged:
        template = _(
            "This file looks like %(what)s but is incomplete or damaged. "
            "Only complete %(kinds)s files are accepted."
        )
        params = {"what": _WHAT[label], "kinds": kinds}
    else:
        template = _("Only %(kinds)s files are accepted; this file is %(what)s.")
        params = {"what": _WHAT[label], "kinds": kinds}
    return UploadRejected(_lazy_render(template, params), "bad_type")


# --- Checking ----------------------------------------------------------------------------------


def sanitise_name(name: str | None, *, fallback: str = "upload") -> str:
    """The last path component of `name` without control or bidi characters, at most 200
    characters (keeping the extension), or `fallback` if nothing is left."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/")
    name = name.rsplit("/", 1)[-1]
    name = "".join(
        ch
        for ch in name
        if unicodedata.category(ch) not in ("Cc", "Cs") and ch not in _BIDI_CONTROLS
    ).strip()
    if name in ("", ".", ".."):
        return fallback
    if len(name) > _MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and len(ext) <= 16:
            name = stem[: _MAX_NAME_CHARS - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:_MAX_NAME_CHARS]
    return name


def _text_head(head: bytes, complete: bool) -> str | None:
    """The decoded start of a text file, or None if it is not UTF-8 / GB18030 text."""
    if b"\x00" in head:
        return None
    for encoding in ("utf-8-sig", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            # final=False when the head is a cut: a character split at the cut is not an error.
            return decoder.decode(head, final=complete)
        except UnicodeDecodeError:
            continue
    return None


def _zip_label(f) -> str:
    try:
        f.seek(0)
        with zipfile.ZipFile(f) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        return "badzip"
    finally:
        f.seek(0)
    if "[Content_Types].xml" in names and "xl/workbook.xml" in names:
        return "xlsm" if "xl/vbaProject.bin" in names else "xlsx"
    return "zip"


def _sniff(f, head: bytes, tail: bytes, complete: bool) -> tuple[str | None, bool]:
    """(label, damaged): label is one of our kinds or a key of _WHAT, None when unrecognised."""
    if head.startswith(b"%PDF-"):
        return "pdf", b"%%EOF" not in tail
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg", not tail.rstrip(_JPEG_PADDING).endswith(b"\xff\xd9")
    if head.startswith(_PNG_SIGNATURE):
        # Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 CRC).
        return "png", not (head[8:16] == _PNG_IHDR and len(head) >= 33)
    if head.startswith(b"PK\x03\x04"):
        return _zip_label(f), False
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif", False
    text = _text_head(head, complete)
    if text is not None:
        start = text.lstrip("\ufeff \t\r\n\f\v\u3000")
        if start.startswith("<"):
            return ("html" if _HTML_START.match(start[:256].lower()) else "markup"), False
        return "csv", False
    if head.startswith(b"MZ"):
        return "exe", False
    return None, False


def check_upload(
    f,
    *,
    allowed: frozenset[str] = DOCUMENT_KINDS,
    max_bytes: int | None = None,
) -> CheckedUpload:
    """Check an uploaded file by its content; raise UploadRejected if it is refused.

    The file is read once through `f.chunks()` (size, SHA-256, head and tail for sniffing) and
    rewound before returning so it can be stored.
    """
    allowed = frozenset(allowed)
    if not allowed or not allowed <= CONTENT_TYPES.keys():
        raise ValueError(f"allowed must be a non-empty subset of {sorted(CONTENT_TYPES)}")
    if max_bytes is None:
        max_bytes = settings.PORTAL_UPLOAD_MAX_BYTES

    digest = hashlib.sha256()
    size = 0
    head = bytearray()
    tail = b""
    try:
        for chunk in f.chunks():
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(max_bytes)
            digest.update(chunk)
            if len(head) < _HEAD_BYTES:
                head += chunk[: _HEAD_BYTES - len(head)]
            tail = (tail + chunk[-_TAIL_BYTES:])[-_TAIL_BYTES:]
        if size == 0:
            raise UploadRejected(_("This file is empty."), "empty")

        label, damaged = _sniff(f, bytes(head), tail, complete=size <= len(head))
        if label not in allowed:
            raise _bad_type(allowed, label, damaged=False)
        if damaged:
            raise _bad_type(allowed, label, damaged=True)
    finally:
        f.seek(0)

    return CheckedUpload(
        kind=label,
        content_type=CONTENT_TYPES[label],
        size=size,
        sha256=digest.hexdigest(),
        original_name=sanitise_name(f.name, fallback=f"upload.{EXTENSIONS[label][0]}"),
    )


# --- Storing and serving -----------------------------------------------------------------------


def store_private(f, checked: CheckedUpload, *, folder: str) -> str:
    """Save a checked upload in the private default storage and return its storage name,
    `folder/YYYY/MM/<uuid4 hex>.<ext>` (local date). The stored bytes are re-hashed and must
    match `checked`, so the recorded sha256 always describes what is on disk."""
    if not _FOLDER_RE.fullmatch(folder):
        raise ValueError(f"invalid storage folder: {folder!r}")
    today = timezone.localdate()
    name = f"{folder}/{today:%Y}/{today:%m}/{uuid.uuid4().hex}.{EXTENSIONS[checked.kind][0]}"
    f.seek(0)
    saved = default_storage.save(name, f)

    digest = hashlib.sha256()
    size = 0
    with default_storage.open(saved, "rb") as stored:
        for chunk in stored.chunks():
            size += len(chunk)
            digest.update(chunk)
    if size != checked.size or digest.hexdigest() != checked.sha256:
        default_storage.delete(saved)
        raise ValueError("the stored file does not match the checked upload")
    return saved


def private_file_response(name: str, *, kind: str, download_name: str) -> FileResponse:
    """A download of a privately stored file. The caller must have checked permissions.

    The download name is sanitised and given the kind's extension if it lacks it."""
    if kind not in CONTENT_TYPES:
        raise ValueError(f"unknown kind: {kind!r}")
    extensions = EXTENSIONS[kind]
    download_name = sanitise_name(download_name, fallback=f"download.{extensions[0]}")
    stem, dot, ext = download_name.rpartition(".")
    if not (dot and stem and ext.lower() in extensions):
        # Saved as "x.html", a PDF could be opened by the browser from disk as a web page.
        download_name = sanitise_name(f"{download_name}.{extensions[0]}")
    if not name:
        raise Http404
    try:
        handle = default_storage.open(name, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise Http404 from None

    response = FileResponse(
        handle, as_attachment=True, filename=download_name, content_type=CONTENT_TYPES[kind]
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
