import re

import pytest
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from blacklist_portal.accounts.roles import ROLES_REQUIRING_2FA, Role
from blacklist_portal.audit.models import AuditEvent

VERIFY_URL = reverse("accounts:otp_verify")
ENROL_URL = reverse("accounts:otp_enrol")
HOME_URL = reverse("accounts:home")

TWO_FACTOR_ROLES = ["review_officer", "senior_review_officer", "regulator", "platform_admin"]
ONE_FACTOR_ROLES = ["lender_staff", "lender_admin", "counter_clerk"]


def test_the_roles_that_require_two_factor_are_exactly_those_of_the_issue():
    assert {
        Role.REVIEW_OFFICER,
        Role.SENIOR_REVIEW_OFFICER,
        Role.REGULATOR,
        Role.PLATFORM_ADMIN,
    } == ROLES_REQUIRING_2FA


def pages_for(user):
    return [
        HOME_URL,
        reverse("accounts:role_home", args=[user.primary_role.value]),
        reverse("accounts:password_change"),
        reverse("accounts:user_list"),
        reverse("admin:index"),
        "/no-such-page/",
    ]


@pytest.mark.parametrize("role", TWO_FACTOR_ROLES)
def test_password_alone_reaches_nothing_but_the_code_page(db, client, request, role):
    user = request.getfixturevalue(role)
    client.force_login(user)  # password checked, no code yet

    for url in pages_for(user):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].split("?")[0] == VERIFY_URL, url


@pytest.mark.parametrize("role", TWO_FACTOR_ROLES)
def test_a_valid_code_lets_them_in(db, client, request, totp, role):
    user = request.getfixturevalue(role)
    device = TOTPDevice.objects.get(user=user)
    client.force_login(user)

    response = client.post(VERIFY_URL, {"token": totp(device)})

    assert response.status_code == 302
    assert response["Location"] == HOME_URL
    role_home = reverse("accounts:role_home", args=[role])
    assert client.get(HOME_URL)["Location"] == role_home
    assert client.get(role_home).status_code == 200
    assert AuditEvent.objects.filter(action="auth.otp_verified", actor=user).count() == 1


def test_verify_page_shows_a_labelled_code_field(client, review_officer):
    client.force_login(review_officer)

    response = client.get(VERIFY_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_token"' in html
    assert 'autocomplete="one-time-code"' in html


def test_an_invalid_code_is_refused_with_a_message_next_to_the_field(
    client, review_officer, totp, zh
):
    device = TOTPDevice.objects.get(user=review_officer)
    accepted = {totp(device, steps_ahead=s) for s in (-1, 0, 1)}  # the tolerance window
    wrong = next(c for c in ("123456", "654321", "111111", "222222") if c not in accepted)
    client.force_login(review_officer)

    response = client.post(VERIFY_URL, {"token": wrong})

    assert response.status_code == 200
    error_list = _field_errors(response.content.decode(), "id_token")
    assert zh("This code is not correct or has expired. Try the current one.") in error_list
    assert client.get(HOME_URL)["Location"].split("?")[0] == VERIFY_URL
    assert AuditEvent.objects.filter(action="auth.otp_failed", actor=review_officer).count() == 1


def test_a_code_that_is_not_six_digits_is_refused_next_to_the_field(client, review_officer, zh):
    client.force_login(review_officer)

    response = client.post(VERIFY_URL, {"token": "12ab"})

    assert response.status_code == 200
    message = zh("Enter the six digits shown in your authenticator app.")
    assert message in _field_errors(response.content.decode(), "id_token")
    assert client.get(HOME_URL)["Location"].split("?")[0] == VERIFY_URL


def test_a_code_is_accepted_only_once(client, review_officer, totp):
    device = TOTPDevice.objects.get(user=review_officer)
    code = totp(device)
    client.force_login(review_officer)
    client.post(VERIFY_URL, {"token": code})
    client.post(reverse("accounts:logout"))

    client.force_login(review_officer)
    response = client.post(VERIFY_URL, {"token": code})

    assert response.status_code == 200
    assert client.get(HOME_URL)["Location"].split("?")[0] == VERIFY_URL


def test_verification_lasts_for_the_session_only(client, review_officer, totp):
    device = TOTPDevice.objects.get(user=review_officer)
    client.force_login(review_officer)
    client.post(VERIFY_URL, {"token": totp(device)})
    client.post(reverse("accounts:logout"))

    client.force_login(review_officer)

    assert client.get(HOME_URL)["Location"].split("?")[0] == VERIFY_URL


def test_the_code_page_stays_on_the_portal_after_verifying(client, review_officer, totp):
    """`next` on the code page must not send a freshly verified officer to another site."""
    device = TOTPDevice.objects.get(user=review_officer)
    client.force_login(review_officer)

    response = client.post(VERIFY_URL + "?next=https://evil.example/phish", {"token": totp(device)})

    assert response.status_code == 302
    assert response["Location"] == HOME_URL


def test_the_code_page_honours_a_next_url_on_the_portal(client, review_officer, totp):
    device = TOTPDevice.objects.get(user=review_officer)
    client.force_login(review_officer)
    password_page = reverse("accounts:password_change")

    response = client.post(VERIFY_URL + f"?next={password_page}", {"token": totp(device)})

    assert response["Location"] == password_page


@pytest.mark.parametrize("role", ONE_FACTOR_ROLES)
def test_lender_and_counter_roles_do_not_need_a_code(db, client, request, role):
    user = request.getfixturevalue(role)
    client.force_login(user)

    response = client.get(HOME_URL)

    assert response["Location"] == reverse("accounts:role_home", args=[role])
    assert client.get(response["Location"]).status_code == 200


class TestEnrolment:
    @pytest.fixture
    def new_officer(self, user_factory, operator):
        return user_factory("nora", Role.REVIEW_OFFICER, institution=operator, two_factor=False)

    def test_user_without_a_device_is_sent_to_enrolment(self, client, new_officer):
        client.force_login(new_officer)

        assert client.get(HOME_URL)["Location"].split("?")[0] == VERIFY_URL
        assert client.get(VERIFY_URL)["Location"] == ENROL_URL

    def test_enrolment_page_shows_a_qr_code_and_the_key(self, client, new_officer):
        client.force_login(new_officer)

        response = client.get(ENROL_URL)

        assert response.status_code == 200
        html = response.content.decode()
        assert "<svg" in html
        device = TOTPDevice.objects.get(user=new_officer)
        assert device.confirmed is False
        assert response.context["secret"] in html
        assert '<label for="id_token"' in html

    def test_enrolment_page_keeps_the_same_key_until_confirmed(self, client, new_officer):
        client.force_login(new_officer)

        first = client.get(ENROL_URL).context["secret"]
        second = client.get(ENROL_URL).context["secret"]

        assert first == second
        assert TOTPDevice.objects.filter(user=new_officer).count() == 1

    def test_a_valid_code_confirms_the_device_and_signs_in(self, client, new_officer, totp):
        client.force_login(new_officer)
        client.get(ENROL_URL)
        device = TOTPDevice.objects.get(user=new_officer)

        response = client.post(ENROL_URL, {"token": totp(device)})

        assert response.status_code == 302
        assert response["Location"] == HOME_URL
        device.refresh_from_db()
        assert device.confirmed is True
        assert client.get(HOME_URL)["Location"] == reverse(
            "accounts:role_home", args=["review_officer"]
        )
        assert AuditEvent.objects.filter(action="auth.otp_enrolled", actor=new_officer).exists()

    def test_a_wrong_code_leaves_the_device_unconfirmed(self, client, new_officer, totp, zh):
        client.force_login(new_officer)
        client.get(ENROL_URL)
        device = TOTPDevice.objects.get(user=new_officer)
        accepted = {totp(device, steps_ahead=s) for s in (-1, 0, 1)}
        wrong = next(c for c in ("123456", "654321", "111111", "222222") if c not in accepted)

        response = client.post(ENROL_URL, {"token": wrong})

        assert response.status_code == 200
        message = zh("This code is not correct. Check the time on your phone.")
        assert message in _field_errors(response.content.decode(), "id_token")
        device.refresh_from_db()
        assert device.confirmed is False
        assert client.get(HOME_URL)["Location"].split("?")[0] == VERIFY_URL

    def test_a_user_with_a_device_cannot_enrol_another(self, client, review_officer):
        client.force_login(review_officer)

        response = client.get(ENROL_URL)

        assert response["Location"].split("?")[0] == VERIFY_URL
        assert TOTPDevice.objects.filter(user=review_officer).count() == 1


def _field_errors(html: str, field_id: str) -> str:
    """The error list rendered directly beneath the field (templates/forms/field.html)."""
    match = re.search(rf'<ul class="errorlist" id="{field_id}_error"[^>]*>(.*?)</ul>', html, re.S)
    assert match, f"no error list next to {field_id}"
    return match.group(1)
