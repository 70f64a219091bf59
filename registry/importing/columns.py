"""The columns of a bulk report file and the matching of a header row (import-format.md).

The Chinese headers and English aliases are published to members: never rename one.
"""

import unicodedata
from dataclasses import dataclass

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from openpyxl.utils import get_column_letter

from ..choices import NEEDS_COURT_FIELDS, NEEDS_DELINQUENT_SINCE, NEEDS_OVERDUE_AMOUNT


@dataclass(frozen=True)
class Column:
    key: str  # the English alias; also the key of a parsed row's values
    header: str  # the Chinese header
    required: bool  # required in every row; some others are required per category
    required_for: frozenset = frozenset()  # categories that require this column

    @property
    def label(self) -> str:
        """How messages and the error report name the column: ``证件号码 (id_number)``."""
        return f"{self.header} ({self.key})"


COLUMNS: tuple[Column, ...] = (
    Column("subject_type", "主体类型", True),
    Column("id_type", "证件类型", True),
    Column("id_number", "证件号码", True),
    Column("name", "姓名/名称", True),
    Column("phone", "手机号", False),
    Column("role", "主体角色", True),
    Column("contract_no", "合同编号", True),
    Column("category", "失信类别", True),
    Column("loan_amount", "借款金额", True),
    Column("overdue_amount", "逾期金额", False, NEEDS_OVERDUE_AMOUNT),
    Column("delinquent_since", "逾期开始日期", False, NEEDS_DELINQUENT_SINCE),
    Column("court_name", "法院名称", False, NEEDS_COURT_FIELDS),
    Column("case_number", "案号", False, NEEDS_COURT_FIELDS),
    Column("judgment_date", "判决日期", False, NEEDS_COURT_FIELDS),
    Column("notified_on", "告知日期", True),
    Column("notice_method", "告知方式", True),
    Column("settled_on", "结清日期", False),
    Column("remarks", "备注", False),
)

COLUMNS_BY_KEY: dict[str, Column] = {c.key: c for c in COLUMNS}


def column_label(key: str) -> str:
    """``证件号码 (id_number)`` for a column key; anything else (a column letter) as it is."""
    column = COLUMNS_BY_KEY.get(key)
    return column.label if column else key


def _match_key(text: str) -> str:
    # NFKC folds full-width letters, digits and the ideographic space; casefold makes the
    # English aliases case-insensitive (Chinese is unaffected by both).
    return unicodedata.normalize("NFKC", text).strip().casefold()


_LOOKUP: dict[str, str] = {}
for _column in COLUMNS:
    _LOOKUP[_match_key(_column.header)] = _column.key
    _LOOKUP[_match_key(_column.key)] = _column.key


def _header_text(cell) -> str:
    if cell is None:
        return ""
    # A UTF-8 BOM can end up glued to the first header when a file was re-saved by a tool
    # that does not know about it (or concatenated from several exports).
    return str(cell).replace("\ufeff", "").strip()


class HeaderError(Exception):
    """The header row is unusable. ``problems`` lists every problem, each a lazy message."""

    def __init__(self, problems: list):
        super().__init__(problems)
        self.problems = list(problems)

    def __str__(self):
        return " ".join(str(p) for p in self.problems)


@dataclass(frozen=True)
class HeaderMap:
    """Where each column is in the file: column key → 0-based cell position."""

    positions: dict[str, int]
    width: int  # number of cells in the header row, trailing blanks included
    blank_positions: frozenset[int] = frozenset()

    def values(self, cells) -> dict[str, object]:
        """The row's values by column key; a column absent from the file gives ``None``."""
        values = dict.fromkeys(COLUMNS_BY_KEY)
        for key, pos in self.positions.items():
            if pos < len(cells):
                values[key] = cells[pos]
        return values

    def stray_cells(self, cells) -> list[int]:
        """Positions of non-empty cells under a blank header or past the header's end: data
        that belongs to no column and would otherwise be silently dropped."""
        mapped = set(self.positions.values())
        return [
            pos
            for pos, value in enumerate(cells)
            if pos not in mapped
            and not (value is None or (isinstance(value, str) and not value.strip()))
        ]


def map_header(cells: list) -> HeaderMap:
    """Match a header row's cells to the columns; raise HeaderError listing every problem."""
    problems = []
    positions: dict[str, int] = {}
    blanks = set()
    seen: dict[str, list[int]] = {}
    for pos, cell in enumerate(cells):
        text = _header_text(cell)
        if not text:
            blanks.add(pos)
            continue
        key = _LOOKUP.get(_match_key(text))
        if key is None:
            problems.append(
                format_lazy(
                    _(
                        "Unknown column “{header}” (column {letter}); use the headers of the "
                        "template, in Chinese or English."
                    ),
                    header=text,
                    letter=get_column_letter(pos + 1),
                )
            )
            continue
        seen.setdefault(key, []).append(pos)
        positions.setdefault(key, pos)
    for key, where in seen.items():
        if len(where) > 1:
            problems.append(
                format_lazy(
                    _("Column {column} appears more than once (columns {letters})."),
                    column=column_label(key),
                    letters=", ".join(get_column_letter(p + 1) for p in where),
                )
            )
    for column in COLUMNS:
        if column.required and column.key not in positions:
            problems.append(
                format_lazy(_("Required column {column} is missing."), column=column.label)
            )
    if problems:
        raise HeaderError(problems)
    return HeaderMap(positions=positions, width=len(cells), blank_positions=frozenset(blanks))
