"""The bulk file layer (registry.importing): reading, header matching, row parsing, error report,
templates. No database: everything here works on files in tmp_path."""

import csv
import dataclasses
import datetime
import io
import time
import tracemalloc
import zipfile
from decimal import Decimal

import pytest
from django.utils import translation
from django.utils.functional import Promise
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from openpyxl.utils.datetime import to_excel

from registry.identifiers import IdentifierError, normalize_id_number
from registry.importing import (
    COLUMNS,
    FileFormatError,
    HeaderError,
    ParsedRow,
    RowOutcome,
    iter_rows,
    map_header,
    parse_amount,
    parse_date,
    parse_row,
    row_fingerprint,
    template_csv_bytes,
    template_xlsx_bytes,
    validate_file,
    write_error_report,
)
from registry.importing import reader as reader_module
from registry.importing.reader import detect_csv_encoding
from registry.importing.rows import normalize_case_number

TODAY = datetime.date(2025, 6, 30)
RIC = "11010519491231002X"  # the sample number of GB 11643
USCC = "91350100M000100Y43"
KEYS = [c.key for c in COLUMNS]
HEADERS = [c.header for c in COLUMNS]


@pytest.fixture(autouse=True, scope="module")
def english():
    # Messages are asserted in their English source text, whatever translations exist.
    with translation.override("en"):
        yield


def good_values(**overrides) -> dict[str, object]:
    values = {
        "subject_type": "个人",
        "id_type": "居民身份证",
        "id_number": RIC,
        "name": "张三",
        "phone": "13800138000",
        "role": "借款人",
        "contract_no": "HT-2024-0001",
        "category": "逾期",
        "loan_amount": "12345.60",
        "overdue_amount": "2345.60",
        "delinquent_since": "2024-03-05",
        "court_name": "",
        "case_number": "",
        "judgment_date": "",
        "notified_on": "2024-03-20",
        "notice_method": "短信",
        "settled_on": "",
        "remarks": "",
    }
    values.update(overrides)
    return values


def court_values(**overrides) -> dict[str, object]:
    values = good_values(
        category="法院判决未履行",
        overdue_amount="",
        delinquent_since="",
        court_name="北京市朝阳区人民法院",
        case_number="(2023)京0105执1234号",
        judgment_date="2023-11-02",
    )
    values.update(overrides)
    return values


def errors_of(result) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, message in result.errors:
        found.setdefault(key, []).append(str(message))
    return found


def write_csv(path, rows, *, encoding="utf-8"):
    with path.open("w", encoding=encoding, newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def write_xlsx(path, rows):
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.save(path)
    return path


def rows_of(values_list):
    return [HEADERS] + [[v[k] for k in KEYS] for v in values_list]


def outcomes(path, filename=None):
    return list(validate_file(path, filename or path.name, today=TODAY))


# --- Encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_csv_with_chinese_headers_loads_in_every_accepted_encoding(tmp_path, encoding):
    path = write_csv(
        tmp_path / "batch.csv",
        rows_of([good_values(name="李四", remarks="已电话催收")]),
        encoding=encoding,
    )

    [outcome] = outcomes(path)

    assert outcome.errors == []
    assert outcome.row_number == 2
    assert outcome.data.name == "李四"
    assert outcome.data.remarks == "已电话催收"
    assert outcome.data.category == "overdue"
    expected = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig"}.get(encoding, "gb18030")
    assert detect_csv_encoding(path) == expected


def test_gb18030_is_chosen_even_if_the_first_megabytes_are_plain_ascii(tmp_path):
    # Only the end of the file is not UTF-8: the whole file must be checked, not its head.
    path = tmp_path / "late.csv"
    with path.open("wb") as f:
        f.write(",".join(HEADERS).encode("gbk") + b"\r\n")
        english = {
            "subject_type": "person",
            "id_type": "RIC",
            "role": "borrower",
            "category": "overdue",
            "notice_method": "sms",
        }
        ascii_row = ",".join(str(v) for v in good_values(name="Zhang San", **english).values())
        for _ in range(2 * reader_module.CHUNK_SIZE // len(ascii_row) + 1):
            f.write(ascii_row.encode() + b"\r\n")
        f.write(",".join(str(v) for v in good_values(name="王五").values()).encode("gbk"))

    assert detect_csv_encoding(path) == "gb18030"
    last = list(iter_rows(path, "late.csv"))[-1][1]
    assert last[KEYS.index("name")] == "王五"


def test_utf8_characters_split_across_read_chunks_are_still_utf8(tmp_path, monkeypatch):
    monkeypatch.setattr(reader_module, "CHUNK_SIZE", 5)  # splits most 3-byte characters
    path = write_csv(tmp_path / "a.csv", rows_of([good_values(name="欧阳娜娜")]))

    assert detect_csv_encoding(path) == "utf-8"
    [outcome] = outcomes(path)
    assert outcome.data.name == "欧阳娜娜"


def test_a_file_that_is_neither_utf8_nor_gb18030_is_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(",".join(HEADERS).encode() + b"\r\n\xff\xfe\xff abc\r\n")

    with pytest.raises(FileFormatError) as exc:
        iter_rows(path, "bad.csv")
    assert str(exc.value.message) == (
        "The file's text encoding could not be recognised; save it as UTF-8 or GBK."
    )


def test_utf16_text_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "unicode.csv"
    path.write_bytes(",".join(HEADERS).encode("utf-16"))

    with pytest.raises(FileFormatError, match="UTF-16"):
        iter_rows(path, "unicode.csv")


# --- Headers -----------------------------------------------------------------------------------


def test_english_headers_in_another_order_with_spaces_and_case_are_matched(tmp_path):
    keys = list(reversed(KEYS))
    headers = [f"  {k.upper()} " if i % 2 else f"\u3000{k}\u3000" for i, k in enumerate(keys)]
    headers[0] = "\ufeff" + headers[0]  # a BOM glued to the first header
    values = good_values()
    path = write_csv(tmp_path / "en.csv", [headers, [values[k] for k in keys]])

    [outcome] = outcomes(path)

    assert outcome.errors == []
    assert outcome.data.id_number == RIC
    assert outcome.data.loan_amount == Decimal("12345.60")


def test_chinese_and_english_headers_can_be_mixed():
    cells = [c.key if i % 2 else c.header for i, c in enumerate(COLUMNS)]
    header = map_header(cells)
    assert header.positions == {c.key: i for i, c in enumerate(COLUMNS)}


def test_unknown_column_is_an_error_that_names_it():
    with pytest.raises(HeaderError) as exc:
        map_header([*HEADERS, "邮箱"])
    assert [str(p) for p in exc.value.problems] == [
        "Unknown column “邮箱” (column S); use the headers of the template, in Chinese or English."
    ]


def test_missing_required_column_is_named_in_chinese_and_english():
    with pytest.raises(HeaderError) as exc:
        map_header([h for h in HEADERS if h != "证件号码"])
    assert [str(p) for p in exc.value.problems] == [
        "Required column 证件号码 (id_number) is missing."
    ]


def test_optional_columns_may_be_left_out_of_the_header(tmp_path):
    keep = [c for c in COLUMNS if c.required]
    values = good_values(category="骗贷")
    path = write_csv(
        tmp_path / "min.csv", [[c.header for c in keep], [values[c.key] for c in keep]]
    )

    [outcome] = outcomes(path)

    assert outcome.errors == []
    assert outcome.data.phone == ""
    assert outcome.data.settled_on is None


def test_duplicate_column_is_an_error_even_under_its_other_name():
    with pytest.raises(HeaderError) as exc:
        map_header([*HEADERS, "ID_Number"])
    assert [str(p) for p in exc.value.problems] == [
        "Column 证件号码 (id_number) appears more than once (columns C, S)."
    ]


def test_every_header_problem_is_reported_at_once():
    cells = [h for h in HEADERS if h not in ("姓名/名称", "告知日期")] + ["金额", "remark"]
    with pytest.raises(HeaderError) as exc:
        map_header(cells)
    problems = [str(p) for p in exc.value.problems]
    assert len(problems) == 4
    assert any("“金额”" in p for p in problems)
    assert any("“remark”" in p for p in problems)
    assert "Required column 姓名/名称 (name) is missing." in problems
    assert "Required column 告知日期 (notified_on) is missing." in problems


def test_an_empty_file_has_no_header(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"\r\n,,,\r\n")
    with pytest.raises(HeaderError, match="no header row"):
        validate_file(path, "empty.csv", today=TODAY)


def test_header_errors_are_raised_before_any_row_is_read(tmp_path):
    path = write_csv(tmp_path / "h.csv", [["foo", "bar"], ["1", "2"]])
    with pytest.raises(HeaderError):
        validate_file(path, "h.csv", today=TODAY)  # no iteration


def test_value_under_a_blank_header_is_an_error_not_silently_dropped(tmp_path):
    values = good_values()
    path = write_csv(
        tmp_path / "stray.csv",
        [
            [*HEADERS, "", ""],
            [*[values[k] for k in KEYS], "", "forgotten"],
            [*[values[k] for k in KEYS], "", ""],
        ],
    )

    first, second = outcomes(path)

    assert first.data is None
    assert errors_of(first) == {
        "T": ["Column T has a value but no header; add the header or remove the value."]
    }
    assert second.errors == []


# --- Empty rows --------------------------------------------------------------------------------


def test_empty_rows_are_skipped_and_row_numbers_stay_those_of_the_file(tmp_path):
    values = good_values()
    data = [values[k] for k in KEYS]
    blank = [""] * len(KEYS)
    spaces = [" ", "\u3000"] + [""] * (len(KEYS) - 2)
    path = write_csv(tmp_path / "gaps.csv", [blank, HEADERS, data, blank, spaces, data, []])

    found = outcomes(path)

    assert [o.row_number for o in found] == [3, 6]
    assert all(o.errors == [] for o in found)


def test_empty_rows_in_a_workbook_are_skipped_with_true_row_numbers(tmp_path):
    values = good_values()
    workbook = Workbook()
    sheet = workbook.active
    for i, header in enumerate(HEADERS, start=1):
        sheet.cell(row=2, column=i, value=header)
    for row in (3, 7):
        for i, key in enumerate(KEYS, start=1):
            sheet.cell(row=row, column=i, value=values[key] or None)
    sheet.cell(row=5, column=3, value="   ")  # whitespace only: empty
    path = tmp_path / "gaps.xlsx"
    workbook.save(path)

    found = outcomes(path)

    assert [o.row_number for o in found] == [3, 7]
    assert all(o.errors == [] for o in found)


def test_a_multi_line_cell_is_one_spreadsheet_row(tmp_path):
    values = good_values(remarks="第一行\n第二行")
    path = write_csv(tmp_path / "ml.csv", rows_of([values, good_values()]))

    first, second = outcomes(path)

    assert first.data.remarks == "第一行\n第二行"
    assert (first.row_number, second.row_number) == (2, 3)


# --- Amounts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "12345.6",
        "12345.60",
        "12,345.60",
        "¥12,345.60",
        "￥12345.6",
        " ¥ 12,345.60 ",
        "１２３４５.６",
        "￥１２，３４５．６０",
        12345.6,
        Decimal("12345.6"),
        Decimal("12345.600"),
    ],
)
def test_every_amount_form_of_the_format_is_12345_60(raw):
    amount = parse_amount(raw)
    assert amount == Decimal("12345.60")
    assert amount.as_tuple().exponent == -2


def test_integer_amounts_get_two_places():
    assert str(parse_amount(12345)) == "12345.00"
    assert str(parse_amount("12,345")) == "12345.00"
    assert str(parse_amount("0")) == "0.00"
    assert str(parse_amount("-0")) == "0.00"


def test_float_noise_from_a_workbook_formula_is_rounded_away():
    assert parse_amount(0.1 + 0.2) == Decimal("0.30")
    assert parse_amount(1234.56 * 3) == Decimal("3703.68")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("-12", "Amount must not be negative: -12.00."),
        ("¥-12.5", "Amount must not be negative: -12.50."),
        ("-￥1,000", "Amount must not be negative: -1000.00."),
        (-3, "Amount must not be negative: -3.00."),
        (
            "12.345",
            "Amount has more than 2 decimal places: 12.345; amounts are in yuan and fen "
            "(e.g. 12345.60).",
        ),
        (
            "1000000000000.00",
            "Amount is too large: 1000000000000.00; the largest accepted is 999,999,999,999.99.",
        ),
        ("abc", "“abc” is not an amount; write it like 12345.60, 12,345.60 or ¥12,345.60."),
        (
            "1,23,456",
            "“1,23,456” is not an amount; write it like 12345.60, 12,345.60 or ¥12,345.60.",
        ),
        ("1e5", "“1e5” is not an amount; write it like 12345.60, 12,345.60 or ¥12,345.60."),
        ("12.", "“12.” is not an amount; write it like 12345.60, 12,345.60 or ¥12,345.60."),
        ("١٢", "“١٢” is not an amount; write it like 12345.60, 12,345.60 or ¥12,345.60."),
        (True, "“True” is not an amount; write it like 12345.60, 12,345.60 or ¥12,345.60."),
        (float("nan"), "“nan” is not an amount; write it like 12345.60, 12,345.60 or ¥12,345.60."),
    ],
)
def test_bad_amounts_say_what_is_wrong(raw, message):
    with pytest.raises(ValueError) as exc:
        parse_amount(raw)
    assert str(exc.value.message) == message


def test_the_largest_amount_that_fits_the_database_is_accepted():
    assert parse_amount("999,999,999,999.99") == Decimal("999999999999.99")


def test_a_name_longer_than_the_column_is_an_error_not_a_database_failure():
    values = {"name": "张" * 101}
    errors = dict(parse_row(values, today=datetime.date(2026, 1, 1)).errors)
    assert "name" in errors


# --- Dates -------------------------------------------------------------------------------------

MARCH_5 = datetime.date(2024, 3, 5)


@pytest.mark.parametrize(
    "raw",
    [
        "2024-03-05",
        "2024/3/5",
        "2024.3.5",
        "2024年3月5日",
        "2024-3-5",
        "2024/03/05",
        "2024.03.05",
        "2024 年 3 月 5 日",
        "２０２４年３月５日",
        "２０２４－０３－０５",
        " 2024-03-05 ",
        "2024/3/5 0:00",
        "2024-03-05 00:00:00",
        MARCH_5,
        datetime.datetime(2024, 3, 5, 0, 0),
        datetime.datetime(2024, 3, 5, 17, 30),
        45356,  # an Excel serial number: a date cell formatted as a number
        45356.75,
    ],
)
def test_every_date_form_of_the_format_is_read(raw):
    assert parse_date(raw) == MARCH_5


def test_excel_serial_numbers_follow_excels_1900_calendar():
    assert parse_date(1) == datetime.date(1900, 1, 1)
    assert parse_date(59) == datetime.date(1900, 2, 28)
    assert parse_date(61) == datetime.date(1900, 3, 1)
    assert parse_date(to_excel(datetime.date(2030, 12, 31))) == datetime.date(2030, 12, 31)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("2024-02-30", "Impossible date “2024-02-30”: there is no such day."),
        ("2023年2月29日", "Impossible date “2023年2月29日”: there is no such day."),
        ("2024/13/1", "Impossible date “2024/13/1”: there is no such day."),
        (60, "Impossible date “1900-02-29”: there is no such day."),
        (
            "05/03/2024",
            "“05/03/2024” is not a date; write it like 2024-03-05, 2024/3/5, 2024.3.5 or "
            "2024年3月5日.",
        ),
        (
            "2024-03/05",
            "“2024-03/05” is not a date; write it like 2024-03-05, 2024/3/5, 2024.3.5 or "
            "2024年3月5日.",
        ),
        (
            "20240305",
            "“20240305” is not a date; write it like 2024-03-05, 2024/3/5, 2024.3.5 or "
            "2024年3月5日.",
        ),
        (
            0,
            "“0” is not a date; write it like 2024-03-05, 2024/3/5, 2024.3.5 or 2024年3月5日.",
        ),
        (
            20240305,
            "“20240305” is not a date; write it like 2024-03-05, 2024/3/5, 2024.3.5 or "
            "2024年3月5日.",
        ),
    ],
)
def test_bad_dates_name_the_value(raw, message):
    with pytest.raises(ValueError) as exc:
        parse_date(raw)
    assert str(exc.value.message) == message


def test_real_excel_dates_and_numbers_in_a_workbook_are_read(tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(HEADERS)
    values = good_values(
        phone=13800138000,  # typed as a number
        contract_no=20240001,
        loan_amount=12345.6,
        overdue_amount=2000,
        delinquent_since=datetime.datetime(2024, 3, 5),
        notified_on=datetime.date(2024, 3, 20),
        settled_on=datetime.datetime(2025, 1, 2, 9, 30),
        remarks=None,
    )
    sheet.append([values[k] or None for k in KEYS])
    sheet.cell(row=2, column=KEYS.index("notified_on") + 1).number_format = "yyyy/m/d"
    # A date cell whose format was changed to General holds only its serial number.
    serial = sheet.cell(row=2, column=KEYS.index("delinquent_since") + 1)
    serial.value = 45356
    serial.number_format = "General"
    path = tmp_path / "dates.xlsx"
    workbook.save(path)

    [outcome] = outcomes(path)

    assert outcome.errors == []
    row = outcome.data
    assert row.phone == "13800138000"
    assert row.contract_no == "20240001"
    assert row.loan_amount == Decimal("12345.60")
    assert row.overdue_amount == Decimal("2000.00")
    assert row.delinquent_since == MARCH_5
    assert row.notified_on == datetime.date(2024, 3, 20)
    assert row.settled_on == datetime.date(2025, 1, 2)
    # The reader really hands over native values, not text.
    [(_number, cells)] = list(iter_rows(path, "dates.xlsx"))[1:]
    assert isinstance(cells[KEYS.index("notified_on")], datetime.datetime)
    assert isinstance(cells[KEYS.index("loan_amount")], float)


def test_an_id_number_that_excel_turned_into_a_number_gets_a_hint():
    result = parse_row(good_values(id_number=1.10105194912310e17), today=TODAY)
    [message] = errors_of(result)["id_number"]
    assert message.startswith("The check character should be ")
    assert "format the column as text" in message


# --- Rows --------------------------------------------------------------------------------------


def test_a_good_row_is_parsed_into_typed_normalised_fields():
    result = parse_row(
        good_values(
            id_number="110105 19491231 002x",
            name=" 张 三 ",
            phone="+86 138 0013 8000",
            contract_no="  HT-2024-0001 ",
            loan_amount="¥12,345.6",
            settled_on="2025年6月30日",  # today is fine
            remarks="  分期  ",
        ),
        today=TODAY,
    )
    assert result.errors == []
    assert result.ok
    assert result.data == ParsedRow(
        subject_type="person",
        id_type="RIC",
        id_number=RIC,
        name="张三",
        phone="13800138000",
        role="borrower",
        contract_no="HT-2024-0001",
        category="overdue",
        loan_amount=Decimal("12345.60"),
        overdue_amount=Decimal("2345.60"),
        delinquent_since=MARCH_5,
        court_name="",
        case_number="",
        judgment_date=None,
        notified_on=datetime.date(2024, 3, 20),
        notice_method="sms",
        settled_on=TODAY,
        remarks="分期",
    )


@pytest.mark.parametrize(
    ("key", "chinese", "english", "value"),
    [
        ("subject_type", "个人", "Person", "person"),
        ("role", "担保人", "GUARANTOR", "guarantor"),
        ("category", "骗贷", "fraud", "fraud"),
        ("notice_method", "当面", "in_person", "in_person"),
        ("notice_method", "电子邮件", "Email", "email"),
        ("id_type", "护照", "passport", "PASSPORT"),
    ],
)
def test_enumerations_accept_the_chinese_term_or_the_english_value(key, chinese, english, value):
    extra = {"id_number": "E12345678"} if key == "id_type" else {}
    for raw in (chinese, english, f" {chinese}\u3000"):
        result = parse_row(good_values(**{key: raw}, **extra), today=TODAY)
        assert result.errors == [], raw
        assert getattr(result.data, key) == value


def test_id_types_by_chinese_name_or_code():
    cases = {
        "居民身份证": ("RIC", RIC),
        "ric": ("RIC", RIC),
        "港澳居民来往内地通行证": ("HKMO", "H12345678"),
        "台湾居民来往大陆通行证": ("TW", "12345678"),
        "外国人永久居留身份证": ("FPR", "USA123456789012"),
        "FPR": ("FPR", "USA123456789012"),
    }
    for raw, (code, number) in cases.items():
        result = parse_row(good_values(id_type=raw, id_number=number), today=TODAY)
        assert result.errors == [], raw
        assert (result.data.id_type, result.data.id_number) == (code, number)


def test_unknown_enumeration_values_list_the_choices():
    result = parse_row(good_values(category="abc", role="贷款人"), today=TODAY)
    assert errors_of(result) == {
        "role": ["Unknown subject role “贷款人”; use one of: 借款人 borrower, 担保人 guarantor."],
        "category": [
            "Unknown category “abc”; use one of: 逾期 overdue, 骗贷 fraud, "
            "恶意拖欠 malicious_default, 担保代偿 guarantor_default, "
            "法院判决未履行 court_judgment."
        ],
    }


@pytest.mark.parametrize(
    ("category", "missing"),
    [
        ("逾期", "overdue_amount"),
        ("逾期", "delinquent_since"),
        ("恶意拖欠", "overdue_amount"),
        ("恶意拖欠", "delinquent_since"),
        ("担保代偿", "overdue_amount"),
    ],
)
def test_overdue_categories_require_their_columns(category, missing):
    result = parse_row(good_values(category=category, **{missing: ""}), today=TODAY)
    assert result.data is None
    [(key, message)] = result.errors
    assert key == missing
    assert str(message).startswith("A value is required for category ")


@pytest.mark.parametrize("missing", ["court_name", "case_number", "judgment_date"])
def test_court_judgments_require_court_name_case_number_and_judgment_date(missing):
    assert parse_row(court_values(), today=TODAY).errors == []
    result = parse_row(court_values(**{missing: ""}), today=TODAY)
    assert errors_of(result) == {
        missing: ["A value is required for category 法院判决未履行 court_judgment."]
    }


def test_categories_do_not_require_columns_they_do_not_need():
    # Fraud needs neither amounts overdue nor court fields; a guarantor payout has no
    # delinquency start date of its own.
    fraud = good_values(category="骗贷", overdue_amount="", delinquent_since="")
    guarantor = good_values(category="担保代偿", delinquent_since="")
    assert parse_row(fraud, today=TODAY).errors == []
    assert parse_row(guarantor, today=TODAY).errors == []


def test_case_number_brackets_are_normalised_and_its_shape_checked():
    result = parse_row(court_values(case_number="（２０２３）京0105执1234号"), today=TODAY)
    assert result.data.case_number == "(2023)京0105执1234号"
    assert normalize_case_number("〔2021〕最高法执恢12号") == "(2021)最高法执恢12号"
    bad = parse_row(court_values(case_number="2023京0105执1234"), today=TODAY)
    assert errors_of(bad) == {
        "case_number": [
            "“2023京0105执1234” is not a case number; write it like (2023)京0105执1234号."
        ]
    }


def test_negative_amount_is_an_error_on_its_column():
    result = parse_row(good_values(loan_amount="-12"), today=TODAY)
    assert errors_of(result) == {"loan_amount": ["Amount must not be negative: -12.00."]}


def test_notice_date_in_the_future_is_an_error():
    tomorrow = (TODAY + datetime.timedelta(days=1)).isoformat()
    result = parse_row(good_values(notified_on=tomorrow), today=TODAY)
    assert errors_of(result) == {
        "notified_on": ["The notice date 2025-07-01 is in the future; it must be today or earlier."]
    }
    assert parse_row(good_values(notified_on=TODAY.isoformat()), today=TODAY).ok


def test_settlement_date_in_the_future_is_an_error():
    result = parse_row(good_values(settled_on="2030/1/1"), today=TODAY)
    assert errors_of(result) == {
        "settled_on": [
            "The settlement date 2030-01-01 is in the future; it must be today or earlier."
        ]
    }


def test_bad_id_number_message_is_on_the_id_number_column():
    bad = RIC[:-1] + "0"
    with pytest.raises(IdentifierError) as expected:
        normalize_id_number("RIC", bad)

    result = parse_row(good_values(id_number=bad), today=TODAY)

    assert errors_of(result) == {"id_number": [str(expected.value.message)]}
    assert str(expected.value.message) == "The check character should be X, not 0."


def test_enterprise_with_a_personal_id_type_is_a_mismatch():
    result = parse_row(good_values(subject_type="企业"), today=TODAY)
    [message] = errors_of(result)["subject_type"]
    assert message.startswith("Subject type 企业 enterprise does not match ID type 居民身份证 RIC")
    assert message.endswith("Use 个人 person.")


def test_person_with_a_credit_code_is_a_mismatch_and_enterprise_is_fine():
    person = parse_row(good_values(id_type="USCC", id_number=USCC), today=TODAY)
    assert list(errors_of(person)) == ["subject_type"]
    enterprise = parse_row(
        good_values(
            subject_type="enterprise",
            id_type="统一社会信用代码",
            id_number=USCC,
            name="北京某某科技有限公司",
            phone="",
        ),
        today=TODAY,
    )
    assert enterprise.errors == []
    assert (enterprise.data.subject_type, enterprise.data.id_number) == ("enterprise", USCC)


def test_phone_is_optional_but_checked_when_given():
    assert parse_row(good_values(phone=""), today=TODAY).data.phone == ""
    result = parse_row(good_values(phone="010-12345678"), today=TODAY)
    assert list(errors_of(result)) == ["phone"]


def test_contract_number_is_required_and_at_most_64_characters():
    assert errors_of(parse_row(good_values(contract_no="  "), today=TODAY)) == {
        "contract_no": ["A value is required."]
    }
    assert parse_row(good_values(contract_no="A" * 64), today=TODAY).ok
    assert errors_of(parse_row(good_values(contract_no="A" * 65), today=TODAY)) == {
        "contract_no": ["Too long: 65 characters; at most 64 are allowed."]
    }


def test_remarks_are_at_most_500_characters():
    assert parse_row(good_values(remarks="备" * 500), today=TODAY).ok
    assert errors_of(parse_row(good_values(remarks="备" * 501), today=TODAY)) == {
        "remarks": ["Too long: 501 characters; at most 500 are allowed."]
    }


def test_every_error_of_a_row_is_collected_in_column_order():
    result = parse_row(
        good_values(
            subject_type="",
            id_number="123",
            name="",
            phone="999",
            loan_amount="-1",
            overdue_amount="",
            notified_on="2024-02-30",
            notice_method="fax",
        ),
        today=TODAY,
    )
    assert result.data is None
    assert [key for key, _message in result.errors] == [
        "subject_type",
        "id_number",
        "name",
        "phone",
        "loan_amount",
        "overdue_amount",
        "notified_on",
        "notice_method",
    ]
    assert str(dict(result.errors)["subject_type"]) == (
        "A value is required; use one of: 个人 person, 企业 enterprise."
    )


def test_a_row_without_any_value_reports_each_required_column():
    result = parse_row({}, today=TODAY)
    assert {key for key, _message in result.errors} == {c.key for c in COLUMNS if c.required}


def test_messages_stay_lazy_so_they_render_in_the_readers_language():
    result = parse_row(good_values(loan_amount="x", category="?"), today=TODAY)
    assert result.errors
    assert all(isinstance(message, Promise) for _key, message in result.errors)


# --- Disguised and unsupported files -----------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def _zip(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("make", "filename", "message"),
    [
        (lambda p: p.write_bytes(PNG), "photo.xlsx", "The file is not a valid Excel .xlsx file."),
        (
            lambda p: _zip(p, {"readme.txt": b"hello"}),
            "archive.xlsx",
            "The file is not a valid Excel .xlsx file.",
        ),
        (
            lambda p: _zip(p, {"xl/workbook.xml": b"<not-a-workbook", "[Content_Types].xml": b""}),
            "broken.xlsx",
            "The file is not a valid Excel .xlsx file.",
        ),
        (
            lambda p: p.write_bytes(b"<html><body>\x00\x01 hi</body></html>"),
            "page.xlsx",
            "The file is not a valid Excel .xlsx file.",
        ),
        (
            lambda p: p.write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256))),
            "program.csv",
            "The file is not a CSV text file.",
        ),
        (
            lambda p: p.write_bytes(PNG),
            "photo.csv",
            "The file is not a CSV text file.",
        ),
        (
            lambda p: p.write_bytes(template_xlsx_bytes()),
            "renamed.csv",
            "The file is an Excel workbook, not a CSV file; upload it with the .xlsx extension.",
        ),
        (
            lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512),
            "old.xlsx",
            "The file is an old .xls workbook or is password-protected; save it as an .xlsx "
            "workbook without a password.",
        ),
        (
            lambda p: p.write_bytes(template_csv_bytes()),
            "batch.txt",
            "Only .csv and .xlsx files are accepted.",
        ),
        (
            lambda p: p.write_bytes(template_xlsx_bytes()),
            "batch.xls",
            "Only .csv and .xlsx files are accepted.",
        ),
        (
            lambda p: p.write_bytes(template_csv_bytes()),
            "noext",
            "Only .csv and .xlsx files are accepted.",
        ),
    ],
)
def test_disguised_and_unsupported_files_are_refused_up_front(tmp_path, make, filename, message):
    path = tmp_path / "upload.bin"
    make(path)

    with pytest.raises(FileFormatError) as exc:
        list(validate_file(path, filename, today=TODAY))

    assert str(exc.value.message) == message
    assert str(exc.value) == message


def test_file_kind_is_checked_when_iter_rows_is_called_not_when_iterated(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_bytes(PNG)
    with pytest.raises(FileFormatError):
        iter_rows(path, "x.xlsx")


def test_html_saved_as_csv_fails_on_its_header(tmp_path):
    path = tmp_path / "page.csv"
    path.write_text("<html><body><table><tr><td>证件号码</td></tr></table></body></html>\n")
    with pytest.raises(HeaderError) as exc:
        validate_file(path, "page.csv", today=TODAY)
    assert any("Unknown column" in str(p) for p in exc.value.problems)


def test_a_nul_byte_anywhere_in_a_csv_is_refused(tmp_path):
    path = tmp_path / "late-nul.csv"
    with path.open("wb") as f:
        f.write(",".join(HEADERS).encode() + b"\r\n")
        f.write(b"a,b\r\n" * (reader_module.SNIFF_SIZE // 5 + 10))
        f.write(b"x\x00y\r\n")
    with pytest.raises(FileFormatError, match="not a CSV text file"):
        iter_rows(path, "late-nul.csv")


def test_a_bom_followed_by_text_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "bom-gbk.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ",".join(HEADERS).encode("gbk"))
    with pytest.raises(FileFormatError, match="encoding could not be recognised"):
        iter_rows(path, "bom-gbk.csv")


def test_the_first_worksheet_is_read_and_extensions_are_case_insensitive(tmp_path):
    workbook = Workbook()
    workbook.active.append(HEADERS)
    values = good_values()
    workbook.active.append([values[k] or None for k in KEYS])
    workbook.create_sheet("other").append(["ignored"])
    path = tmp_path / "two.xlsx"
    workbook.save(path)

    [outcome] = outcomes(path, "BATCH.XLSX")

    assert outcome.errors == []


def test_more_rows_than_the_limit_is_a_format_error(tmp_path):
    path = write_csv(tmp_path / "many.csv", rows_of([good_values()] * 4))
    found = validate_file(path, "many.csv", today=TODAY, max_rows=3)
    with pytest.raises(FileFormatError, match="more than 3 rows"):
        list(found)


# --- Streaming ---------------------------------------------------------------------------------


def _big_csv(path, rows: int):
    values = good_values()
    line = ",".join(str(values[k]) for k in KEYS)
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(HEADERS) + "\r\n")
        for i in range(rows):
            f.write(line.replace("HT-2024-0001", f"HT-{i:07d}") + "\r\n")
    return path


def test_iter_rows_streams_a_large_csv_in_flat_memory(tmp_path):
    path = _big_csv(tmp_path / "big.csv", 200_000)
    assert path.stat().st_size > 25_000_000

    started = time.monotonic()
    tracemalloc.start()
    try:
        count = 0
        last = None
        for number, cells in iter_rows(path, "big.csv"):
            count += 1
            last = (number, cells[KEYS.index("contract_no")])
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert count == 200_001  # the header and every data row
    assert last == (200_001, "HT-0199999")
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert time.monotonic() - started < 30


def test_validate_file_streams_too(tmp_path):
    path = _big_csv(tmp_path / "mid.csv", 10_000)

    tracemalloc.start()
    try:
        ok = sum(1 for outcome in validate_file(path, "mid.csv", today=TODAY) if outcome.ok)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert ok == 10_000
    assert peak < 10 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_iter_rows_is_lazy_and_returns_a_generator(tmp_path):
    path = _big_csv(tmp_path / "lazy.csv", 10)
    rows = iter_rows(path, "lazy.csv")
    assert not isinstance(rows, list | tuple)
    assert next(rows)[0] == 1
    rows.close()


# --- Fingerprint -------------------------------------------------------------------------------


def _parsed(**overrides) -> ParsedRow:
    result = parse_row(good_values(**overrides), today=TODAY)
    assert result.errors == []
    return result.data


def test_fingerprint_is_stable_across_runs_and_spellings():
    row = _parsed()
    same = _parsed(
        loan_amount="¥12,345.6",
        delinquent_since="2024年3月5日",
        id_number="110105194912310 02x",
        role="borrower",
    )
    assert row_fingerprint(row) == row_fingerprint(same)
    # A fixed value: a change of the canonical form would make every re-upload look new.
    assert row_fingerprint(row) == (
        "7966e2854420e5411356a80d62a2dc9c82d4ddd23dfc936404a53a6cd7ede422"
    )


def _other_value(value):
    if isinstance(value, Decimal):
        return value + Decimal("0.01")
    if isinstance(value, datetime.date):
        return value + datetime.timedelta(days=1)
    if value is None:
        return datetime.date(2020, 1, 1)
    return value + "x"


def test_fingerprint_changes_when_any_field_changes():
    row = _parsed()
    base = row_fingerprint(row)
    fields = dataclasses.fields(ParsedRow)
    assert len(fields) == 18
    seen = {base}
    for f in fields:
        changed = dataclasses.replace(row, **{f.name: _other_value(getattr(row, f.name))})
        fingerprint = row_fingerprint(changed)
        assert fingerprint not in seen, f.name
        seen.add(fingerprint)


def test_fingerprint_tells_an_empty_value_from_a_missing_one():
    row = _parsed(overdue_amount="", category="骗贷")
    assert row_fingerprint(row) != row_fingerprint(
        dataclasses.replace(row, overdue_amount=Decimal("0.00"))
    )


def test_keyed_fingerprint_depends_on_the_key():
    row = _parsed()
    plain = row_fingerprint(row)
    keyed = row_fingerprint(row, key=b"k1")
    assert len(keyed) == 64 and int(keyed, 16) >= 0
    assert keyed not in (plain, row_fingerprint(row, key=b"k2"))
    assert keyed == row_fingerprint(row, key=b"k1")


# --- Error report ------------------------------------------------------------------------------


def test_error_report_is_a_bom_csv_with_named_columns():
    out = io.StringIO(newline="")
    result = parse_row(good_values(loan_amount="-12"), today=TODAY)
    errors = [(5, key, message) for key, message in result.errors]
    errors += [(7, "T", "Column T has a value but no header"), (9, "category", "=1+2")]

    write_error_report(errors, out)

    text = out.getvalue()
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows == [
        ["行号 row", "列 column", "错误 message"],
        ["5", "借款金额 (loan_amount)", "Amount must not be negative: -12.00."],
        ["7", "T", "Column T has a value but no header"],
        ["9", "失信类别 (category)", "'=1+2"],  # never a formula in Excel
    ]


def test_error_report_written_to_a_file_opens_as_utf8_with_bom(tmp_path):
    path = tmp_path / "errors.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        write_error_report([(2, "name", "The name is empty.")], f)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf\xe8\xa1\x8c\xe5\x8f\xb7")  # BOM, then 行号
    assert "姓名/名称 (name)" in data.decode("utf-8-sig")


# --- Templates ---------------------------------------------------------------------------------


def test_csv_template_has_chinese_headers_and_a_valid_example(tmp_path):
    data = template_csv_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    header, example = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert header == HEADERS
    assert len(example) == len(HEADERS)

    path = tmp_path / "template.csv"
    path.write_bytes(data)
    [outcome] = outcomes(path)
    assert outcome.errors == []


def test_xlsx_template_has_bold_headers_widths_and_a_valid_example(tmp_path):
    path = tmp_path / "template.xlsx"
    path.write_bytes(template_xlsx_bytes())

    workbook = load_workbook(path)
    sheet = workbook.worksheets[0]
    assert [c.value for c in sheet[1]] == HEADERS
    assert all(c.font.bold for c in sheet[1])
    assert sheet.column_dimensions["C"].width >= 20  # room for an 18-character ID number
    assert sheet["C2"].number_format == "@"  # kept as text, not rounded by Excel
    dropdowns = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert dropdowns["H2:H1048576"] == '"逾期,骗贷,恶意拖欠,担保代偿,法院判决未履行"'
    assert workbook.sheetnames == ["报送数据", "填写说明"]
    assert isinstance(
        sheet.cell(row=2, column=KEYS.index("notified_on") + 1).value, datetime.datetime
    )

    [outcome] = outcomes(path)
    assert outcome.errors == []
    csv_path = tmp_path / "template.csv"
    csv_path.write_bytes(template_csv_bytes())
    [from_csv] = outcomes(csv_path)
    assert outcome.data == from_csv.data  # both templates say the same thing


def test_validate_file_yields_row_outcomes(tmp_path):
    path = write_csv(
        tmp_path / "mixed.csv", rows_of([good_values(), good_values(loan_amount="abc")])
    )
    good, bad = outcomes(path)
    assert isinstance(good, RowOutcome) and good.ok and good.data is not None
    assert (bad.row_number, bad.data, list(errors_of(bad))) == (3, None, ["loan_amount"])


# --- Properties --------------------------------------------------------------------------------

FULLWIDTH = str.maketrans("0123456789,.-/", "０１２３４５６７８９，．－／")


def amount_forms(amount: Decimal) -> list:
    plain = f"{amount:.2f}"
    grouped = f"{amount:,.2f}"
    short = plain.rstrip("0").rstrip(".") if "." in plain else plain
    forms = [
        plain,
        short,
        grouped,
        f"¥{grouped}",
        f"￥{plain}",
        f"¥ {short}",
        plain.translate(FULLWIDTH),
        f"￥{grouped}".translate(FULLWIDTH),
        amount,
        float(amount),  # a number cell of a workbook
    ]
    if amount == amount.to_integral_value():
        forms.append(int(amount))
    return forms


@given(st.decimals(min_value=0, max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_amount_parser_round_trips_every_textual_form(amount):
    for form in amount_forms(amount):
        parsed = parse_amount(form)
        assert parsed == amount, form
        assert parsed.as_tuple().exponent == -2, form


def date_forms(day: datetime.date) -> list:
    y, m, d = day.year, day.month, day.day
    texts = [
        day.isoformat(),
        f"{y}-{m}-{d}",
        f"{y}/{m}/{d}",
        f"{y}/{m:02d}/{d:02d}",
        f"{y}.{m}.{d}",
        f"{y}.{m:02d}.{d:02d}",
        f"{y}年{m}月{d}日",
        f"{y}年{m:02d}月{d:02d}日",
    ]
    return [
        *texts,
        *(t.translate(FULLWIDTH) for t in texts),
        day,
        datetime.datetime.combine(day, datetime.time(13, 45)),
        to_excel(day),  # the serial number of a date cell formatted as a number
        int(to_excel(day)),
    ]


@given(st.dates(min_value=datetime.date(1990, 1, 1), max_value=datetime.date(2030, 12, 31)))
def test_date_parser_round_trips_every_textual_form(day):
    for form in date_forms(day):
        assert parse_date(form) == day, form


cell_values = st.one_of(
    st.none(),
    st.text(),
    st.text(alphabet="0123456789０１２３４５６７８９-/.,年月日¥￥ xX()（）号执京", max_size=25),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(),
    st.decimals(),
    st.dates(),
    st.datetimes(),
    st.booleans(),
    st.sampled_from(
        [
            "个人",
            "企业",
            "USCC",
            "居民身份证",
            RIC,
            USCC,
            "逾期",
            "法院判决未履行",
            "短信",
            "借款人",
            "2024-03-05",
            "¥12,345.60",
            "(2023)京0105执1234号",
            "13800138000",
        ]
    ),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional={key: cell_values for key in KEYS}))
def test_parse_row_never_raises_on_arbitrary_cells(values):
    result = parse_row(values, today=TODAY)

    assert (result.data is None) == bool(result.errors)
    for key, message in result.errors:
        assert key in KEYS
        assert str(message)  # the lazy message renders
    if result.data is not None:
        assert len(row_fingerprint(result.data)) == 64


@settings(max_examples=200)
@given(st.lists(st.one_of(st.none(), st.text(), st.sampled_from(HEADERS + KEYS)), max_size=25))
def test_map_header_only_ever_raises_header_error(cells):
    try:
        header = map_header(cells)
    except HeaderError as exc:
        assert exc.problems
        assert all(str(p) for p in exc.problems)
    else:
        assert {c.key for c in COLUMNS if c.required} <= set(header.positions)
