"""Counter clerk (cora): a walk-in borrower's self-query after the in-person ID check, twice free
and the third time charged, done with the keyboard alone (Tab, typing, arrow keys, Enter and
the screens' access keys; no clicks); the printed report lists who queried the borrower, and
the fee has a receipt. Then a correction request on paper with a scanned attachment, and its
receipt. The clerk's mistake: a wrong check character in the ID number."""

import pytest
from helpers import (
    PDF,
    ZHANG,
    Person,
    demo_prices,
    loan_approval_query,
    reported_entry,
    texts,
    upload,
    with_wrong_check_character,
    zh,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SELF_QUERY = "/billing/counter/self-query/"
MEMBER_QUERY = "/billing/counter/member-query/"


def tab_into_main(clerk: Person) -> dict:
    """Tab once; on the skip link ("跳到正文"), follow it and Tab again. Returns the first
    control reached inside <main>, past the menus. (A page reached through the skip link keeps
    #main in its address, and the browser then starts tabbing in <main> directly.)"""
    page = clerk.page
    page.keyboard.press("Tab")
    if clerk.focused()["href"] == "#main":
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
    assert page.evaluate("() => document.querySelector('main').contains(document.activeElement)")
    return clerk.focused()


def self_query_by_keyboard(clerk: Person, id_number: str, *, submit_with_access_key=False) -> None:
    """Fill the self-query form with the keyboard alone, in the fields' Tab order."""
    page = clerk.page
    assert tab_into_main(clerk)["name"] == "id_type"  # the first thing in <main>
    # The ID type is already 居民身份证 (the first option).
    page.keyboard.press("Tab")
    assert clerk.focused()["name"] == "id_number"
    page.keyboard.press("Control+A")
    page.keyboard.type(id_number)
    page.keyboard.press("Tab")
    assert clerk.focused()["name"] == "name"
    page.keyboard.press("Control+A")
    page.keyboard.type(ZHANG[1])
    page.keyboard.press("Tab")
    assert clerk.focused()["name"] == "identity_check"
    if page.input_value("#id_identity_check") == "":
        page.keyboard.press("ArrowDown")  # 居民身份证原件，已核对照片
    assert page.input_value("#id_identity_check") == "ric_original"
    if submit_with_access_key:
        clerk.access_key_and_arrive("s")
    else:
        page.keyboard.press("Tab")
        assert clerk.focused()["tag"] == "button"
        clerk.press_and_arrive("Enter")


def fee(clerk: Person) -> str:
    facts = clerk.page.locator(".result-head dl.facts")
    return (
        facts.locator("dt", has_text=zh("Fee (CNY)"))
        .locator("xpath=following-sibling::dd[1]")
        .inner_text()
    )


def test_counter_clerk_serves_walk_ins_with_the_keyboard(
    live_server, new_context, shots, password, counter_clerk, lender_staff, lender_a, review_officer
):
    demo_prices()
    entry = reported_entry(
        lender_staff, lender_a, ZHANG, contract="HT-2025-0007", approve_by=review_officer
    )
    loan_approval_query(lender_staff, ZHANG)  # 甲 checked 张三 before lending: "who queried me"

    cora = Person(new_context(), live_server.url, shots)
    page = cora.page
    cora.sign_in(counter_clerk, password, shot_as="login-counter-clerk")
    cora.shot("home-counter-clerk")

    # --- First self-query: the wrong check character (the mistake), then the right number ----
    cora.goto("/billing/counter/")
    cora.shot("counter-home")
    assert tab_into_main(cora)["href"].endswith(SELF_QUERY)  # the first task on the screen
    cora.press_and_arrive("Enter")
    assert cora.path == SELF_QUERY

    wrong = with_wrong_check_character(ZHANG[0])
    self_query_by_keyboard(cora, wrong)
    assert cora.path == SELF_QUERY  # refused: still on the form
    expected = zh("The check character should be {expected}, not {actual}.").format(
        expected="X", actual=wrong[-1]
    )
    assert cora.field_error("id_number") == expected, cora.field_error("id_number")
    # What was typed is kept, to correct one character rather than retype everything.
    assert page.input_value("#id_id_number") == wrong
    cora.shot("self-query-wrong-check-character")

    self_query_by_keyboard(cora, ZHANG[0])
    assert "/billing/queries/" in page.url
    assert fee(cora) == "0.00"
    who = page.locator("section", has_text=zh("Who queried this subject in the last two years"))
    assert lender_a.name in who.inner_text()
    cora.shot("self-query-1-free")

    # --- Second: from the counter screen by access key, submitted by access key ---------------
    cora.goto("/billing/counter/")
    cora.access_key_and_arrive("1")
    assert cora.path == SELF_QUERY
    self_query_by_keyboard(cora, ZHANG[0], submit_with_access_key=True)
    assert fee(cora) == "0.00"

    # --- Third: charged, with a receipt ---------------------------------------------------------
    cora.goto("/billing/counter/")
    cora.access_key_and_arrive("1")
    self_query_by_keyboard(cora, ZHANG[0])
    assert fee(cora) == "20.00"
    assert (
        "2"
        in page.locator("section", has_text=zh("Who queried this subject in the last two years"))
        .locator(".note")
        .inner_text()
    )
    cora.shot("self-query-3-charged")

    cora.access_key_and_arrive("p")  # the print view's access key
    assert "print=1" in page.url
    report = cora.main_text()
    assert (
        zh("Who queried this subject in the last two years") in report and lender_a.name in report
    )
    assert ZHANG[0] not in report
    cora.shot("self-query-print")
    cora.back()
    cora.follow(page.locator("main a", has_text=zh("Receipt")))
    assert "20.00" in cora.main_text()
    cora.shot("fee-receipt")

    # --- The counter screen lists today's work; the representative screen by keyboard --------
    cora.goto("/billing/counter/")
    assert len(texts(page.locator("table.data tbody tr"))) == 3
    cora.access_key_and_arrive("2")
    assert cora.path == MEMBER_QUERY
    stops = [tab_into_main(cora)]
    stops += cora.tab_to(lambda f: f["tag"] == "button", describe="the submit button")
    order = list(dict.fromkeys(s["name"] for s in stops if s["name"]))  # a date field has 3 stops
    assert order == [
        "member",
        "representative",
        "id_type",
        "id_number",
        "name",
        "purpose",
        "consent_file",
        "consent_signed_on",
        "consent_expires_on",
        "amount",
        "loan_type",
        "applied_on",
    ], order
    cora.shot("representative-query-form")

    # --- A correction request on paper, with the scanned letter --------------------------------
    cora.follow(page.locator("header nav a", has_text=zh("Correction request")))
    page.select_option("#id_id_type", "RIC")
    page.fill("#id_id_number", ZHANG[0].lower())
    cora.submit(page.locator("main button[name=find]"))
    page.fill("#id_applicant_name", ZHANG[1])
    page.fill("#id_applicant_contact", "13800001111 北京市朝阳区建国路 1 号")
    page.check(f"input[name=entry][value='{entry.pk}']")
    page.select_option("#id_claim_type", "repaid")
    assert page.input_value("#id_channel") == "counter"
    page.fill("#id_description", "本人已于 2026 年 3 月 1 日还清全部欠款，附还款凭证扫描件。")
    page.set_input_files("#id_attachments", upload("还款凭证扫描件.pdf", PDF))
    cora.shot("correction-request")
    cora.submit(cora.main_form_button(zh("Take the request and print the receipt")))
    assert "/receipt/" in page.url
    receipt = cora.main_text()
    assert zh("Correction request receipt") in receipt and entry.subject.id_masked in receipt
    cora.shot("correction-request-receipt")
