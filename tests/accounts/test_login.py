import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import reverse

from blacklist_portal.audit.models import AuditEvent

LOGIN_URL = reverse("accounts:login")
WRONG_CREDENTIALS = "The username or password is not correct."
PASSWORD = "Lamp-orbit-2931"  # conftest.PASSWORD


def post_login(client, username, password, **extra):
    return client.post(LOGIN_URL, {"username": username, "password": password, **extra})


def signed_in_user_id(client):
    return client.session.get("_auth_user_id")


def test_login_page_renders_with_labelled_fields(client, db):
    response = client.get(LOGIN_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username"' in html
    assert '<label for="id_password"' in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_correct_password_signs_in_and_lands_on_home(client, lender_staff):
    response = post_login(client, "alice", PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:home")
    assert signed_in_user_id(client) == str(lender_staff.pk)


def test_login_rotates_the_session_key(client, lender_staff):
    session = client.session
    session["before_login"] = True
    session.save()
    key_before = session.session_key
    assert client.cookies[settings.SESSION_COOKIE_NAME].value == key_before

    post_login(client, "alice", PASSWORD)

    key_after = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert key_after != key_before
    assert not Session.objects.filter(session_key=key_before).exists()
    assert signed_in_user_id(client) == str(lender_staff.pk)


def form_errors(response) -> str:
    """The form-level error block of a page (templates/forms/form.html)."""
    match = re.search(r'<div class="form-errors"[^>]*>(.*?)</div>', response.content.decode(), re.S)
    assert match, "no form error on the page"
    return match.group(1)


def test_wrong_password_and_unknown_user_get_the_same_answer(client, lender_staff, zh):
    wrong_password = post_login(client, "alice", "Not-the-password-1")
    unknown_user = post_login(client, "nobody-here", "Not-the-password-1")

    assert wrong_password.status_code == unknown_user.status_code == 200
    assert form_errors(wrong_password) == form_errors(unknown_user)
    assert zh(WRONG_CREDENTIALS) in form_errors(wrong_password)
    assert signed_in_user_id(client) is None


def test_deactivated_user_cannot_sign_in_and_gets_the_usual_answer(client, lender_staff, zh):
    lender_staff.is_active = False
    lender_staff.save(update_fields=["is_active"])

    response = post_login(client, "alice", PASSWORD)

    assert response.status_code == 200
    assert zh(WRONG_CREDENTIALS) in form_errors(response)
    assert signed_in_user_id(client) is None


def test_login_redirects_to_a_safe_next_url_only(client, lender_staff):
    response = post_login(client, "alice", PASSWORD, next="https://evil.example/steal")

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:home")


class TestLockout:
    def fail(self, client, username, times):
        return [post_login(client, username, f"wrong-{i}-Password") for i in range(times)]

    def test_five_failures_lock_the_account(self, client, lender_staff, zh):
        responses = self.fail(client, "alice", 5)

        assert [r.status_code for r in responses[:4]] == [200] * 4
        assert responses[4].status_code == 429
        assert zh("Sign-in locked") in responses[4].content.decode()

    def test_correct_password_is_refused_while_locked(self, client, lender_staff):
        self.fail(client, "alice", 5)

        response = post_login(client, "alice", PASSWORD)

        assert response.status_code == 429
        assert signed_in_user_id(client) is None

    def test_unknown_username_is_locked_just_the_same(self, client, db):
        responses = self.fail(client, "ghost", 5)

        assert [r.status_code for r in responses] == [200, 200, 200, 200, 429]
        assert post_login(client, "ghost", "anything-1A").status_code == 429

    def test_lockout_is_per_account_not_per_address(self, client, lender_staff, lender_admin):
        # The whole office shares one NAT address: alice's typos must not lock out anna.
        self.fail(client, "alice", 5)

        response = post_login(client, "anna", PASSWORD)

        assert response.status_code == 302
        assert signed_in_user_id(client) == str(lender_admin.pk)

    def test_four_failures_do_not_lock(self, client, lender_staff):
        self.fail(client, "alice", 4)

        response = post_login(client, "alice", PASSWORD)

        assert response.status_code == 302
        assert signed_in_user_id(client) == str(lender_staff.pk)

    def test_success_resets_the_failure_count(self, client, lender_staff):
        self.fail(client, "alice", 4)
        post_login(client, "alice", PASSWORD)
        client.logout()

        responses = self.fail(client, "alice", 4)

        assert [r.status_code for r in responses] == [200] * 4

    def test_lock_holds_until_thirty_minutes_have_passed(self, client, lender_staff):
        assert timedelta(minutes=30) == settings.AXES_COOLOFF_TIME
        self.fail(client, "alice", 5)

        AccessAttempt.objects.update(attempt_time=_minutes_ago(29))
        assert post_login(client, "alice", PASSWORD).status_code == 429

        AccessAttempt.objects.update(attempt_time=_minutes_ago(31))
        response = post_login(client, "alice", PASSWORD)

        assert response.status_code == 302
        assert signed_in_user_id(client) == str(lender_staff.pk)

    def test_lockout_is_written_to_the_audit_log(self, client, lender_staff):
        self.fail(client, "alice", 5)

        event = AuditEvent.objects.get(action="auth.locked_out")
        assert event.details == {"username": "alice"}
        assert event.ip == "127.0.0.1"


def _minutes_ago(minutes):
    from django.utils import timezone

    return timezone.now() - timedelta(minutes=minutes)


@pytest.mark.parametrize("method", ["get", "post"])
def test_signed_in_user_visiting_login_goes_home(client, login, lender_staff, method):
    login(client, lender_staff)

    response = getattr(client, method)(LOGIN_URL)

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:home")
