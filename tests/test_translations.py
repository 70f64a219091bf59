"""The Simplified Chinese catalogue: complete, consistent with the code, compiled, and in use.

English is the source language, so there is no English catalogue. How to update the catalogue
is described in docs/translations.md (`make messages`).
"""

import re
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from blacklist_portal.accounts.roles import HOME_TASKS, Role

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
PO_PATH = LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO_PATH = LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "django.mo"

# %(name)s / %(n)d, bare %s / %d, and str.format fields {name} / {}. "%%" is a literal percent.
_PERCENT = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifrxXeEgGc]")
_BRACE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}|\{\}")
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")


def _catalogue() -> polib.POFile:
    return polib.pofile(str(PO_PATH))


def _entries() -> list[polib.POEntry]:
    return [e for e in _catalogue() if not e.obsolete]


def _msgstrs(entry: polib.POEntry) -> list[str]:
    if entry.msgid_plural:
        return [entry.msgstr_plural[k] for k in sorted(entry.msgstr_plural)]
    return [entry.msgstr]


def _placeholders(text: str) -> set[str]:
    text = text.replace("%%", "")
    return set(_PERCENT.findall(text)) | set(_BRACE.findall(text))


def _label(entry: polib.POEntry) -> str:
    return f"{entry.msgid!r} ({entry.occurrences[0][0] if entry.occurrences else '?'})"


def _translations(entries) -> dict:
    """(context, msgid) -> translation(s), for what a compiled catalogue contains."""
    out = {}
    for e in entries:
        if not e.msgid or e.obsolete or "fuzzy" in e.flags:
            continue
        if e.msgid_plural:
            if all(e.msgstr_plural.values()):
                out[(e.msgctxt, e.msgid, e.msgid_plural)] = tuple(
                    e.msgstr_plural[k] for k in sorted(e.msgstr_plural)
                )
        elif e.msgstr:
            out[(e.msgctxt, e.msgid)] = e.msgstr
    return out


# --- The catalogue file ---------------------------------------------------------------------


def test_the_catalogue_exists_and_there_is_no_english_one():
    assert PO_PATH.is_file()
    assert not (LOCALE_DIR / "en").exists(), "English is the source language: no catalogue"


def test_the_header_declares_simplified_chinese_with_one_plural_form():
    po = _catalogue()
    assert po.metadata["Language"] == "zh_Hans"
    assert po.metadata["Plural-Forms"].replace(" ", "") == "nplurals=1;plural=0;"
    assert po.metadata["Content-Type"] == "text/plain; charset=UTF-8"
    assert not po.metadata_is_fuzzy


def test_every_message_is_translated():
    untranslated = [_label(e) for e in _entries() if not all(_msgstrs(e))]
    assert untranslated == []


def test_no_message_is_fuzzy():
    fuzzy = [_label(e) for e in _entries() if e.fuzzy]
    assert fuzzy == []


def test_plural_messages_have_exactly_one_form():
    wrong = [_label(e) for e in _entries() if e.msgid_plural and len(e.msgstr_plural) != 1]
    assert wrong == []


def test_placeholders_are_the_same_in_source_and_translation():
    wrong = []
    for e in _entries():
        expected = _placeholders(e.msgid) | _placeholders(e.msgid_plural or "")
        for msgstr in _msgstrs(e):
            if msgstr and _placeholders(msgstr) != expected:
                wrong.append(f"{_label(e)}: {sorted(expected)} != {sorted(_placeholders(msgstr))}")
    assert wrong == []


def test_html_tags_and_line_breaks_are_kept():
    wrong = []
    for e in _entries():
        for msgstr in _msgstrs(e):
            if not msgstr:
                continue
            if sorted(_TAG.findall(e.msgid)) != sorted(_TAG.findall(msgstr)):
                wrong.append(f"{_label(e)}: HTML tags differ")
            if e.msgid.count("\n") != msgstr.count("\n"):
                wrong.append(f"{_label(e)}: line breaks differ")
    assert wrong == []


def test_the_placeholder_check_catches_a_broken_translation():
    assert _placeholders("%(name)s has %(n)d rows, %s and {limit}") == {
        "%(name)s",
        "%(n)d",
        "%s",
        "{limit}",
    }
    assert _placeholders("100%% sure") == set()
    assert _placeholders("{名称}") != _placeholders("{name}")


# --- The compiled catalogue -----------------------------------------------------------------


def test_the_compiled_catalogue_matches_the_po_file():
    """django.mo is checked in: it must hold exactly the .po's translations (run
    `make messages` — or compilemessages — after editing the .po)."""
    assert MO_PATH.is_file(), "run: python manage.py compilemessages --ignore=.venv"
    compiled = _translations(polib.mofile(str(MO_PATH)))
    source = _translations(_entries())

    missing = sorted(str(k[1]) for k in source.keys() - compiled.keys())
    stale = sorted(str(k[1]) for k in compiled.keys() - source.keys())
    different = sorted(
        str(k[1]) for k in source.keys() & compiled.keys() if source[k] != compiled[k]
    )
    assert (missing, stale, different) == ([], [], [])


# --- The portal speaks Chinese by default and English on request ------------------------------


def test_the_login_page_is_chinese_by_default_and_english_after_switching(client, db):
    login_url = reverse("accounts:login")

    page = client.get(login_url).content.decode()
    assert "登录" in page
    assert 'lang="zh-Hans"' in page

    response = client.post(reverse("set_language"), {"language": "en", "next": login_url})
    assert response.status_code == 302

    page = client.get(login_url).content.decode()
    assert "Sign in" in page
    assert "登录" not in page
    assert 'lang="en"' in page


def test_the_lender_staff_home_page_shows_chinese_task_titles(client, login, lender_staff):
    login(client, lender_staff)
    zh = {e.msgid: e.msgstr for e in _entries()}

    page = client.get(reverse("accounts:role_home", args=[Role.LENDER_STAFF.value]))

    assert page.status_code == 200
    html = page.content.decode()
    assert "机构业务员" in html
    assert "我的报送" in html
    for title, _description, _url in HOME_TASKS[Role.LENDER_STAFF]:
        with translation.override("en"):
            source = str(title)  # English is the source language: the msgid itself
        assert zh[source] in html, source
        assert source not in html, source


@pytest.mark.parametrize(
    ("source", "chinese"),
    [
        ("Lender staff", "机构业务员"),
        ("Lender admin", "机构管理员"),
        ("Review officer", "审核员"),
        ("Senior review officer", "复核员"),
        ("Counter clerk", "柜台查询员"),
        ("Platform admin", "平台管理员"),
        ("Overdue", "逾期"),
        ("Loan fraud", "骗贷"),
        ("Malicious default", "恶意拖欠"),
        ("Guarantor liability", "担保代偿"),
        ("Unexecuted court judgment", "法院判决未履行"),
        ("Under dispute", "存在异议"),
        ("Resident identity card", "居民身份证"),
        ("Unified social credit code", "统一社会信用代码"),
        ("Mainland travel permit for Hong Kong and Macao residents", "港澳居民来往内地通行证"),
        ("Mainland travel permit for Taiwan residents", "台湾居民来往大陆通行证"),
        ("Foreign permanent resident ID card", "外国人永久居留身份证"),
        ("Person", "个人"),
        ("Enterprise", "企业"),
        ("Borrower", "借款人"),
        ("Guarantor", "担保人"),
        ("SMS", "短信"),
        ("Letter", "信函"),
        ("Phone call", "电话"),
        ("In person", "当面"),
        ("E-mail", "电子邮件"),
    ],
)
def test_product_terms_use_the_agreed_chinese(source, chinese):
    """docs: product.md (roles, categories) and import-format.md (enumerations)."""
    with translation.override("zh-hans"):
        assert translation.gettext(source) == chinese
