"""The downloadable error report of a dry run: one line per problem (row, column, message)."""

import csv
from collections.abc import Iterable
from typing import TextIO

from .columns import column_label

REPORT_HEADER = ("行号 row", "列 column", "错误 message")

# A cell starting with one of these is a formula to Excel; a message quoting a user's value
# must never run as one (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_error_report(errors: Iterable[tuple[int, str, str]], out: TextIO) -> None:
    """Write ``(row number, column key, message)`` triples as CSV to ``out``.

    ``out`` is a text stream opened with ``newline=""`` that encodes as UTF-8: the report
    starts with a BOM so that Excel (which assumes GBK otherwise on Chinese Windows) opens it
    correctly. Messages are rendered in the active language; a column key is shown as its
    Chinese header and alias (``证件号码 (id_number)``); a row number of 0 (a problem with the
    whole file) is left blank. Streams: nothing is held in memory.
    """
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(REPORT_HEADER)
    for row_number, key, message in errors:
        writer.writerow(
            [
                row_number or "",
                _safe(column_label(key or "")),
                _safe(str(message)),
            ]
        )


def spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet will show as text, never run as a formula (CSV injection)."""
    return "'" + text if text.startswith(_FORMULA_START) else text


_safe = spreadsheet_safe
