"""registry.identifiers: normalisation, validation messages and masks. No database.

Valid numbers are built with python-stdnum's check-character functions, an implementation
independent of ours, so a wrong weight or modulus on our side cannot hide behind its own tests.
"""

import datetime

import pytest
from django.utils import timezone, translation
from django.utils.functional import Promise
from hypothesis import assume, given
from hypothesis import strategies as st
from stdnum.cn import ric as stdnum_ric
from stdnum.cn import uscc as stdnum_uscc

from registry.choices import IdType, SubjectType
from registry.identifiers import (
    IdentifierError,
    birth_date_of,
    mask_id_number,
    mask_name,
    mask_phone,
    normalize_id_number,
    normalize_name,
    normalize_phone,
    subject_type_for,
    to_halfwidth,
)

CODES = {
    "bad_check_character",
    "impossible_birth_date",
    "wrong_length",
    "bad_characters",
    "bad_region",
    "empty",
    "bad_format",
    "unknown_id_type",
    "bad_phone",
}
PROVINCES = [
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
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
TODAY = timezone.localdate()


@pytest.fixture(autouse=True, scope="module")
def english():
    # The messages are asserted in their English source text, whatever catalogs exist later.
    with translation.override("en"):
        yield


def make_ric(region: str = "110105", born: str = "19900101", seq: str = "002") -> str:
    body = region + born + seq
    # stdnum's calc_check_digit expects a number with a (placeholder) check character.
    return body + stdnum_ric.calc_check_digit(body + "0")


def make_uscc(body: str) -> str:
    return body + stdnum_uscc.calc_check_digit(body)


def wrong_check(valid: str, alphabet: str) -> str:
    return valid[:-1] + next(c for c in alphabet if c != valid[-1])


def error_of(id_type, raw) -> IdentifierError:
    with pytest.raises(IdentifierError) as caught:
        normalize_id_number(id_type, raw)
    return caught.value


def assert_error(id_type, raw, code: str, *fragments: str) -> None:
    error = error_of(id_type, raw)
    assert error.code == code
    for fragment in fragments:
        assert fragment in str(error.message)


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# --- IdentifierError and to_halfwidth ------------------------------------------------------------


def test_identifier_error_is_a_value_error_with_a_lazy_message_and_a_code():
    error = error_of(IdType.RIC, "")

    assert isinstance(error, ValueError)
    assert isinstance(error.message, Promise)
    assert error.code == "empty"
    assert str(error) == str(error.message) == "The ID number is empty."


def test_to_halfwidth_converts_fullwidth_ascii_and_the_ideographic_space():
    assert to_halfwidth("１２３ＡＢＣａｂｃ\u3000！～（）") == "123ABCabc !~()"


def test_to_halfwidth_leaves_chinese_and_characters_outside_the_block_alone():
    assert to_halfwidth("张三·有限公司\uff5f\uff00 a") == "张三·有限公司\uff5f\uff00 a"


# --- 居民身份证 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "11010519491231002X",
        "11010519491231002x",
        " 110105 19491231 002x ",
        "110105-19491231-002X",
        "１１０１０５１９４９１２３１００２Ｘ",
        "１１０１０５\u3000１９４９１２３１\u3000００２ｘ",
        "\ufeff110105\t19491231\n002X",
    ],
)
def test_published_resident_id_is_accepted_in_every_spelling(raw):
    assert normalize_id_number(IdType.RIC, raw) == "11010519491231002X"


@pytest.mark.parametrize("province", PROVINCES)
def test_every_province_code_is_accepted(province):
    ric = make_ric(region=f"{province:02d}0102")

    assert normalize_id_number(IdType.RIC, ric) == ric


def test_province_83_of_taiwan_residents_residence_permits_is_accepted():
    ric = make_ric(region="830000", born="19850615", seq="123")

    assert normalize_id_number(IdType.RIC, ric) == ric


@pytest.mark.parametrize("raw", ["", "   ", "\u3000", "--", None])
def test_empty_resident_id_is_rejected(raw):
    assert_error(IdType.RIC, raw, "empty", "The ID number is empty.")


def test_resident_id_with_17_characters_says_how_many_it_has():
    assert_error(
        IdType.RIC,
        "11010519900101002",
        "wrong_length",
        "A resident ID number has 18 characters (or 15 for the old format); this one has 17.",
    )


@pytest.mark.parametrize("raw", ["1101051949123100", "1101051949123100211"])
def test_resident_id_of_16_or_19_characters_is_wrong_length(raw):
    assert_error(IdType.RIC, raw, "wrong_length", f"this one has {len(raw)}.")


def test_resident_id_with_letters_names_the_bad_characters():
    assert_error(
        IdType.RIC,
        "11010519A91231#02X",
        "bad_characters",
        "only digits and a final X",
        "found 'A', '#'.",
    )


def test_x_in_the_middle_of_a_resident_id_is_rejected():
    assert_error(
        IdType.RIC,
        "1101051949123100X2",
        "bad_characters",
        "X may only be the last character of a resident ID number.",
    )


def test_old_15_digit_resident_id_cannot_contain_x():
    assert_error(IdType.RIC, "11010549123100X", "bad_characters", "only digits")


@pytest.mark.parametrize("province", ["00", "10", "16", "20", "24", "38", "47", "55", "72", "84"])
def test_resident_id_with_an_unknown_province_is_rejected(province):
    ric = make_ric(region=province + "0105")

    assert_error(
        IdType.RIC,
        ric,
        "bad_region",
        f"A resident ID number begins with a province code; {province} is not one.",
    )


@pytest.mark.parametrize(
    ("born", "shown"),
    [("19900230", "1990-02-30"), ("19901301", "1990-13-01"), ("19000229", "1900-02-29")],
)
def test_resident_id_with_a_birth_date_that_does_not_exist_is_rejected(born, shown):
    assert_error(
        IdType.RIC,
        make_ric(born=born),
        "impossible_birth_date",
        f"Birth date {shown} does not exist.",
    )


def test_leap_day_birth_date_is_accepted():
    ric = make_ric(born="20000229")

    assert normalize_id_number(IdType.RIC, ric) == ric


def test_resident_id_born_before_1900_is_rejected():
    assert_error(
        IdType.RIC,
        make_ric(born="18991231"),
        "impossible_birth_date",
        "Birth date 1899-12-31 is before 1900.",
    )


def test_resident_id_born_on_1900_01_01_is_accepted():
    ric = make_ric(born="19000101")

    assert normalize_id_number(IdType.RIC, ric) == ric


def test_resident_id_born_tomorrow_is_rejected_and_born_today_accepted():
    tomorrow = TODAY + datetime.timedelta(days=1)
    born_today = make_ric(born=TODAY.strftime("%Y%m%d"))

    assert_error(
        IdType.RIC,
        make_ric(born=tomorrow.strftime("%Y%m%d")),
        "impossible_birth_date",
        f"Birth date {tomorrow.isoformat()} is in the future.",
    )
    assert normalize_id_number(IdType.RIC, born_today) == born_today


def test_wrong_check_character_says_which_one_it_should_be():
    assert_error(
        IdType.RIC,
        "110105194912310021",
        "bad_check_character",
        "The check character should be X, not 1.",
    )


def test_wrong_check_character_message_names_the_expected_digit():
    valid = make_ric(born="19900307", seq="123")
    typed = wrong_check(valid, "0123456789X")

    assert_error(
        IdType.RIC,
        typed,
        "bad_check_character",
        f"The check character should be {valid[-1]}, not {typed[-1]}.",
    )


# --- Old 15-digit resident IDs ------------------------------------------------------------------


def test_old_15_digit_resident_id_is_converted_to_18_digits():
    assert normalize_id_number(IdType.RIC, "110105491231002") == "11010519491231002X"


def test_old_15_digit_resident_id_in_fullwidth_with_spaces_is_converted():
    assert (
        normalize_id_number(IdType.RIC, "１１０１０５ ４９１２３１ ００２") == "11010519491231002X"
    )


def test_old_15_digit_resident_id_with_an_impossible_date_is_rejected_in_the_1900s():
    assert_error(
        IdType.RIC,
        "110105490230002",
        "impossible_birth_date",
        "Birth date 1949-02-30 does not exist.",
    )


def test_old_15_digit_resident_id_with_an_unknown_province_is_rejected():
    assert_error(IdType.RIC, "990105491231002", "bad_region", "99 is not one.")


def test_birth_date_of_reads_the_date_of_a_normalised_resident_id():
    assert birth_date_of("11010519491231002X") == datetime.date(1949, 12, 31)


def test_birth_date_of_refuses_what_is_not_an_18_character_resident_id():
    with pytest.raises(IdentifierError) as caught:
        birth_date_of("110105491231002")

    assert caught.value.code == "bad_format"


# --- 统一社会信用代码 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("91350100M000100Y43", "91350100M000100Y43"),
        ("91110000600037341L", "91110000600037341L"),
        ("91350100m000100y43", "91350100M000100Y43"),
        ("９１３５０１００Ｍ０００１００Ｙ４３", "91350100M000100Y43"),
        ("9135 0100 M000 100Y 43", "91350100M000100Y43"),
    ],
)
def test_valid_uscc_is_normalised(raw, expected):
    assert normalize_id_number(IdType.USCC, raw) == expected


@pytest.mark.parametrize("authority", ["1", "5", "9", "A", "N", "Y"])
def test_uscc_registration_authorities_are_accepted(authority):
    uscc = make_uscc(authority + "1110000600037341")

    assert normalize_id_number(IdType.USCC, uscc) == uscc


@pytest.mark.parametrize("authority", ["0", "B", "G", "W"])
def test_uscc_with_an_unknown_registration_authority_is_rejected(authority):
    uscc = make_uscc(authority + "1110000600037341")

    assert_error(
        IdType.USCC,
        uscc,
        "bad_format",
        f"begins with its registration authority (1–9, A, N or Y), not {authority}.",
    )


def test_uscc_with_a_wrong_check_character_says_which_one_it_should_be():
    assert_error(
        IdType.USCC,
        "91350100M000100Y44",
        "bad_check_character",
        "The check character should be 3, not 4.",
    )


def test_uscc_with_letters_outside_gb_32100_names_them():
    assert_error(
        IdType.USCC,
        "91350100MOI0S0VZ43",
        "bad_characters",
        "other than I, O, S, V and Z",
        "found 'O', 'I', 'S', 'V', 'Z'.",
    )


def test_uscc_of_17_characters_is_wrong_length():
    assert_error(
        IdType.USCC,
        "91350100M000100Y4",
        "wrong_length",
        "A unified social credit code has 18 characters; this one has 17.",
    )


def test_empty_uscc_is_rejected():
    assert_error(IdType.USCC, " ", "empty", "empty")


# --- Passports and permits -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("E12345678", "E12345678"),
        ("g12345678", "G12345678"),
        ("EA1234567", "EA1234567"),
        ("C01X00T47", "C01X00T47"),
        ("５６７８９", "56789"),
        ("AB 123-456", "AB123456"),
        ("A" * 20, "A" * 20),
    ],
)
def test_chinese_and_foreign_passports_are_normalised(raw, expected):
    assert normalize_id_number(IdType.PASSPORT, raw) == expected


@pytest.mark.parametrize("raw", ["E123", "A" * 21])
def test_passport_shorter_than_5_or_longer_than_20_is_wrong_length(raw):
    assert_error(
        IdType.PASSPORT,
        raw,
        "wrong_length",
        f"A passport number has 5 to 20 characters; this one has {len(raw)}.",
    )


def test_passport_with_accents_or_punctuation_names_them():
    assert_error(IdType.PASSPORT, "É1234567/", "bad_characters", "found 'É', '/'.")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("H12345678", "H12345678"),
        ("m1234567890", "M1234567890"),
        ("Ｈ１２３４５６７８", "H12345678"),
        ("H 1234 5678", "H12345678"),
    ],
)
def test_hong_kong_and_macao_permits_are_normalised(raw, expected):
    assert normalize_id_number(IdType.HKMO, raw) == expected


def test_hong_kong_and_macao_permit_must_begin_with_h_or_m():
    assert_error(IdType.HKMO, "K12345678", "bad_format", "begins with H or M, not K.")


def test_hong_kong_and_macao_permit_has_only_digits_after_its_letter():
    assert_error(IdType.HKMO, "H1234567A", "bad_characters", "found 'A'.")


@pytest.mark.parametrize("digits", ["1234567", "123456789", "12345678901"])
def test_hong_kong_and_macao_permit_needs_8_or_10_digits(digits):
    assert_error(
        IdType.HKMO,
        "H" + digits,
        "wrong_length",
        f"8 or 10 digits after its letter; this one has {len(digits)}.",
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12345678", "12345678"),
        ("1234567890", "1234567890"),
        ("1234567890(B)", "1234567890B"),
        ("1234567890（b）", "1234567890B"),
        ("1234567890[B]", "1234567890B"),
        ("1234567890B", "1234567890B"),
        ("1234567890 (B)", "1234567890B"),
    ],
)
def test_taiwan_permits_are_normalised_without_brackets(raw, expected):
    assert normalize_id_number(IdType.TW, raw) == expected


def test_taiwan_permit_of_9_digits_is_wrong_length():
    assert_error(IdType.TW, "123456789", "wrong_length", "8 or 10 digits; this one has 9.")


def test_only_old_10_digit_taiwan_permits_carry_a_letter():
    assert_error(IdType.TW, "12345678(B)", "bad_format", "Only the old 10-digit")


@pytest.mark.parametrize("raw", ["1234567890BC", "1234567890(B", "B1234567890", "(B)"])
def test_taiwan_permit_in_another_shape_is_bad_format(raw):
    assert_error(IdType.TW, raw, "bad_format", "e.g. 1234567890(B)")


def test_taiwan_permit_with_punctuation_names_it():
    assert_error(IdType.TW, "1234567890/B", "bad_characters", "found '/'.")


def test_old_foreign_permanent_resident_card_is_three_letters_and_twelve_digits():
    assert normalize_id_number(IdType.FPR, "usa 110085 061502") == "USA110085061502"


def test_old_foreign_permanent_resident_card_in_another_shape_is_bad_format():
    assert_error(IdType.FPR, "US1110085061502", "bad_format", "3 letters")


def test_2023_foreign_permanent_resident_card_is_checked_like_a_resident_id():
    valid = make_ric(region="931586", born="19850615", seq="001")
    typed = wrong_check(valid, "0123456789X")

    assert normalize_id_number(IdType.FPR, valid.lower()) == valid
    assert_error(
        IdType.FPR,
        typed,
        "bad_check_character",
        f"The check character should be {valid[-1]}, not {typed[-1]}.",
    )


def test_18_character_foreign_permanent_resident_card_must_begin_with_9():
    assert_error(IdType.FPR, make_ric(), "bad_format", "begins with 9")


def test_foreign_permanent_resident_card_of_16_characters_is_wrong_length():
    assert_error(IdType.FPR, "USA1100850615021", "wrong_length", "this one has 16.")


# --- ID types ------------------------------------------------------------------------------------


@pytest.mark.parametrize("id_type", ["ric", "IDCARD", "", None, "居民身份证"])
def test_unknown_id_type_is_rejected(id_type):
    assert_error(id_type, "11010519491231002X", "unknown_id_type", "Unknown ID type")


def test_subject_type_is_enterprise_for_uscc_and_person_otherwise():
    assert subject_type_for(IdType.USCC) == SubjectType.ENTERPRISE == "enterprise"
    for id_type in set(IdType) - {IdType.USCC}:
        assert subject_type_for(id_type) == SubjectType.PERSON == "person"


def test_subject_type_for_an_unknown_id_type_is_an_error():
    with pytest.raises(IdentifierError) as caught:
        subject_type_for("DRIVING_LICENCE")

    assert caught.value.code == "unknown_id_type"


# --- Phones --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+8613812345678",
        "+86 138 1234 5678",
        "8613812345678",
        "008613812345678",
        "＋８６　１３８１２３４５６７８",
    ],
)
def test_mainland_mobile_numbers_are_normalised_to_11_digits(raw):
    assert normalize_phone(raw) == "13812345678"


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("", "empty"),
        ("1381234567", "has 11 digits; this one has 10."),
        ("138123456789", "this one has 12."),
        ("12812345678", "begins with 13 to 19, not 12."),
        ("+1 415 555 0100", "Only mainland China mobile numbers (+86)"),
        ("138abcd5678", "found 'A', 'B', 'C', 'D'."),
        ("010-12345678", "begins with 13 to 19, not 01."),
    ],
)
def test_bad_phone_numbers_say_what_is_wrong(raw, fragment):
    with pytest.raises(IdentifierError) as caught:
        normalize_phone(raw)

    assert caught.value.code == "bad_phone"
    assert fragment in str(caught.value.message)


# --- Names ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  张三  ", "张三"),
        ("张 三", "张三"),
        ("欧阳\u3000娜娜", "欧阳娜娜"),
        ("ＪＯＨＮ　 \t Smith", "JOHN Smith"),
        ("John\n  Smith", "John Smith"),
        ("买买提・艾力", "买买提·艾力"),
        ("买买提 • 艾力", "买买提·艾力"),
        ("买买提‧艾力", "买买提·艾力"),
        ("买买提･艾力", "买买提·艾力"),
        ("北京某某科技有限公司（北京分公司）", "北京某某科技有限公司(北京分公司)"),
        ("ABC 科技有限公司", "ABC 科技有限公司"),
    ],
)
def test_names_are_normalised(raw, expected):
    assert normalize_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "   ", "\u3000\t", None])
def test_empty_name_is_rejected(raw):
    with pytest.raises(IdentifierError) as caught:
        normalize_name(raw)

    assert caught.value.code == "empty"
    assert str(caught.value.message) == "The name is empty."


# --- Masks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("11010519491231002X", "110105********002X"),
        ("91350100M000100Y43", "913501********0Y43"),
        ("USA110085061502", "USA110*****1502"),
        ("E12345678", "E1*****78"),
        ("H1234567890", "H1*******90"),
        ("12345678", "12****78"),
        ("12345", "12*45"),
        ("1234", "1***"),
        ("12", "1*"),
        ("1", "*"),
        ("", ""),
    ],
)
def test_id_numbers_are_masked_keeping_their_length(value, masked):
    assert mask_id_number(value) == masked


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("张三", "张*"),
        ("欧阳娜娜", "欧***"),
        ("John Smith", "J*********"),
        ("张", "*"),
        ("北京某某科技有限公司", "北京**有限公司"),
        ("某某县农民专业合作社", "某某**业合作社"),
        ("中国工商银行北京分行", "中国**北京分行"),
        ("Acme Trading Co., Ltd.", "Ac**Ltd."),
        ("某某公司", "某***"),
        ("阿卜杜热合曼·买买提", "阿*********"),
    ],
)
def test_names_are_masked(name, masked):
    assert mask_name(name) == masked


def test_phones_are_masked_in_the_middle():
    assert mask_phone("13812345678") == "138****5678"


def test_phone_of_another_length_is_still_masked():
    assert mask_phone("12345678") == "12****78"


# --- Properties ----------------------------------------------------------------------------------

regions = st.builds(
    lambda province, rest: f"{province:02d}{rest:04d}",
    st.sampled_from(PROVINCES),
    st.integers(0, 9999),
)
sequences = st.integers(0, 999).map(lambda n: f"{n:03d}")
valid_rics = st.builds(
    make_ric,
    regions,
    st.dates(datetime.date(1900, 1, 1), TODAY).map(lambda d: d.strftime("%Y%m%d")),
    sequences,
)
valid_usccs = st.builds(
    lambda first, rest: make_uscc(first + rest),
    st.sampled_from("123456789ANY"),
    st.text(USCC_ALPHABET, min_size=16, max_size=16),
)
id_like_text = st.text("0123456789Xx HMEGAUSB-()[]（）\u3000０１２３４５６７８９ｘＨ", max_size=24)


@st.composite
def messy_spellings(draw, value: str) -> str:
    """value with random full-width characters, lower case and whitespace or hyphens inside."""
    out = []
    for char in value:
        if draw(st.booleans()):
            char = char.lower()
        if draw(st.booleans()):
            char = fullwidth(char)
        out.append(char + draw(st.sampled_from(["", "", " ", "\u3000", "\t", "-"])))
    return draw(st.sampled_from(["", " ", "\u3000"])) + "".join(out)


@given(valid_rics)
def test_valid_resident_ids_are_accepted_unchanged_and_normalising_is_idempotent(ric):
    normalized = normalize_id_number(IdType.RIC, ric)

    assert normalized == ric
    assert normalize_id_number(IdType.RIC, normalized) == normalized
    assert birth_date_of(ric).strftime("%Y%m%d") == ric[6:14]


@given(st.data(), valid_rics)
def test_valid_resident_ids_are_accepted_in_fullwidth_spaced_lower_case_spellings(data, ric):
    messy = data.draw(messy_spellings(ric))

    assert normalize_id_number(IdType.RIC, messy) == ric


@given(valid_rics, st.integers(0, 17), st.sampled_from("0123456789X"))
def test_changing_any_one_character_of_a_resident_id_is_rejected(ric, position, char):
    assume(ric[position] != char)
    typo = ric[:position] + char + ric[position + 1 :]

    with pytest.raises(IdentifierError):
        normalize_id_number(IdType.RIC, typo)


@given(valid_rics, st.integers(0, 15))
def test_swapping_two_neighbouring_digits_of_a_resident_id_is_rejected(ric, position):
    assume(ric[position] != ric[position + 1])
    swapped = ric[:position] + ric[position + 1] + ric[position] + ric[position + 2 :]

    with pytest.raises(IdentifierError):
        normalize_id_number(IdType.RIC, swapped)


@given(regions, st.dates(datetime.date(1900, 1, 1), datetime.date(1999, 12, 31)), sequences)
def test_old_15_digit_ids_become_the_18_digit_id_of_the_same_person(region, born, seq):
    old = region + born.strftime("%y%m%d") + seq

    assert normalize_id_number(IdType.RIC, old) == make_ric(region, born.strftime("%Y%m%d"), seq)


@given(st.data(), valid_usccs)
def test_valid_usccs_are_accepted_in_any_spelling(data, uscc):
    assert normalize_id_number(IdType.USCC, data.draw(messy_spellings(uscc))) == uscc


@given(valid_usccs, st.integers(0, 17), st.sampled_from(USCC_ALPHABET))
def test_changing_any_one_character_of_a_uscc_is_rejected(uscc, position, char):
    assume(uscc[position] != char)
    typo = uscc[:position] + char + uscc[position + 1 :]

    with pytest.raises(IdentifierError):
        normalize_id_number(IdType.USCC, typo)


@pytest.mark.parametrize("id_type", list(IdType))
@given(raw=st.one_of(st.text(), id_like_text))
def test_any_text_is_normalised_idempotently_or_rejected_with_an_identifier_error(id_type, raw):
    try:
        normalized = normalize_id_number(id_type, raw)
    except IdentifierError as error:
        assert error.code in CODES
        assert str(error.message)
    else:
        assert normalized == normalized.strip().upper()
        assert normalize_id_number(id_type, normalized) == normalized


@given(st.one_of(st.text(), st.text("+86 -0123456789１３８", max_size=20)))
def test_any_text_is_a_normalised_phone_or_a_bad_phone_error(raw):
    try:
        phone = normalize_phone(raw)
    except IdentifierError as error:
        assert error.code == "bad_phone"
    else:
        assert len(phone) == 11
        assert normalize_phone(phone) == phone


@given(st.text())
def test_any_text_is_a_normalised_name_or_an_empty_error(raw):
    try:
        name = normalize_name(raw)
    except IdentifierError as error:
        assert error.code == "empty"
    else:
        assert name == name.strip()
        assert "  " not in name
        assert normalize_name(name) == name


no_stars = st.text(st.characters(blacklist_characters="*"), max_size=40)


@given(no_stars)
def test_masked_id_numbers_keep_their_length_and_hide_all_but_the_first_6_and_last_4(value):
    masked = mask_id_number(value)
    n = len(value)

    assert len(masked) == n
    for i, char in enumerate(masked):
        assert char == "*" or (char == value[i] and (i < 6 or i >= n - 4))
    if n:
        assert "*" in masked


@given(valid_rics)
def test_masked_resident_ids_show_the_first_6_and_last_4(ric):
    assert mask_id_number(ric) == ric[:6] + "*" * 8 + ric[-4:]


@given(no_stars)
def test_masked_phones_keep_their_length_and_are_never_fully_revealed(phone):
    masked = mask_phone(phone)

    assert len(masked) == len(phone)
    if phone:
        assert "*" in masked


@given(st.text(st.characters(blacklist_characters="*"), min_size=1, max_size=40))
def test_masked_names_are_never_fully_revealed(name):
    masked = mask_name(name)

    assert "*" in masked
    assert masked[0] in (name[0], "*")
