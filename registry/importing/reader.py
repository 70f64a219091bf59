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
from openpyxl.reader.excel import ExcelReader
from openpyxl.utils.cell import column_index_from_string
from openpyxl.worksheet._read_only import ReadOnlyWorksheet
from openpyxl.worksheet._reader import FORMULA_TAG as parser_formula_tag
from openpyxl.worksheet._reader import INLINE_STRING, ROW_TAG, VALUE_TAG, WorkSheetParser
from openpyxl.xml.constants import SHEET_MAIN_NS
from openpyxl.xml.functions import iterparse

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
        workbook = _load_workbook(path)
    except Exception as exc:  # openpyxl raises many kinds on a damaged workbook
        raise FileFormatError(not_xlsx) from exc
    try:
        if not workbook.worksheets:
            raise FileFormatError(_("The workbook has no worksheet."))
        sheet = workbook.worksheets[0]
        # The <dimension> a workbook declares can be wrong (some tools write A1); trusting it
        # would silently drop rows.
        sheet.reset_dimensions()
        if hasattr(sheet, "_get_source") and hasattr(sheet, "_shared_strings"):
            rows = _sheet_values(sheet)
        else:  # pragma: no cover  (another openpyxl: its own, slower, reader)
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


class _UnsizedSheet(ReadOnlyWorksheet):
    def _get_size(self):
        # openpyxl reads the sheet's <dimension> here, parsing the whole sheet when there is
        # none; the reader resets the dimensions anyway.
        pass


class _WorkbookReader(ExcelReader):
    """``load_workbook(read_only=True)`` with worksheets that are not sized on opening."""

    def read_worksheets(self):
        for sheet, rel in self.parser.find_sheets():
            if rel.target not in self.valid_files:
                continue
            if "chartsheet" in rel.Type:
                self.read_chartsheet(sheet, rel)
                continue
            ws = _UnsizedSheet(self.wb, sheet.name, rel.target, self.shared_strings)
            ws.sheet_state = sheet.state
            self.wb._sheets.append(ws)


def _load_workbook(path: Path):
    reader = _WorkbookReader(path, read_only=True, data_only=True)
    reader.read()
    return reader.wb


_TEXT_TAG = f"{{{SHEET_MAIN_NS}}}t"


def _inline_text(element) -> str:
    from openpyxl.cell.text import Text

    return Text.from_tree(element).content


def _sheet_values(sheet) -> Iterator[tuple]:
    """What ``sheet.iter_rows(values_only=True)`` yields for a read-only sheet whose dimensions
    were reset, about five times faster: the common cells (shared and inline-free strings,
    numbers outside date formats, booleans) are read here; any other cell goes through
    openpyxl's own cell parser, so values are the same."""
    workbook = sheet.parent
    shared = sheet._shared_strings
    date_styles = workbook._date_formats
    with sheet._get_source() as src:
        parser = WorkSheetParser(
            src,
            shared,
            data_only=workbook.data_only,
            epoch=workbook.epoch,
            date_formats=date_styles,
            timedelta_formats=workbook._timedelta_formats,
        )
        data_only = workbook.data_only
        columns: dict[str, int] = {}
        counter = 1  # the next row number to yield, as openpyxl counts
        row_counter = 0
        for _event, element in iterparse(src):
            if element.tag != ROW_TAG:
                continue
            r = element.get("r")
            if r is not None:
                try:
                    row_counter = int(r)
                except ValueError:
                    value = float(r)
                    if not value.is_integer():
                        raise ValueError(f"{r} is not a valid row number") from None
                    row_counter = int(value)
            else:
                row_counter += 1
            cells = []  # (column, value)
            column = 0
            for cell in element:
                coordinate = cell.get("r")
                if coordinate:
                    letters = columns.get(coordinate)
                    if letters is None:
                        letters = column_index_from_string(coordinate.rstrip("0123456789"))
                        if len(columns) < 100_000:
                            columns[coordinate] = letters
                    column = letters
                else:
                    column += 1
                kind = cell.get("t", "n")
                style = cell.get("s", 0)
                if style:
                    style = int(style)
                if (data_only or cell.find(parser_formula_tag) is None) and (
                    kind == "s" or kind == "str" or kind == "b" or (kind == "n" and style not in date_styles)
                ):
                    value = cell.findtext(VALUE_TAG, None) or None
                    if value is not None:
                        if kind == "s":
                            value = shared[int(value)]
                        elif kind == "n":
                            value = (
                                float(value)
                                if "." in value or "E" in value or "e" in value
                                else int(value)
                            )
                        elif kind == "b":
                            value = bool(int(value))
                elif kind == "inlineStr" and (data_only or cell.find(parser_formula_tag) is None):
                    # <is><t>text</t></is>; rich text runs (<r>) go to openpyxl below.
                    inline = cell.find(INLINE_STRING)
                    if inline is None:
                        value = None
                    elif len(inline) == 1 and inline[0].tag == _TEXT_TAG:
                        value = inline[0].text or ""
                    else:
                        value = _inline_text(inline)
                else:
                    parser.row_counter = row_counter
                    parser.col_counter = column - 1 if not coordinate else 0
                    value = parser.parse_cell(cell)["value"]
                cells.append((column, value))
            element.clear()
            # Rows missing from the file are empty rows; a row numbered before one already read
            # is skipped (as openpyxl does).
            while counter < row_counter:
                counter += 1
                yield []
            if counter <= row_counter:
                counter += 1
                if not cells:
                    yield ()
                    continue
                width = cells[-1][0]
                values = [None] * width
                for column, value in cells:
                    if 1 <= column <= width:
                        values[column - 1] = value
                yield tuple(values)
