"""Identifier normalisation, validation and masking (no database).

Everything that stores, indexes or looks up a subject goes through ``normalize_*`` first, so the
same person typed with full-width digits, spaces or a lower-case ``x`` gets the same canonical
value (and so the same blind index). Validation errors carry a stable ``code`` for programs and a
lazily translated ``message`` that says exactly what is wrong, for people.

The check-character maths is written out here (a few lines each) rather than taken from
python-stdnum: stdnum's USCC validator is stricter than GB 32100 registration authorities
(it rejects ``A``/``N``/``Y``), and the tests use stdnum as an independent oracle instead.
"""

import datetime
import re

from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from .choices import IdType, SubjectType

__all__ = [
    "IdentifierError",
    "birth_date_of",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "normalize_id_number",
    "normalize_name",
    "normalize_phone",
    "subject_type_for",
    "to_halfwidth",
]


class IdentifierError(ValueError):
    """An identifier that cannot be normalised. ``code`` is stable; ``message`` is translated."""

    def __init__(self, message, code: str):
        super().__init__(message, code)
        self.message = message
        self.code = code

    def __str__(self):
        return str(self.message)


# --- Character clean-up ------------------------------------------------------------------------

# U+FF01–U+FF5E are the full-width forms of ASCII 0x21–0x7E; U+3000 is the ideographic space.
_HALFWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)}
_HALFWIDTH[0x3000] = 0x20

# Characters that sneak in from copy-paste (Word, Excel, web pages) and are never meaningful.
_INVISIBLE = {code: None for code in (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF)}

# Hyphen and dash look-alikes (the full-width hyphen is already '-' after to_halfwidth).
_HYPHENS = {
    code: None
    for code in (0x2D, 0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2212, 0xFE58, 0xFE63)
}

# Separators in transliterated minority and foreign names (买买提·艾力), typed many ways.
_MIDDLE_DOTS = {
    code: "·" for code in (0x0387, 0x2022, 0x2027, 0x2219, 0x22C5, 0x2E31, 0x30FB, 0xFF65)
}


def to_halfwidth(text: str) -> str:
    """Full-width ASCII (U+FF01–U+FF5E) and the ideographic space to their half-width forms."""
    return text.translate(_HALFWIDTH)


def _compact(raw) -> str:
    """Half-width, no whitespace, hyphens or invisible characters, upper case."""
    if raw is None:
        return ""
    text = to_halfwidth(str(raw)).translate(_INVISIBLE).translate(_HYPHENS)
    return "".join(text.split()).upper()


def _quoted_list(chars) -> str:
    return ", ".join(f"'{c}'" for c in chars)


def _bad_characters(value: str, allowed: str) -> list[str]:
    """The characters of value not in allowed, each once, in order of appearance."""
    return list(dict.fromkeys(c for c in value if c not in allowed))


def _reject_bad_characters(value: str, allowed: str, message):
    """message: a lazy string with a {found} placeholder, one whole sentence per ID type."""
    bad = _bad_characters(value, allowed)
    if bad:
        raise IdentifierError(format_lazy(message, found=_quoted_list(bad)), code="bad_characters")


_DIGITS = "0123456789"
_UPPER_ALNUM = _DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --- Check characters --------------------------------------------------------------------------

# ISO 7064 MOD 11-2 weights for the 17 data digits: 2^(17 - i) mod 11.
_MOD11_2_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))


def _mod11_2_check(digits17: str) -> str:
    total = sum(int(d) * w for d, w in zip(digits17, _MOD11_2_WEIGHTS, strict=True))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


# GB 32100-2015: digits and upper-case letters except I, O, Z, S, V (31 characters).
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_AUTHORITIES = "123456789ANY"


def _uscc_check(chars17: str) -> str:
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(chars17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


def _check_character(value: str, expected: str):
    if value[-1] != expected:
        raise IdentifierError(
            format_lazy(
                _("The check character should be {expected}, not {actual}."),
                expected=expected,
                actual=value[-1],
            ),
            code="bad_check_character",
        )


# --- 居民身份证 (RIC) --------------------------------------------------------------------------

# Province-level codes of GB/T 2260, plus 71 Taiwan, 81 Hong Kong, 82 Macao (also used on
# residence permits) and 83 (residence permits of Taiwan residents).
_PROVINCES = frozenset(
    [
        *range(11, 16),
        *range(21, 24),
        *range(31, 38),
        *range(41, 47),
        *range(50, 55),
        *range(61, 66),
        71,
        81,
        82,
        83,
    ]
)
_EARLIEST_BIRTH = datetime.date(1900, 1, 1)


def _today() -> datetime.date:
    # Asia/Shanghai today. Cheaper than timezone.localdate(), which goes through asgiref's
    # context-local lookup: this runs for every identifier of a bulk file.
    return datetime.datetime.now(timezone.get_default_timezone()).date()


def _birth_date(yyyymmdd: str) -> datetime.date:
    shown = f"{yyyymmdd[:4]}-{yyyymmdd[4:6]}-{yyyymmdd[6:]}"
    try:
        born = datetime.date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
    except ValueError:
        raise IdentifierError(
            format_lazy(_("Birth date {date} does not exist."), date=shown),
            code="impossible_birth_date",
        ) from None
    if born < _EARLIEST_BIRTH:
        raise IdentifierError(
            format_lazy(_("Birth date {date} is before 1900."), date=shown),
            code="impossible_birth_date",
        )
    if born > _today():
        raise IdentifierError(
            format_lazy(_("Birth date {date} is in the future."), date=shown),
            code="impossible_birth_date",
        )
    return born


def _normalize_ric(value: str) -> str:
    _reject_bad_characters(
        value,
        _DIGITS + "X",
        _("A resident ID number may contain only digits and a final X; found {found}."),
    )
    if len(value) not in (15, 18):
        raise IdentifierError(
            format_lazy(
                _(
                    "A resident ID number has 18 characters (or 15 for the old format); "
                    "this one has {length}."
                ),
                length=len(value),
            ),
            code="wrong_length",
        )
    if len(value) == 15 and "X" in value:
        raise IdentifierError(
            _("An old 15-digit resident ID number has only digits; it cannot contain X."),
            code="bad_characters",
        )
    if "X" in value[:-1]:
        raise IdentifierError(
            _("X may only be the last character of a resident ID number."),
            code="bad_characters",
        )
    if int(value[:2]) not in _PROVINCES:
        raise IdentifierError(
            format_lazy(
                _("A resident ID number begins with a province code; {code} is not one."),
                code=value[:2],
            ),
            code="bad_region",
        )
    if len(value) == 15:
        # Legacy cards: 6 region + YYMMDD + 3 sequence, all born in the 1900s, no check character.
        _birth_date("19" + value[6:12])
        body = value[:6] + "19" + value[6:]
        return body + _mod11_2_check(body)
    _birth_date(value[6:14])
    _check_character(value, _mod11_2_check(value[:17]))
    return value


def birth_date_of(ric: str) -> datetime.date:
    """The birth date encoded in a normalised 18-digit resident ID number."""
    value = _compact(ric)
    if len(value) != 18 or not all(c in _DIGITS for c in value[6:14]):
        raise IdentifierError(
            _("A birth date can only be read from a normalised 18-character resident ID number."),
            code="bad_format",
        )
    return _birth_date(value[6:14])


# --- 统一社会信用代码 (USCC) ---------------------------------------------------------------------


def _normalize_uscc(value: str) -> str:
    _reject_bad_characters(
        value,
        _USCC_ALPHABET,
        _(
            "A unified social credit code may contain only digits and letters other than "
            "I, O, S, V and Z; found {found}."
        ),
    )
    if len(value) != 18:
        raise IdentifierError(
            format_lazy(
                _("A unified social credit code has 18 characters; this one has {length}."),
                length=len(value),
            ),
            code="wrong_length",
        )
    if value[0] not in _USCC_AUTHORITIES:
        raise IdentifierError(
            format_lazy(
                _(
                    "A unified social credit code begins with its registration authority "
                    "(1–9, A, N or Y), not {first}."
                ),
                first=value[0],
            ),
            code="bad_format",
        )
    _check_character(value, _uscc_check(value[:17]))
    return value


# --- Passports and permits ---------------------------------------------------------------------


def _normalize_passport(value: str) -> str:
    _reject_bad_characters(
        value,
        _UPPER_ALNUM,
        _("A passport number may contain only letters A–Z and digits; found {found}."),
    )
    if not 5 <= len(value) <= 20:
        raise IdentifierError(
            format_lazy(
                _("A passport number has 5 to 20 characters; this one has {length}."),
                length=len(value),
            ),
            code="wrong_length",
        )
    return value


def _normalize_hkmo(value: str) -> str:
    _reject_bad_characters(
        value,
        _UPPER_ALNUM,
        _(
            "A Hong Kong/Macao permit number may contain only H or M followed by digits; "
            "found {found}."
        ),
    )
    if value[0] not in "HM":
        raise IdentifierError(
            format_lazy(
                _("A Hong Kong/Macao permit number begins with H or M, not {first}."),
                first=value[0],
            ),
            code="bad_format",
        )
    letters = _bad_characters(value[1:], _DIGITS)
    if letters:
        raise IdentifierError(
            format_lazy(
                _(
                    "A Hong Kong/Macao permit number has only digits after its first letter; "
                    "found {found}."
                ),
                found=_quoted_list(letters),
            ),
            code="bad_characters",
        )
    if len(value) - 1 not in (8, 10):
        raise IdentifierError(
            format_lazy(
                _(
                    "A Hong Kong/Macao permit number has 8 or 10 digits after its letter; "
                    "this one has {length}."
                ),
                length=len(value) - 1,
            ),
            code="wrong_length",
        )
    return value


# 10-digit (old) permits may carry an issue letter, written 1234567890(B), [B] or plain B.
_TW_PATTERN = re.compile(r"([0-9]+)(?:\(([A-Z])\)|\[([A-Z])\]|([A-Z]))?")


def _normalize_tw(value: str) -> str:
    _reject_bad_characters(
        value,
        _UPPER_ALNUM + "()[]",
        _(
            "A Taiwan permit number may contain only digits and one letter in brackets; "
            "found {found}."
        ),
    )
    match = _TW_PATTERN.fullmatch(value)
    if match is None:
        raise IdentifierError(
            _(
                "A Taiwan permit number is 8 digits, or 10 digits optionally followed by one "
                "letter, e.g. 1234567890(B)."
            ),
            code="bad_format",
        )
    digits = match.group(1)
    letter = match.group(2) or match.group(3) or match.group(4) or ""
    if len(digits) not in (8, 10):
        raise IdentifierError(
            format_lazy(
                _("A Taiwan permit number has 8 or 10 digits; this one has {length}."),
                length=len(digits),
            ),
            code="wrong_length",
        )
    if letter and len(digits) == 8:
        raise IdentifierError(
            _("Only the old 10-digit Taiwan permit numbers end with a letter."),
            code="bad_format",
        )
    # Canonical form without brackets, so every spelling gets the same blind index.
    return digits + letter


def _normalize_fpr(value: str) -> str:
    _reject_bad_characters(
        value,
        _UPPER_ALNUM,
        _(
            "A foreign permanent resident ID number may contain only letters A–Z and digits; "
            "found {found}."
        ),
    )
    if len(value) == 15:
        # 1st generation card: ISO 3166 alpha-3 nationality + 12 digits. Kept lenient: the
        # embedded birth date is not checked (old cards do not all follow it).
        if not re.fullmatch(r"[A-Z]{3}[0-9]{12}", value):
            raise IdentifierError(
                _(
                    "A 15-character foreign permanent resident ID number is 3 letters "
                    "(the nationality) followed by 12 digits."
                ),
                code="bad_format",
            )
        return value
    if len(value) == 18:
        # 2023 card: like a resident ID number, starting with 9, with a MOD 11-2 check.
        if not re.fullmatch(r"9[0-9]{16}[0-9X]", value):
            raise IdentifierError(
                _(
                    "An 18-character foreign permanent resident ID number begins with 9 and has "
                    "only digits, except a final check character that may be X."
                ),
                code="bad_format",
            )
        _check_character(value, _mod11_2_check(value[:17]))
        return value
    raise IdentifierError(
        format_lazy(
            _(
                "A foreign permanent resident ID number has 15 characters (old cards) or 18 "
                "(since 2023); this one has {length}."
            ),
            length=len(value),
        ),
        code="wrong_length",
    )


_NORMALIZERS = {
    IdType.RIC.value: _normalize_ric,
    IdType.USCC.value: _normalize_uscc,
    IdType.PASSPORT.value: _normalize_passport,
    IdType.HKMO.value: _normalize_hkmo,
    IdType.TW.value: _normalize_tw,
    IdType.FPR.value: _normalize_fpr,
}


def _normalizer_for(id_type):
    try:
        return _NORMALIZERS[id_type]
    except (KeyError, TypeError):  # TypeError: an unhashable id_type
        raise IdentifierError(
            format_lazy(_("Unknown ID type: {id_type}."), id_type=id_type),
            code="unknown_id_type",
        ) from None


def normalize_id_number(id_type: str, raw: str) -> str:
    """The canonical form of an ID number of the given IdType, or IdentifierError.

    Full-width characters, whitespace (including U+3000), hyphens and lower case are
    normalised away; a legacy 15-digit resident ID number comes back as its 18-digit form.
    """
    normalizer = _normalizer_for(id_type)
    value = _compact(raw)
    if not value:
        raise IdentifierError(_("The ID number is empty."), code="empty")
    return normalizer(value)


def subject_type_for(id_type: str) -> str:
    """Enterprises are identified by a USCC; every other ID type belongs to a person."""
    _normalizer_for(id_type)  # rejects unknown types
    return SubjectType.ENTERPRISE if id_type == IdType.USCC else SubjectType.PERSON


# --- Phones and names --------------------------------------------------------------------------

_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def normalize_phone(raw: str) -> str:
    """A mainland mobile number as 11 digits ('+86', '0086', '86', spaces, dashes allowed)."""
    value = _compact(raw)
    if not value:
        raise IdentifierError(_("The phone number is empty."), code="bad_phone")
    if value.startswith("+"):
        if not value.startswith("+86"):
            raise IdentifierError(
                _("Only mainland China mobile numbers (+86) are accepted."), code="bad_phone"
            )
        value = value[3:]
    elif len(value) == 15 and value.startswith("0086"):
        value = value[4:]
    elif len(value) == 13 and value.startswith("86"):
        value = value[2:]
    bad = _bad_characters(value, _DIGITS)
    if bad:
        raise IdentifierError(
            format_lazy(
                _(
                    "A phone number may contain only digits, spaces, dashes and a leading +86; "
                    "found {found}."
                ),
                found=_quoted_list(bad),
            ),
            code="bad_phone",
        )
    if len(value) != 11:
        raise IdentifierError(
            format_lazy(
                _("A mainland mobile number has 11 digits; this one has {length}."),
                length=len(value),
            ),
            code="bad_phone",
        )
    if not _MOBILE.fullmatch(value):
        raise IdentifierError(
            format_lazy(
                _("A mainland mobile number begins with 13 to 19, not {prefix}."),
                prefix=value[:2],
            ),
            code="bad_phone",
        )
    return value


# Spaces typed between two Chinese characters (张 三) or around a middle dot carry no meaning;
# they would otherwise make the same name two different names for exact lookup.
_HAN = r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
_SPACE_BETWEEN_HAN = re.compile(rf"(?<={_HAN}) (?={_HAN})")
_SPACE_AROUND_DOT = re.compile(r" ?· ?")


def normalize_name(raw: str) -> str:
    """A name with half-width ASCII, single spaces, and one kind of middle dot ('·')."""
    text = "" if raw is None else to_halfwidth(str(raw)).translate(_INVISIBLE)
    text = " ".join(text.translate(_MIDDLE_DOTS).split())
    text = _SPACE_AROUND_DOT.sub("·", _SPACE_BETWEEN_HAN.sub("", text))
    if not text:
        raise IdentifierError(_("The name is empty."), code="empty")
    return text


# --- Masking -----------------------------------------------------------------------------------


def _mask(value: str, head: int, tail: int) -> str:
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_id_number(value: str) -> str:
    """Stars in the middle, same length; never the whole value.

    15 characters and more (resident ID, USCC, FPR) show the first 6 and last 4; shorter ones
    (passports, permits) the first 2 and last 2, so that at least a third stays hidden; 4 or
    fewer characters show only the first.
    """
    if len(value) >= 15:
        return _mask(value, 6, 4)
    if len(value) >= 5:
        return _mask(value, 2, 2)
    if len(value) >= 2:
        return _mask(value, 1, 0)
    return "*" * len(value)


def mask_phone(phone: str) -> str:
    """'13812345678' → '138****5678'; anything else is masked like an ID number."""
    if len(phone) == 11:
        return _mask(phone, 3, 4)
    return mask_id_number(phone)


_ENTERPRISE_WORDS = re.compile(
    r"公司|有限|集团|合作社|企业|中心|银行|分行|支行|商行|商店|事务所|工作室|合伙|经营部|门市部"
    r"|厂|协会|基金会|学校|医院|研究院|研究所"
    r"|\b(?:co|ltd|limited|inc|llc|llp|corp|corporation|company|bank|group|gmbh|plc)\b",
    re.IGNORECASE,
)


def mask_name(name: str) -> str:
    """'张三' → '张*'; enterprise names longer than 6 show the first 2 and last 4.

    An enterprise name is public and its suffix (有限公司) says little, so more of it is shown;
    a person's name shows only the first character (the family name, usually).
    """
    if len(name) > 6 and _ENTERPRISE_WORDS.search(name):
        return name[:2] + "**" + name[-4:]
    if len(name) <= 1:
        return "*" * len(name)
    return _mask(name, 1, 0)
