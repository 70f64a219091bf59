"""Demo data (seed_demo, totp) and the roles' capabilities."""

import re
from io import StringIO

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from blacklist_portal.accounts.management.commands.seed_demo import DEMO_PASSWORD
from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.accounts.roles import (
    CAPABILITIES,
    ROLE_CAPABILITIES,
    ROLE_INSTITUTION_KIND,
    ROLES_REQUIRING_2FA,
    Role,
)


def seed():
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def counts():
    return (Institution.objects.count(), User.objects.count(), TOTPDevice.objects.count())


class TestRoles:
    def test_every_role_is_a_group_with_exactly_its_capabilities(self, db):
        for role in Role:
            group = Group.objects.get(name=role.value)
            codenames = set(group.permissions.values_list("codename", flat=True))
            assert codenames == set(ROLE_CAPABILITIES[role]), role

    def test_there_is_no_group_besides_the_roles(self, db):
        assert set(Group.objects.values_list("name", flat=True)) == set(Role.values)

    def test_role_permissions_are_capabilities_not_model_permissions(self, db):
        perms = Permission.objects.filter(group__name__in=Role.values).distinct()

        assert {(p.content_type.app_label, p.content_type.model) for p in perms} == {
            ("accounts", "capability")
        }
        assert {p.codename for p in perms} <= {c for c, _ in CAPABILITIES}

    def test_every_capability_is_known(self):
        known = {c for c, _ in CAPABILITIES}
        for role, capabilities in ROLE_CAPABILITIES.items():
            assert set(capabilities) <= known, role
        assert set(ROLE_CAPABILITIES) == set(Role)

    def test_capabilities_follow_the_role(self, lender_staff, lender_admin, review_officer):
        assert lender_staff.has_perm("accounts.report_entry")
        assert not lender_staff.has_perm("accounts.manage_institution_users")
        assert lender_admin.has_perm("accounts.manage_institution_users")
        assert not lender_admin.has_perm("accounts.report_entry")
        assert review_officer.has_perm("accounts.review_entry")
        assert not review_officer.has_perm("accounts.report_entry")

    def test_a_deactivated_user_has_no_capability(self, lender_admin):
        lender_admin.is_active = False
        lender_admin.save()

        assert not User.objects.get(pk=lender_admin.pk).has_perm(
            "accounts.manage_institution_users"
        )


class TestSeedDemo:
    def test_it_creates_a_user_for_every_role(self, db):
        seed()

        for role in Role:
            users = User.objects.filter(groups__name=role.value)
            assert users.exists(), role
            for user in users:
                assert user.institution.kind == ROLE_INSTITUTION_KIND[role]
                assert user.check_password(DEMO_PASSWORD)

    def test_it_creates_three_lenders_with_staff_and_admin(self, db):
        seed()

        lenders = Institution.objects.filter(kind=Institution.Kind.LENDER)
        assert lenders.count() == 3
        for lender in lenders:
            roles = set(lender.users.values_list("groups__name", flat=True))
            assert roles == {"lender_staff", "lender_admin"}, lender
        assert Institution.objects.filter(kind=Institution.Kind.OPERATOR).count() == 1
        assert Institution.objects.filter(kind=Institution.Kind.REGULATOR).count() == 1

    def test_two_factor_roles_get_a_confirmed_device_and_no_one_else(self, db):
        seed()

        for user in User.objects.all():
            has_device = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            assert has_device == any(r in ROLES_REQUIRING_2FA for r in user.roles), user

    def test_it_is_idempotent_and_prints_the_same_logins(self, db):
        first = seed()
        before = counts()

        second = seed()

        assert counts() == before
        assert second == first
        secrets = re.findall(r"\b[A-Z2-7]{32}\b", first)
        assert len(secrets) == len(ROLES_REQUIRING_2FA)
        assert DEMO_PASSWORD in first

    def test_it_prints_every_login(self, db):
        output = seed()

        for username in User.objects.values_list("username", flat=True):
            assert re.search(rf"\s{re.escape(username)}\s", output), username

    def test_printed_secret_gives_the_codes_the_portal_accepts(self, db):
        import base64

        output = seed()
        secret = re.search(r"\sreviewer\s+([A-Z2-7]{32})", output).group(1)
        key = base64.b32decode(secret + "=" * (-len(secret) % 8))
        device = TOTPDevice.objects.get(user__username="reviewer")

        assert key == device.bin_key
        code = TOTP(key).token()
        assert device.verify_token(f"{code:06d}")

    def test_the_totp_command_prints_the_current_code(self, db):
        seed()
        device = TOTPDevice.objects.get(user__username="regulator")
        out = StringIO()

        call_command("totp", "regulator", stdout=out)

        expected = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        assert out.getvalue().strip() == f"{expected.token():06d}"

    def test_it_keeps_a_password_that_was_changed(self, db):
        seed()
        user = User.objects.get(username="lender_a_staff")
        user.set_password("Changed-by-me-42")
        user.save()

        seed()

        user.refresh_from_db()
        assert user.check_password("Changed-by-me-42")

    def test_demo_data_is_refused_where_it_is_disabled(self, db, settings):
        settings.PORTAL_DEMO_DATA_ALLOWED = False

        with pytest.raises(CommandError):
            call_command("seed_demo", stdout=StringIO())
        with pytest.raises(CommandError):
            call_command("totp", "reviewer", stdout=StringIO())
        assert not User.objects.exists()

    def test_demo_users_can_sign_in(self, client, db):
        seed()

        response = client.post(
            "/accounts/login/", {"username": "lender_b_admin", "password": DEMO_PASSWORD}
        )

        assert response.status_code == 302
        assert client.get("/accounts/home/")["Location"] == "/accounts/home/lender_admin/"
