"""Lender admin (anna at 甲小额贷款): invite a colleague, create an API key for the loan system,
and read the month's statement. Run in Chinese and, switched with the header's language
button, in English. Her mistake: a username that is already taken."""

import pytest
from django.utils import timezone, translation
from helpers import LI, ZHANG, Person, demo_prices, loan_approval_query

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def text(lang: str, message: str) -> str:
    with translation.override("zh-hans" if lang == "zh" else lang):
        return translation.gettext(message)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_lender_admin_invites_a_user_creates_an_api_key_and_reads_the_statement(
    live_server, new_context, shots, password, lender_admin, lender_staff, lender_a, lang
):
    from billing.models import Statement
    from billing.services import statements_generate_for_month

    _ = lambda message: text(lang, message)  # noqa: E731 (the page's language, like gettext)
    demo_prices()
    # This month alice ran two loan-approval queries (no hits: 5.00 each); the monthly job ran.
    loan_approval_query(lender_staff, ZHANG)
    loan_approval_query(lender_staff, LI)
    assert statements_generate_for_month(month=timezone.localdate()) == 1
    statement = Statement.objects.get(member=lender_a)

    anna = Person(new_context(), live_server.url, shots)
    page = anna.page
    if lang != "zh":
        anna.goto("/accounts/login/")
        anna.switch_language(lang)  # the header's language button, before signing in
        assert page.locator("html").get_attribute("lang") == lang
    anna.sign_in(lender_admin, password, shot_as="login-lender-admin")
    assert page.locator("h1").inner_text().startswith(_("Lender admin"))
    anna.shot("home-lender-admin")

    # --- Invite a colleague: first with a username that is taken --------------------------------
    anna.follow(page.locator("header nav a", has_text=_("Users")))
    anna.shot("users")
    anna.follow(page.locator("main a", has_text=_("Invite a user")))
    page.fill("#id_username", lender_staff.username)
    page.fill("#id_full_name", "李娜")
    page.fill("#id_email", "lina@example.com")
    page.check("input[name=roles][value=lender_staff]")
    anna.submit(anna.main_form_button())
    assert anna.field_error("username") == _("This username is taken."), anna.field_error(
        "username"
    )
    assert page.input_value("#id_email") == "lina@example.com"
    anna.shot("invite-username-taken")

    page.fill("#id_username", "lina")
    anna.submit(anna.main_form_button())
    assert "/accounts/users/" in page.url
    assert page.locator("table.data tbody tr", has_text="lina").count() == 1
    anna.shot("users-after-invite")

    # --- An API key for the loan system -----------------------------------------------------------
    anna.follow(page.locator("header nav a", has_text=_("API keys")))
    page.fill("#id_name", "信贷审批系统")
    anna.submit(anna.main_form_button())
    key = page.input_value("#new-key")
    assert key.startswith("bl_")
    assert page.locator("table.data tbody tr", has_text="信贷审批系统").count() == 1
    anna.shot("api-key-created")

    # --- The month's statement -------------------------------------------------------------------
    anna.follow(page.locator("header nav a", has_text=_("Statements")))
    assert "10.00" in page.locator("main p.card").inner_text()  # spend so far this month
    row = page.locator("table.data tbody tr", has_text=statement.month.strftime("%Y-%m"))
    assert "10.00" in row.inner_text()
    anna.shot("statements")
    anna.follow(row.locator("a"))
    assert statement.month.strftime("%Y-%m") in page.locator("h1").inner_text()
    assert page.locator("table.data tbody tr").count() == 2
    anna.shot("statement")
    assert page.locator("html").get_attribute("lang") == ("zh-Hans" if lang == "zh" else lang)
