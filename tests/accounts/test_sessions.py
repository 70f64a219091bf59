import time
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.urls import reverse
from django.utils import timezone

from blacklist_portal.accounts.middleware import LOGIN_TIME_KEY
from blacklist_portal.audit.models import AuditEvent

HOME_URL = reverse("accounts:home")
LOGIN_URL = reverse("accounts:login")
LOGOUT_URL = reverse("accounts:logout")


def role_home(user):
    return reverse("accounts:role_home", args=[user.primary_role.value])


def session_row(client):
    return Session.objects.get(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value)


def is_sent_to_login(response, next_url=HOME_URL):
    return response.status_code == 302 and response["Location"] == f"{LOGIN_URL}?next={next_url}"


def test_idle_timeout_is_thirty_minutes_renewed_on_every_request():
    assert settings.PORTAL_SESSION_IDLE_SECONDS == 30 * 60
    assert settings.SESSION_COOKIE_AGE == settings.PORTAL_SESSION_IDLE_SECONDS
    assert settings.SESSION_SAVE_EVERY_REQUEST is True
    assert settings.PORTAL_SESSION_ABSOLUTE_SECONDS == 12 * 3600


def test_each_request_pushes_the_session_expiry_thirty_minutes_ahead(client, login, lender_staff):
    login(client, lender_staff)
    row = session_row(client)
    Session.objects.filter(pk=row.pk).update(expire_date=timezone.now() + timedelta(minutes=1))

    client.get(role_home(lender_staff))

    remaining = session_row(client).expire_date - timezone.now()
    assert timedelta(minutes=29) < remaining <= timedelta(minutes=30)


def test_a_session_idle_for_thirty_minutes_is_over(client, login, lender_staff):
    login(client, lender_staff)
    assert client.get(HOME_URL).status_code == 302  # to the role's home: signed in
    Session.objects.filter(pk=session_row(client).pk).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    assert is_sent_to_login(client.get(HOME_URL))


def test_login_records_the_login_time_in_the_session(client, lender_staff):
    before = time.time()

    client.post(LOGIN_URL, {"username": "alice", "password": "Lamp-orbit-2931"})

    assert before <= client.session[LOGIN_TIME_KEY] <= time.time()


def _set_login_time(client, seconds_ago):
    session = client.session
    session[LOGIN_TIME_KEY] = time.time() - seconds_ago
    session.save()


def test_an_active_session_ends_twelve_hours_after_login(client, login, lender_staff, zh):
    login(client, lender_staff)
    _set_login_time(client, 12 * 3600 + 5)

    response = client.get(role_home(lender_staff))

    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL
    assert "_auth_user_id" not in client.session
    assert is_sent_to_login(client.get(HOME_URL))
    login_page = client.get(LOGIN_URL)
    assert zh("Your session has ended. Please sign in again.") in login_page.content.decode()


def test_a_session_just_under_twelve_hours_old_goes_on(client, login, lender_staff):
    login(client, lender_staff)
    _set_login_time(client, 12 * 3600 - 60)

    assert client.get(role_home(lender_staff)).status_code == 200


def test_the_absolute_limit_also_ends_two_factor_sessions(client, login, regulator):
    login(client, regulator)
    assert client.get(role_home(regulator)).status_code == 200
    _set_login_time(client, 13 * 3600)

    assert client.get(role_home(regulator))["Location"] == LOGIN_URL
    assert is_sent_to_login(client.get(HOME_URL))


class TestLogout:
    def test_logout_ends_the_session(self, client, login, lender_staff):
        login(client, lender_staff)
        key = client.cookies[settings.SESSION_COOKIE_NAME].value

        response = client.post(LOGOUT_URL)

        assert response.status_code == 302
        assert response["Location"] == LOGIN_URL
        assert not Session.objects.filter(session_key=key).exists()
        assert is_sent_to_login(client.get(HOME_URL))

    def test_logout_ends_two_factor_verification_too(self, client, login, review_officer):
        login(client, review_officer)
        client.post(LOGOUT_URL)

        client.force_login(review_officer)

        assert client.get(HOME_URL)["Location"].split("?")[0] == reverse("accounts:otp_verify")

    def test_logout_needs_a_post(self, client, login, lender_staff):
        login(client, lender_staff)

        response = client.get(LOGOUT_URL)

        assert response.status_code == 405
        assert client.get(HOME_URL)["Location"] == role_home(lender_staff)

    def test_unverified_two_factor_user_can_still_log_out(self, client, review_officer):
        client.force_login(review_officer)

        response = client.post(LOGOUT_URL)

        assert response["Location"] == LOGIN_URL
        assert "_auth_user_id" not in client.session

    def test_logout_is_audited(self, client, login, lender_staff):
        login(client, lender_staff)

        client.post(LOGOUT_URL)

        event = AuditEvent.objects.get(action="auth.logout")
        assert event.actor == lender_staff
        assert event.institution == lender_staff.institution
