"""Parsing and validating one data row of a bulk report file (import-format.md, "Columns").

``parse_row`` never raises on bad input: it returns every problem of the row, each tied to its
column, so the dry run can report all of them at once.
"""

import datetime
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from ..choices import (
    NEEDS_COURT_FIELDS,
    NEEDS_DELINQUENT_SINCE,
    NEEDS_OVERDUE_AMOUNT,
    Category,
    IdType,
    NoticeMethod,
    SubjectRole,
    SubjectType,
)
from ..identifiers import (
    IdentifierError,
    normalize_id_number,
    normalize_name,
    normalize_phone,
    subject_type_for,
    to_halfwidth,
)
from .columns import COLUMNS

# CNY; anything larger is a typo, not a microloan (and would not fit the 14-digit columns).
MAX_AMOUNT = Decimal("999999999999.99")
NAME_MAX_LENGTH = 100
CONTRACT_NO_MAX_LENGTH = 64
REMARKS_MAX_LENGTH = 500
# Not fixed by import-format.md; generous bounds so that a runaway cell cannot reach the
# database (the longest court name is about 30 characters, a case number about 25).
COURT_NAME_MAX_LENGTH = 200
CASE_NUMBER_MAX_LENGTH = 64

FINGERPRINT_VERSION = 1

_CENT = Decimal("0.01")
_SHOWN_MAX = 60  # characters of a bad value quoted back in a message
_COLUMN_ORDER = {column.key: i for i, column in enumerate(COLUMNS)}


class FieldError(ValueError):
    """A cell value that cannot be parsed; ``message`` is lazy translated."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return str(self.message)


@dataclass(frozen=True)
class ParsedRow:
    subject_type: str
    id_type: str
    id_number: str
    name: str
    phone: str  # "" when not given
    role: str
    contract_no: str
    category: str
    loan_amount: Decimal
    overdue_amount: Decimal | None
    delinquent_since: datetime.date | None
    court_name: str
    case_number: str
    judgment_date: datetime.date | None
    notified_on: datetime.date
    notice_method: str
    settled_on: datetime.date | None
    remarks: str


@dataclass
class RowResult:
    data: ParsedRow | None  # None when the row has any error
    errors: list[tuple[str, object]] = field(default_factory=list)  # (column key, message)

    @property
    def ok(self) -> bool:
        return not self.errors


# --- Cell values as text -----------------------------------------------------------------------


def cell_text(value) -> str:
    """A cell value as stripped text; numbers from a workbook without a spurious ``.0``."""
    if type(value) is str:  # most cells: the fast path of the last line
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime.datetime):
        if value.time() == datetime.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value).strip()


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 1] + "…"


# --- Enumerations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Vocabulary:
    """An enumerated column: the Chinese terms of import-format.md and the English values."""

    terms: tuple[tuple[str, str], ...]  # (Chinese, value)
    unknown: object  # lazy message with {value} and {choices}
    lookup: dict[str, str] = field(init=False, repr=False, compare=False)
    seen: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        lookup = {}
        for chinese, value in self.terms:
            lookup[_term_key(chinese)] = value
            lookup[_term_key(value)] = value
        object.__setattr__(self, "lookup", lookup)
        object.__setattr__(self, "seen", {})

    @property
    def choices(self) -> str:
        return ", ".join(f"{chinese} {value}" for chinese, value in self.terms)

    def parse(self, text: str) -> str:
        # A file repeats a handful of terms: remember the texts already matched.
        value = self.seen.get(text)
        if value is not None:
            return value
        try:
            value = self.lookup[_term_key(text)]
        except KeyError:
            raise FieldError(
                format_lazy(self.unknown, value=_shown(text), choices=self.choices)
            ) from None
        if len(self.seen) < 1000:
            self.seen[text] = value
        return value

    def chinese(self, value: str) -> str:
        return next(chinese for chinese, v in self.terms if v == value)


def _term_key(text: str) -> str:
    return "".join(to_halfwidth(text).split()).casefold()


SUBJECT_TYPES = Vocabulary(
    terms=(("个人", SubjectType.PERSON.value), ("企业", SubjectType.ENTERPRISE.value)),
    unknown=_("Unknown subject type “{value}”; use one of: {choices}."),
)
ID_TYPES = Vocabulary(
    terms=(
        ("居民身份证", IdType.RIC.value),
        ("统一社会信用代码", IdType.USCC.value),
        ("护照", IdType.PASSPORT.value),
        ("港澳居民来往内地通行证", IdType.HKMO.value),
        ("台湾居民来往大陆通行证", IdType.TW.value),
        ("外国人永久居留身份证", IdType.FPR.value),
    ),
    unknown=_("Unknown ID type “{value}”; use one of: {choices}."),
)
ROLES = Vocabulary(
    terms=(("借款人", SubjectRole.BORROWER.value), ("担保人", SubjectRole.GUARANTOR.value)),
    unknown=_("Unknown subject role “{value}”; use one of: {choices}."),
)
CATEGORIES = Vocabulary(
    terms=(
        ("逾期", Category.OVERDUE.value),
        ("骗贷", Category.FRAUD.value),
        ("恶意拖欠", Category.MALICIOUS_DEFAULT.value),
        ("担保代偿", Category.GUARANTOR_DEFAULT.value),
        ("法院判决未履行", Category.COURT_JUDGMENT.value),
    ),
    unknown=_("Unknown category “{value}”; use one of: {choices}."),
)
NOTICE_METHODS = Vocabulary(
    terms=(
        ("短信", NoticeMethod.SMS.value),
        ("信函", NoticeMethod.LETTER.value),
        ("电话", NoticeMethod.PHONE.value),
        ("当面", NoticeMethod.IN_PERSON.value),
        ("电子邮件", NoticeMethod.EMAIL.value),
    ),
    unknown=_("Unknown notice method “{value}”; use one of: {choices}."),
)

VOCABULARIES: dict[str, Vocabulary] = {
    "subject_type": SUBJECT_TYPES,
    "id_type": ID_TYPES,
    "role": ROLES,
    "category": CATEGORIES,
    "notice_method": NOTICE_METHODS,
}


# --- Amounts -----------------------------------------------------------------------------------

# [0-9], not \d: \d would also let Arabic-Indic and other digits through to Decimal().
_AMOUNT_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_AMOUNT_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_YUAN_SIGNS = ("¥", "\uffe5")  # half-width (U+00A5) and full-width (U+FFE5) yuan signs


def parse_amount(value) -> Decimal:
    """A CNY amount with 2 decimal places, from text (``12345.6``, ``12,345.60``,
    ``¥12,345.60``, ``￥12345.6``, full-width digits) or a number from a workbook."""
    if isinstance(value, bool):
        raise _not_an_amount(str(value))
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _not_an_amount(repr(value))
        # Excel keeps 15 significant digits: 0.1 + 0.2 is 0.3 to the user, not
        # 0.30000000000000004, so read the float at that precision.
        amount = Decimal(format(value, ".15g"))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise _not_an_amount(str(value))
        amount = value
    else:
        amount = _parse_amount_text(cell_text(value))
    return _checked_amount(amount)


def _parse_amount_text(text: str) -> Decimal:
    s = to_halfwidth(text).strip()
    negative = False
    if s.startswith("-"):
        negative, s = True, s[1:].strip()
    if s.startswith(_YUAN_SIGNS):
        s = s[1:].strip()
    if not negative and s.startswith("-"):
        negative, s = True, s[1:].strip()
    if not (_AMOUNT_PLAIN.fullmatch(s) or _AMOUNT_GROUPED.fullmatch(s)):
        raise _not_an_amount(text)
    amount = Decimal(s.replace(",", ""))
    return -amount if negative else amount


def _not_an_amount(text: str) -> FieldError:
    return FieldError(
        format_lazy(
            _("“{value}” is not an amount; write it like 12345.60, 12,345.60 or ¥12,345.60."),
            value=_shown(text),
        )
    )


def _checked_amount(amount: Decimal) -> Decimal:
    if amount < 0:
        shown = amount.quantize(_CENT, ROUND_HALF_UP) if amount > -MAX_AMOUNT else amount
        raise FieldError(format_lazy(_("Amount must not be negative: {amount}."), amount=shown))
    if amount > MAX_AMOUNT:
        raise FieldError(
            format_lazy(
                _("Amount is too large: {amount}; the largest accepted is 999,999,999,999.99."),
                amount=_shown(str(amount)),
            )
        )
    try:
        cents = amount.quantize(_CENT, ROUND_HALF_UP)
    except InvalidOperation:  # an exponent beyond the context (e.g. Decimal("1E-999999"))
        cents = None
    if cents != amount:
        raise FieldError(
            format_lazy(
                _(
                    "Amount has more than 2 decimal places: {amount}; amounts are in yuan and "
                    "fen (e.g. 12345.60)."
                ),
                amount=_shown(str(amount)),
            )
        )
    return cents if cents else Decimal("0.00")  # never "-0.00"


# --- Dates -------------------------------------------------------------------------------------

_TIME = r"(?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?)?"
_DATE_PATTERNS = tuple(
    re.compile(pattern + _TIME)
    for pattern in (
        r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})",
        r"([0-9]{4})/([0-9]{1,2})/([0-9]{1,2})",
        r"([0-9]{4})\.([0-9]{1,2})\.([0-9]{1,2})",
        r"([0-9]{4}) ?年 ?([0-9]{1,2}) ?月 ?([0-9]{1,2}) ?日",
    )
)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Excel's 1900 date system: serial 1 is 1900-01-01, and serial 60 is the 29 February 1900
# that Lotus 1-2-3 invented and Excel kept; serial 2958465 is 9999-12-31.
_EXCEL_SERIAL_MAX = 2958465


def parse_date(value) -> datetime.date:
    """A date from text (``2024-03-05``, ``2024/3/5``, ``2024.3.5``, ``2024年3月5日``), a
    date or datetime from a workbook, or an Excel serial number (a date cell formatted as a
    number)."""
    if isinstance(value, datetime.datetime):
        return value.date()
    if isinstance(value, datetime.date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _excel_serial_date(value)
    text = cell_text(value)
    if _ISO_DATE.fullmatch(text):  # what the first pattern below would match, sooner
        try:
            return datetime.date(int(text[:4]), int(text[5:7]), int(text[8:]))
        except ValueError:
            pass  # the message comes from below
    s = " ".join(to_halfwidth(text).split())
    for pattern in _DATE_PATTERNS:
        match = pattern.fullmatch(s)
        if match:
            year, month, day = (int(g) for g in match.groups())
            try:
                return datetime.date(year, month, day)
            except ValueError:
                raise FieldError(
                    format_lazy(
                        _("Impossible date “{value}”: there is no such day."),
                        value=_shown(text),
                    )
                ) from None
    raise _not_a_date(text)


def _excel_serial_date(value: float) -> datetime.date:
    if not (math.isfinite(value) and 1 <= value < _EXCEL_SERIAL_MAX + 1):
        raise _not_a_date(cell_text(value))
    days = math.floor(value)
    if days == 60:
        raise FieldError(
            format_lazy(_("Impossible date “{value}”: there is no such day."), value="1900-02-29")
        )
    base = datetime.date(1899, 12, 31) if days < 60 else datetime.date(1899, 12, 30)
    return base + datetime.timedelta(days=days)


def _not_a_date(text: str) -> FieldError:
    return FieldError(
        format_lazy(
            _(
                "“{value}” is not a date; write it like 2024-03-05, 2024/3/5, 2024.3.5 or "
                "2024年3月5日."
            ),
            value=_shown(text),
        )
    )


# --- Case numbers ------------------------------------------------------------------------------

# (2023)京0105执1234号: year, court abbreviation and code, case type, sequence. [0-9] rather
# than \d, which would accept any Unicode digit.
CASE_NUMBER_PATTERN = re.compile(
    r"\([0-9]{4}\)[\u4e00-\u9fa5]{1,2}[0-9]{0,4}[\u4e00-\u9fa5]{1,3}[0-9]+号"
)
# Official documents write the year in full-width （） (half-width after to_halfwidth) or 〔〕.
_CASE_BRACKETS = str.maketrans({"〔": "(", "〕": ")"})


def normalize_case_number(text: str) -> str:
    """Half-width brackets and digits, no spaces: ``（2023）京0105执1234号`` →
    ``(2023)京0105执1234号``; FieldError when it is not shaped like a case number."""
    value = "".join(to_halfwidth(text).translate(_CASE_BRACKETS).split())
    if len(value) > CASE_NUMBER_MAX_LENGTH or not CASE_NUMBER_PATTERN.fullmatch(value):
        raise FieldError(
            format_lazy(
                _("“{value}” is not a case number; write it like (2023)京0105执1234号."),
                value=_shown(text),
            )
        )
    return value


# --- The row -----------------------------------------------------------------------------------


def parse_row(values: Mapping[str, object], *, today: datetime.date) -> RowResult:
    """Parse and validate one data row. ``values`` maps column keys to cell values (a missing
    key is an empty cell); ``today`` is the reporting member's date, for "not in the future".

    Returns every error of the row as ``(column key, lazy message)``; ``data`` is set only when
    there is none.
    """
    errors: list[tuple[str, object]] = []
    out: dict[str, object] = {}

    raw = values.get
    texts = {key: cell_text(values.get(key)) for key in _COLUMN_ORDER}
    text = texts.__getitem__

    def required(key, hint=None):
        if hint is None:
            errors.append((key, _("A value is required.")))
        else:
            errors.append(
                (key, format_lazy(_("A value is required; use one of: {choices}."), choices=hint))
            )

    # Enumerations.
    for key, vocabulary in VOCABULARIES.items():
        out[key] = None
        if not text(key):
            required(key, vocabulary.choices)
            continue
        try:
            out[key] = vocabulary.parse(text(key))
        except FieldError as exc:
            errors.append((key, exc.message))

    # Identifiers and name.
    out["id_number"] = None
    if not text("id_number"):
        required("id_number")
    elif out["id_type"] is not None:
        try:
            out["id_number"] = normalize_id_number(out["id_type"], text("id_number"))
        except IdentifierError as exc:
            errors.append(("id_number", _id_number_message(exc, raw("id_number"))))

    if out["subject_type"] is not None and out["id_type"] is not None:
        expected = str(subject_type_for(out["id_type"]))
        if out["subject_type"] != expected:
            errors.append(
                (
                    "subject_type",
                    format_lazy(
                        _(
                            "Subject type {given} does not match ID type {id_type}: a unified "
                            "social credit code (USCC) identifies an enterprise (企业), every "
                            "other ID type a person (个人). Use {expected}."
                        ),
                        given=f"{SUBJECT_TYPES.chinese(out['subject_type'])} {out['subject_type']}",
                        id_type=f"{ID_TYPES.chinese(out['id_type'])} {out['id_type']}",
                        expected=f"{SUBJECT_TYPES.chinese(expected)} {expected}",
                    ),
                )
            )

    out["name"] = None
    if not text("name"):
        required("name")
    else:
        try:
            out["name"] = normalize_name(text("name"))
        except IdentifierError as exc:
            errors.append(("name", exc.message))
        else:
            _check_length(errors, "name", out["name"], NAME_MAX_LENGTH)

    out["phone"] = ""
    if text("phone"):
        try:
            out["phone"] = normalize_phone(text("phone"))
        except IdentifierError as exc:
            errors.append(("phone", exc.message))

    # Contract.
    out["contract_no"] = text("contract_no")
    if not out["contract_no"]:
        required("contract_no")
    else:
        _check_length(errors, "contract_no", out["contract_no"], CONTRACT_NO_MAX_LENGTH)

    # Amounts and dates.
    for key, parser, is_required in (
        ("loan_amount", parse_amount, True),
        ("overdue_amount", parse_amount, False),
        ("delinquent_since", parse_date, False),
        ("judgment_date", parse_date, False),
        ("notified_on", parse_date, True),
        ("settled_on", parse_date, False),
    ):
        out[key] = None
        if not text(key):
            if is_required:
                required(key)
            continue
        try:
            out[key] = parser(raw(key))
        except FieldError as exc:
            errors.append((key, exc.message))

    for key, message in (
        ("notified_on", _("The notice date {date} is in the future; it must be today or earlier.")),
        (
            "settled_on",
            _("The settlement date {date} is in the future; it must be today or earlier."),
        ),
    ):
        if out[key] is not None and out[key] > today:
            errors.append((key, format_lazy(message, date=out[key].isoformat())))

    # Court fields.
    out["court_name"] = text("court_name")
    _check_length(errors, "court_name", out["court_name"], COURT_NAME_MAX_LENGTH)
    out["case_number"] = ""
    if text("case_number"):
        try:
            out["case_number"] = normalize_case_number(text("case_number"))
        except FieldError as exc:
            errors.append(("case_number", exc.message))

    out["remarks"] = text("remarks")
    _check_length(errors, "remarks", out["remarks"], REMARKS_MAX_LENGTH)

    # What the category requires. Only a column left empty is reported here: a value that
    # is present but bad already has its own error.
    category = out["category"]
    if category is not None:
        needed = []
        if category in NEEDS_OVERDUE_AMOUNT:
            needed.append("overdue_amount")
        if category in NEEDS_DELINQUENT_SINCE:
            needed.append("delinquent_since")
        if category in NEEDS_COURT_FIELDS:
            needed += ["court_name", "case_number", "judgment_date"]
        for key in needed:
            if not text(key):
                errors.append(
                    (
                        key,
                        format_lazy(
                            _("A value is required for category {category}."),
                            category=f"{CATEGORIES.chinese(category)} {category}",
                        ),
                    )
                )

    if errors:
        return RowResult(data=None, errors=_in_column_order(errors))
    return RowResult(data=ParsedRow(**out), errors=[])


def _check_length(errors, key: str, value: str, limit: int) -> None:
    if len(value) > limit:
        errors.append(
            (
                key,
                format_lazy(
                    _("Too long: {length} characters; at most {limit} are allowed."),
                    length=len(value),
                    limit=limit,
                ),
            )
        )


def _id_number_message(exc: IdentifierError, raw_value):
    if isinstance(raw_value, float):
        # Excel turned the ID number into a number and kept only 15 significant digits.
        return format_lazy(
            _(
                "{error} The cell holds a number, and Excel keeps only 15 digits of a number: "
                "format the column as text and type the ID number again."
            ),
            error=exc.message,
        )
    return exc.message


def _in_column_order(errors):
    # Stable sort: a column's own errors keep the order they were found in.
    return sorted(errors, key=lambda e: _COLUMN_ORDER.get(e[0], len(_COLUMN_ORDER)))


# --- Fingerprint -------------------------------------------------------------------------------


_SORTED_FIELDS = tuple(sorted(f.name for f in fields(ParsedRow)))
_FINGERPRINT_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _canonical(value):
    if value is None:
        return None
    if type(value) is str:
        return value
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def row_fingerprint(parsed: ParsedRow, *, key: bytes | None = None) -> str:
    """A stable SHA-256 hex digest of a row's canonical content (field names and normalised
    values; not its row number), so the same row uploaded again is recognised.

    With ``key`` it is an HMAC-SHA-256: the content includes ID numbers and names, so a
    fingerprint that is stored should be keyed (e.g. with the blind-index key), or a database
    dump would let anyone confirm a guessed identifier.
    """
    # The same JSON as json.dumps(..., sort_keys=True): keys are put in sorted order here and
    # the encoder is made once (this runs for every row of a bulk file).
    content = {name: _canonical(getattr(parsed, name)) for name in _SORTED_FIELDS}
    payload = _FINGERPRINT_ENCODER.encode({"row": content, "v": FINGERPRINT_VERSION}).encode()
    if key is not None:
        return hmac.new(key, payload, hashlib.sha256).hexdigest()
    return hashlib.sha256(payload).hexdigest()
