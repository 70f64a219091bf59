"""Sign-ins, failed sign-ins and sign-outs are in the audit log, with the address they came from."""

from django.urls import reverse

from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.audit.services import audit_verify_chain

LOGIN = reverse("accounts:login")


def actions():
    return list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))


def test_a_login_is_recorded_with_user_institution_and_ip(client, lender_staff):
    client.post(
        LOGIN, {"username": "alice", "password": "Lamp-orbit-2931"}, REMOTE_ADDR="198.51.100.20"
    )

    event = AuditEvent.objects.get(action="auth.login")
    assert event.actor == lender_staff
    assert event.institution == lender_staff.institution
    assert (event.target_type, event.target_id) == ("accounts.user", str(lender_staff.pk))
    assert event.ip == "198.51.100.20"


def test_a_failed_login_is_recorded_with_the_username_but_never_the_password(client, lender_staff):
    client.post(LOGIN, {"username": "alice", "password": "Secret-guess-99"})

    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.actor is None
    assert event.details == {"username": "alice"}
    assert event.ip == "127.0.0.1"
    assert "Secret-guess-99" not in str(AuditEvent.objects.values_list())


def test_a_failed_login_for_an_unknown_user_is_recorded_the_same_way(client, db):
    client.post(LOGIN, {"username": "ghost", "password": "whatever-1A"})

    event = AuditEvent.objects.get(action="auth.login_failed")
    assert event.details == {"username": "ghost"}


def test_login_and_logout_appear_in_order_and_the_chain_holds(client, lender_staff):
    client.post(LOGIN, {"username": "alice", "password": "wrong-Password-1"})
    client.post(LOGIN, {"username": "alice", "password": "Lamp-orbit-2931"})
    client.post(reverse("accounts:logout"))

    assert actions() == ["auth.login_failed", "auth.login", "auth.logout"]
    logout = AuditEvent.objects.get(action="auth.logout")
    assert logout.actor == lender_staff
    report = audit_verify_chain()
    assert (report.ok, report.count) == (True, 3)


def test_the_forwarded_address_is_used_only_behind_a_proxy(client, lender_staff, settings):
    headers = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.9"}
    settings.PORTAL_BEHIND_PROXY = False
    client.post(LOGIN, {"username": "alice", "password": "wrong-Password-1"}, **headers)
    settings.PORTAL_BEHIND_PROXY = True
    client.post(LOGIN, {"username": "alice", "password": "wrong-Password-1"}, **headers)

    ips = list(AuditEvent.objects.order_by("seq").values_list("ip", flat=True))
    # Only the last hop, the one our proxy added, is trusted; the rest is client-supplied.
    assert ips == ["10.0.0.2", "203.0.113.9"]
