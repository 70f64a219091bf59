"""Reading a bulk report file (import-format.md, "Files") row by row.

Everything here streams: a file of a million rows is read with flat memory. The file's kind is
decided by its content, not only by its name, so a renamed binary is refused with a clear message
instead of surfacing as a parser crash.
"""

import codecs
import csv
import zipfile
from collections.abc import Iterator
from pathlib import Path

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from openpyxl import load_workbook

CHUNK_SIZE = 1 << 20  # bytes read at a time when detecting a CSV file's encoding
SNIFF_SIZE = 64 * 1024  # the head of a CSV file that must not contain NUL bytes

_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls and password-protected .xlsx
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class FileFormatError(Exception):
    """The file as a whole cannot be read. ``message`` is shown to the user (lazy translated)."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return str(self.message)


def iter_rows(path: Path, filename: str) -> Iterator[tuple[int, list]]:
    """Yield ``(row number, cell values)`` for every non-empty row of the file at ``path``.

    ``filename`` is the name the user gave the file; only its extension is used. Row numbers are
    1-based and count empty rows too, so they match what the user sees in Excel. CSV values are
    strings; XLSX values are native (str, int, float, datetime, ...).

    The file's kind and (for CSV) encoding are checked before this returns, so a wrong or
    disguised file raises ``FileFormatError`` right away; a defect deeper in the file raises it
    during iteration.
    """
    path = Path(path)
    suffix = Path(filename or "").suffix.lower()
    if suffix == ".xlsx":
        _check_xlsx(path)
        return _xlsx_rows(path)
    if suffix == ".csv":
        _check_csv_head(path)
        return _csv_rows(path, detect_csv_encoding(path))
    raise FileFormatError(_("Only .csv and .xlsx files are accepted."))


def is_empty_row(values) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in values)


# --- CSV ---------------------------------------------------------------------------------------


def _check_csv_head(path: Path) -> None:
    with path.open("rb") as f:
        head = f.read(SNIFF_SIZE)
    if head.startswith(_ZIP_MAGIC) or head.startswith(_OLE_MAGIC):
        raise FileFormatError(
            _("The file is an Excel workbook, not a CSV file; upload it with the .xlsx extension.")
        )
    if head.startswith(_UTF16_BOMS):
        raise FileFormatError(
            _("The file is saved as UTF-16 text; save it as “CSV UTF-8” or as CSV (GBK).")
        )
    if b"\x00" in head:
        raise FileFormatError(_("The file is not a CSV text file."))


def detect_csv_encoding(path: Path) -> str:
    """``utf-8-sig`` for a BOM, else ``utf-8`` if the whole file is valid UTF-8, else
    ``gb18030`` (a superset of GBK, which Chinese Excel uses for CSV) if it decodes as that.

    Reads the file in chunks through incremental decoders, so memory stays flat. The same
    pass refuses a NUL byte anywhere: it is never text, and the database cannot store it.
    """
    with path.open("rb") as f:
        has_bom = f.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
    is_utf8 = _decodes_as(path, "utf-8", refuse_nul=True)
    if is_utf8:
        return "utf-8-sig" if has_bom else "utf-8"
    if not has_bom and _decodes_as(path, "gb18030"):
        return "gb18030"
    raise FileFormatError(
        _("The file's text encoding could not be recognised; save it as UTF-8 or GBK.")
    )


def _decodes_as(path: Path, encoding: str, *, refuse_nul: bool = False) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    valid = True
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            if refuse_nul and b"\x00" in chunk:
                raise FileFormatError(_("The file is not a CSV text file."))
            if valid:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    if not refuse_nul:
                        return False
                    valid = False  # read on: a NUL further on is the clearer message
    if valid:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            valid = False
    return valid


def _csv_rows(path: Path, encoding: str) -> Iterator[tuple[int, list]]:
    # One CSV record is one spreadsheet row, even when a quoted cell spans several lines.
    with path.open(encoding=encoding, newline="") as f:
        reader = csv.reader(f)
        number = 0
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:  # the file changed since its encoding was checked
                raise FileFormatError(
                    _("The file's text encoding could not be recognised; save it as UTF-8 or GBK.")
                ) from exc
            except csv.Error as exc:
                raise FileFormatError(
                    format_lazy(
                        _("Row {row} of the file could not be read as CSV: {error}"),
                        row=number + 1,
                        error=str(exc),
                    )
                ) from exc
            number += 1
            if not is_empty_row(values):
                yield number, values


# --- XLSX --------------------------------------------------------------------------------------


def _check_xlsx(path: Path) -> None:
    with path.open("rb") as f:
        magic = f.read(len(_OLE_MAGIC))
    if magic.startswith(_OLE_MAGIC):
        raise FileFormatError(
            _(
                "The file is an old .xls workbook or is password-protected; "
                "save it as an .xlsx workbook without a password."
            )
        )
    not_xlsx = _("The file is not a valid Excel .xlsx file.")
    if not magic.startswith(_ZIP_MAGIC):
        raise FileFormatError(not_xlsx)
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileFormatError(not_xlsx) from exc
    if "xl/workbook.xml" not in names:
        raise FileFormatError(not_xlsx)


def _xlsx_rows(path: Path) -> Iterator[tuple[int, list]]:
    not_xlsx = _("The file is not a valid Excel .xlsx file.")
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a damaged workbook
        raise FileFormatError(not_xlsx) from exc
    try:
        if not workbook.worksheets:
            raise FileFormatError(_("The workbook has no worksheet."))
        sheet = workbook.worksheets[0]
        # The <dimension> a workbook declares can be wrong (some tools write A1); trusting it
        # would silently drop rows.
        sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        number = 0
        while True:
            try:
                values = next(rows)
            except StopIteration:
                return
            except Exception as exc:  # a damaged sheet part, found while streaming it
                raise FileFormatError(not_xlsx) from exc
            # openpyxl fills gaps between stored rows with empty rows, so counting gives the
            # row number the user sees.
            number += 1
            if not is_empty_row(values):
                yield number, list(values)
    finally:
        workbook.close()
