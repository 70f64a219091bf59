"""Bulk report files (import-format.md): reading, header matching, row parsing, the error
report and the templates. No database here: the import service calls ``validate_file`` and
decides what to store.
"""

import datetime
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from openpyxl.utils import get_column_letter

from .columns import (
    COLUMNS,
    COLUMNS_BY_KEY,
    Column,
    HeaderError,
    HeaderMap,
    column_label,
    map_header,
)
from .reader import FileFormatError, iter_rows
from .report import write_error_report
from .rows import (
    FieldError,
    ParsedRow,
    RowResult,
    parse_amount,
    parse_date,
    parse_row,
    row_fingerprint,
)
from .template import template_csv_bytes, template_xlsx_bytes

__all__ = [
    "COLUMNS",
    "COLUMNS_BY_KEY",
    "MAX_DATA_ROWS",
    "Column",
    "FieldError",
    "FileFormatError",
    "HeaderError",
    "HeaderMap",
    "ParsedRow",
    "RowOutcome",
    "RowResult",
    "column_label",
    "iter_rows",
    "map_header",
    "parse_amount",
    "parse_date",
    "parse_row",
    "row_fingerprint",
    "template_csv_bytes",
    "template_xlsx_bytes",
    "validate_file",
    "write_error_report",
]

MAX_DATA_ROWS = 1_000_000  # import-format.md: "A file may hold up to 1,000,000 rows."


@dataclass(frozen=True)
class RowOutcome:
    row_number: int  # 1-based, as the user sees it in Excel (the header is usually row 1)
    data: ParsedRow | None  # None when the row has errors
    errors: list[tuple[str, object]] = field(default_factory=list)  # (column key, message)

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_file(
    path: Path, filename: str, *, today: datetime.date, max_rows: int = MAX_DATA_ROWS
) -> Iterator[RowOutcome]:
    """Check the file and its header now, then stream one outcome per non-empty data row.

    Raises ``FileFormatError`` (wrong kind of file, encoding) or ``HeaderError`` before
    returning. While iterating, ``FileFormatError`` is raised if the file turns out damaged
    further on or holds more than ``max_rows`` data rows. Column keys in errors are those of
    ``COLUMNS``, or a column letter for a value under no header.
    """
    rows = iter_rows(Path(path), filename)
    try:
        first = next(rows, None)
        if first is None:
            raise HeaderError([_("The file is empty: it has no header row.")])
        header = map_header(first[1])
    except BaseException:
        rows.close()
        raise
    return _outcomes(rows, header, today, max_rows)


def _outcomes(rows, header: HeaderMap, today, max_rows) -> Iterator[RowOutcome]:
    with closing(rows):
        for count, (number, cells) in enumerate(rows, start=1):
            if count > max_rows:
                raise FileFormatError(
                    format_lazy(
                        _("The file holds more than {limit} rows; split it into several files."),
                        limit=f"{max_rows:,}",
                    )
                )
            result = parse_row(header.values(cells), today=today)
            stray = [
                (
                    get_column_letter(pos + 1),
                    format_lazy(
                        _(
                            "Column {letter} has a value but no header; add the header or "
                            "remove the value."
                        ),
                        letter=get_column_letter(pos + 1),
                    ),
                )
                for pos in header.stray_cells(cells)
            ]
            errors = result.errors + stray
            yield RowOutcome(number, None if errors else result.data, errors)
