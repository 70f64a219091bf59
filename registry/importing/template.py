"""The downloadable templates of a bulk report file: Chinese headers and one example row."""

import csv
import datetime
import io
from decimal import Decimal

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from .columns import COLUMNS
from .rows import CATEGORIES, ID_TYPES, NOTICE_METHODS, ROLES, SUBJECT_TYPES

# A valid row: the resident ID number is the sample of GB 11643 itself.
EXAMPLE_ROW: dict[str, object] = {
    "subject_type": "个人",
    "id_type": "居民身份证",
    "id_number": "11010519491231002X",
    "name": "张三",
    "phone": "13800138000",
    "role": "借款人",
    "contract_no": "HT-2024-0001",
    "category": "逾期",
    "loan_amount": Decimal("12345.60"),
    "overdue_amount": Decimal("2345.60"),
    "delinquent_since": datetime.date(2024, 3, 5),
    "court_name": "",
    "case_number": "",
    "judgment_date": None,
    "notified_on": datetime.date(2024, 3, 20),
    "notice_method": "短信",
    "settled_on": None,
    "remarks": "示例行，上传前请删除",
}

# Columns Excel must keep as text: it would turn long digit strings into rounded numbers.
_TEXT_COLUMNS = frozenset({"id_number", "phone", "contract_no", "case_number"})
_WIDTHS = {
    "id_number": 22,
    "name": 16,
    "phone": 14,
    "contract_no": 18,
    "court_name": 24,
    "case_number": 24,
    "remarks": 30,
}
_DROPDOWNS = {
    "subject_type": SUBJECT_TYPES,
    "id_type": ID_TYPES,
    "role": ROLES,
    "category": CATEGORIES,
    "notice_method": NOTICE_METHODS,
}


def _csv_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def template_csv_bytes() -> bytes:
    """The CSV template, UTF-8 with a BOM (so Excel opens it as UTF-8)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow([c.header for c in COLUMNS])
    writer.writerow([_csv_text(EXAMPLE_ROW[c.key]) for c in COLUMNS])
    return out.getvalue().encode("utf-8-sig")


def template_xlsx_bytes() -> bytes:
    """The XLSX template: the data sheet first (headers in bold, an example row, text format
    where Excel would mangle digits, drop-downs for the enumerated columns), then a sheet that
    explains the columns."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "报送数据"
    bold = Font(bold=True)
    for i, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(i)
        header = sheet.cell(row=1, column=i, value=column.header)
        header.font = bold
        value = EXAMPLE_ROW[column.key]
        cell = sheet.cell(row=2, column=i, value=None if value == "" else value)
        dimension = sheet.column_dimensions[letter]
        dimension.width = _WIDTHS.get(column.key, max(12, 2 * len(column.header) + 4))
        if column.key in _TEXT_COLUMNS:
            dimension.number_format = "@"
            cell.number_format = "@"
        elif isinstance(value, Decimal):
            cell.number_format = "#,##0.00"
        elif isinstance(value, datetime.date) or column.key in {
            "delinquent_since",
            "judgment_date",
            "notified_on",
            "settled_on",
        }:
            cell.number_format = "yyyy-mm-dd"
        if column.key in _DROPDOWNS:
            choices = ",".join(chinese for chinese, _value in _DROPDOWNS[column.key].terms)
            validation = DataValidation(type="list", formula1=f'"{choices}"', allow_blank=True)
            validation.add(f"{letter}2:{letter}1048576")
            sheet.add_data_validation(validation)
    sheet.freeze_panes = "A2"

    notes = workbook.create_sheet("填写说明")
    notes.append(["中文列名", "English alias", "必填 required", "取值 values"])
    for cell in notes[1]:
        cell.font = bold
    for column in COLUMNS:
        if column.required:
            required = "是 yes"
        elif column.required_for:
            required = "按类别 for " + ", ".join(sorted(str(c) for c in column.required_for))
        else:
            required = "否 no"
        vocabulary = _DROPDOWNS.get(column.key)
        notes.append(
            [column.header, column.key, required, vocabulary.choices if vocabulary else ""]
        )
    for letter, width in zip("ABCD", (16, 18, 40, 60), strict=True):
        notes.column_dimensions[letter].width = width

    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
