"""A lender admin manages their own institution's users, and no one else's."""

import re

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from blacklist_portal.accounts import services
from blacklist_portal.accounts.models import User
from blacklist_portal.accounts.roles import Role
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.audit.services import audit_verify_chain

USER_LIST = reverse("accounts:user_list")
INVITE = reverse("accounts:user_invite")
LOGIN = reverse("accounts:login")
NEW_PASSWORD = "Tea-kettle-river-58"


def roles_url(user):
    return reverse("accounts:user_roles", args=[user.pk])


def active_url(user):
    return reverse("accounts:user_set_active", args=[user.pk])


def role_names(user):
    return sorted(user.groups.values_list("name", flat=True))


def invite_data(**overrides):
    return {
        "username": "bella",
        "full_name": "Bella Wang",
        "email": "bella@lender-a.example",
        "roles": ["lender_staff"],
        **overrides,
    }


class TestUserList:
    def test_it_shows_only_own_institution_users(
        self, client, login, lender_admin, lender_staff, other_lender_staff, other_lender_admin
    ):
        login(client, lender_admin)

        response = client.get(USER_LIST)

        assert response.status_code == 200
        listed = [u.username for u in response.context["page"]]
        assert listed == ["alice", "anna"]
        html = response.content.decode()
        assert "charlie" not in html
        assert "chris" not in html

    def test_the_outsider_sees_only_their_own(
        self, client, login, lender_admin, lender_staff, other_lender_admin, other_lender_staff
    ):
        login(client, other_lender_admin)

        response = client.get(USER_LIST)

        assert [u.username for u in response.context["page"]] == ["charlie", "chris"]

    @pytest.mark.parametrize(
        "role", ["lender_staff", "review_officer", "counter_clerk", "regulator", "platform_admin"]
    )
    def test_users_without_the_capability_get_403(self, client, login, request, role, lender_admin):
        login(client, request.getfixturevalue(role))

        assert client.get(USER_LIST).status_code == 403
        assert client.get(INVITE).status_code == 403
        assert client.post(INVITE, invite_data()).status_code == 403
        assert client.get(roles_url(lender_admin)).status_code == 403
        assert client.post(active_url(lender_admin), {"active": "0"}).status_code == 403
        assert not User.objects.filter(username="bella").exists()
        lender_admin.refresh_from_db()
        assert lender_admin.is_active

    def test_query_count_does_not_grow_with_the_number_of_users(
        self, client, login, lender_admin, user_factory, django_assert_max_num_queries
    ):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        login(client, lender_admin)

        def count_queries():
            with CaptureQueriesContext(connection) as ctx:
                assert client.get(USER_LIST).status_code == 200
            return len(ctx.captured_queries)

        for i in range(5):
            user_factory(f"few{i:02}", Role.LENDER_STAFF)
        few = count_queries()
        for i in range(25):
            user_factory(f"many{i:02}", Role.LENDER_STAFF, Role.LENDER_ADMIN)
        with django_assert_max_num_queries(12):
            assert client.get(USER_LIST).status_code == 200
        many = count_queries()

        assert many == few


class TestInvite:
    def test_it_creates_a_user_in_own_institution_with_the_chosen_roles(
        self, client, login, lender_admin, django_capture_on_commit_callbacks
    ):
        login(client, lender_admin)

        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(INVITE, invite_data(roles=["lender_staff", "lender_admin"]))

        assert response.status_code == 302
        assert response["Location"] == USER_LIST
        bella = User.objects.get(username="bella")
        assert bella.institution == lender_admin.institution
        assert role_names(bella) == ["lender_admin", "lender_staff"]
        assert not bella.has_usable_password()
        assert bella.full_name == "Bella Wang"

    def test_it_writes_an_audit_event_with_the_acting_admin(
        self, client, login, lender_admin, django_capture_on_commit_callbacks
    ):
        login(client, lender_admin)

        with django_capture_on_commit_callbacks(execute=True):
            client.post(INVITE, invite_data())

        bella = User.objects.get(username="bella")
        event = AuditEvent.objects.get(action="user.invite")
        assert event.actor == lender_admin
        assert event.institution == lender_admin.institution
        assert (event.target_type, event.target_id) == ("accounts.user", str(bella.pk))
        assert event.details == {"roles": ["lender_staff"]}
        assert event.ip == "127.0.0.1"
        assert audit_verify_chain().ok

    def test_the_invitation_email_link_lets_the_user_choose_a_password(
        self, client, login, lender_admin, django_capture_on_commit_callbacks
    ):
        login(client, lender_admin)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(INVITE, invite_data())
        client.post(reverse("accounts:logout"))

        assert len(mail.outbox) == 1
        message = mail.outbox[0]
        assert message.to == ["bella@lender-a.example"]
        assert "bella" in message.body
        link = re.search(r"http://\S+(/accounts/invitation/\S+/)", message.body).group(1)

        set_password_page = client.get(link, follow=True)
        assert set_password_page.context["validlink"] is True
        response = client.post(
            set_password_page.redirect_chain[-1][0],
            {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        )
        assert response["Location"] == LOGIN

        assert User.objects.get(username="bella").check_password(NEW_PASSWORD)
        signed_in = client.post(LOGIN, {"username": "bella", "password": NEW_PASSWORD})
        assert signed_in.status_code == 302
        assert client.get(reverse("accounts:home"))["Location"] == "/accounts/home/lender_staff/"

    def test_the_invitation_link_works_only_once(
        self, client, login, lender_admin, django_capture_on_commit_callbacks
    ):
        login(client, lender_admin)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(INVITE, invite_data())
        client.post(reverse("accounts:logout"))
        link = re.search(r"(/accounts/invitation/\S+/)", mail.outbox[0].body).group(1)
        page = client.get(link, follow=True)
        client.post(
            page.redirect_chain[-1][0],
            {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        )

        again = client.get(link, follow=True)

        assert again.context["validlink"] is False

    def test_the_invitation_refuses_a_weak_password(
        self, client, login, lender_admin, django_capture_on_commit_callbacks
    ):
        login(client, lender_admin)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(INVITE, invite_data())
        client.post(reverse("accounts:logout"))
        link = re.search(r"(/accounts/invitation/\S+/)", mail.outbox[0].body).group(1)
        page = client.get(link, follow=True)

        response = client.post(
            page.redirect_chain[-1][0],
            {"new_password1": "abcdefghijkl", "new_password2": "abcdefghijkl"},
        )

        assert response.status_code == 200
        assert not User.objects.get(username="bella").has_usable_password()

    def test_no_email_is_sent_when_the_invitation_is_rolled_back(
        self, lender_admin, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks() as callbacks:
            services.user_invite(
                actor=lender_admin,
                institution=lender_admin.institution,
                username="bella",
                full_name="Bella",
                email="bella@example.com",
                roles=[Role.LENDER_STAFF],
            )

        # Sent on commit only: queued, not yet sent.
        assert len(callbacks) == 1
        assert mail.outbox == []

    @pytest.mark.parametrize(
        "role",
        ["review_officer", "senior_review_officer", "counter_clerk", "regulator", "platform_admin"],
    )
    def test_the_form_refuses_roles_a_lender_admin_may_not_give(
        self, client, login, lender_admin, role
    ):
        login(client, lender_admin)

        response = client.post(INVITE, invite_data(roles=[role]))

        assert response.status_code == 200
        assert "roles" in response.context["form"].errors
        assert 'id="id_roles_error"' in response.content.decode()
        assert not User.objects.filter(username="bella").exists()
        assert not AuditEvent.objects.filter(action="user.invite").exists()

    @pytest.mark.parametrize(
        "role",
        [
            Role.REVIEW_OFFICER,
            Role.SENIOR_REVIEW_OFFICER,
            Role.COUNTER_CLERK,
            Role.REGULATOR,
            Role.PLATFORM_ADMIN,
        ],
    )
    def test_the_service_refuses_roles_a_lender_admin_may_not_give(self, lender_admin, role):
        with pytest.raises(ValidationError):
            services.user_invite(
                actor=lender_admin,
                institution=lender_admin.institution,
                username="bella",
                full_name="Bella",
                email="bella@example.com",
                roles=[role],
            )

        assert not User.objects.filter(username="bella").exists()

    def test_the_service_refuses_to_invite_into_another_institution(self, lender_admin, lender_b):
        with pytest.raises(PermissionDenied):
            services.user_invite(
                actor=lender_admin,
                institution=lender_b,
                username="bella",
                full_name="Bella",
                email="bella@example.com",
                roles=[Role.LENDER_STAFF],
            )

        assert not User.objects.filter(username="bella").exists()

    def test_the_service_refuses_staff_without_the_capability(self, lender_staff):
        with pytest.raises(PermissionDenied):
            services.user_invite(
                actor=lender_staff,
                institution=lender_staff.institution,
                username="bella",
                full_name="Bella",
                email="bella@example.com",
                roles=[Role.LENDER_STAFF],
            )

    def test_a_platform_admin_may_not_give_a_lender_role_to_operator_staff(
        self, platform_admin, operator
    ):
        with pytest.raises(ValidationError):
            services.user_invite(
                actor=platform_admin,
                institution=operator,
                username="bella",
                full_name="Bella",
                email="bella@example.com",
                roles=[Role.LENDER_STAFF],
            )

    def test_a_taken_username_is_refused_whatever_its_case(
        self, client, login, lender_admin, other_lender_staff
    ):
        login(client, lender_admin)

        response = client.post(INVITE, invite_data(username="CHARLIE"))

        assert response.status_code == 200
        assert "username" in response.context["form"].errors
        assert User.objects.filter(username__iexact="charlie").count() == 1


class TestRoles:
    def test_lender_admin_changes_a_colleagues_roles(
        self, client, login, lender_admin, lender_staff
    ):
        login(client, lender_admin)

        response = client.post(roles_url(lender_staff), {"roles": ["lender_staff", "lender_admin"]})

        assert response["Location"] == USER_LIST
        assert role_names(lender_staff) == ["lender_admin", "lender_staff"]
        event = AuditEvent.objects.get(action="user.set_roles")
        assert event.actor == lender_admin
        assert event.target_id == str(lender_staff.pk)
        assert event.details == {
            "before": ["lender_staff"],
            "after": ["lender_staff", "lender_admin"],
        }

    def test_the_roles_page_shows_the_current_roles(
        self, client, login, lender_admin, lender_staff
    ):
        login(client, lender_admin)

        response = client.get(roles_url(lender_staff))

        assert response.status_code == 200
        assert response.context["form"].initial == {"roles": ["lender_staff"]}

    def test_it_checks_ownership(self, client, login, lender_admin, other_lender_staff):
        login(client, lender_admin)

        assert client.get(roles_url(other_lender_staff)).status_code == 404
        response = client.post(roles_url(other_lender_staff), {"roles": ["lender_admin"]})

        assert response.status_code == 404
        assert role_names(other_lender_staff) == ["lender_staff"]
        assert not AuditEvent.objects.filter(action="user.set_roles").exists()

    def test_a_missing_user_is_404_like_another_institutions(self, client, login, lender_admin):
        login(client, lender_admin)

        assert client.get(reverse("accounts:user_roles", args=[999999])).status_code == 404

    def test_review_roles_cannot_be_given(self, client, login, lender_admin, lender_staff):
        login(client, lender_admin)

        response = client.post(roles_url(lender_staff), {"roles": ["review_officer"]})

        assert response.status_code == 200
        assert "roles" in response.context["form"].errors
        assert role_names(lender_staff) == ["lender_staff"]

    def test_the_service_refuses_review_roles(self, lender_admin, lender_staff):
        with pytest.raises(ValidationError):
            services.user_set_roles(
                actor=lender_admin, user=lender_staff, roles=[Role.REVIEW_OFFICER]
            )

        assert role_names(lender_staff) == ["lender_staff"]

    def test_the_service_refuses_another_institutions_user(self, lender_admin, other_lender_staff):
        with pytest.raises(PermissionDenied):
            services.user_set_roles(
                actor=lender_admin, user=other_lender_staff, roles=[Role.LENDER_ADMIN]
            )

        assert role_names(other_lender_staff) == ["lender_staff"]

    def test_an_admin_cannot_drop_their_own_admin_role(self, client, login, lender_admin):
        login(client, lender_admin)

        response = client.post(roles_url(lender_admin), {"roles": ["lender_staff"]})

        assert response.status_code == 200
        assert "roles" in response.context["form"].errors
        assert role_names(lender_admin) == ["lender_admin"]

    def test_at_least_one_role_is_required(self, client, login, lender_admin, lender_staff):
        login(client, lender_admin)

        # What a browser sends with every box unticked: only the CSRF token.
        response = client.post(roles_url(lender_staff), {"csrfmiddlewaretoken": "x"})

        assert response.status_code == 200
        assert "roles" in response.context["form"].errors
        assert role_names(lender_staff) == ["lender_staff"]


class TestDeactivate:
    def test_lender_admin_deactivates_a_colleague(self, client, login, lender_admin, lender_staff):
        login(client, lender_admin)

        response = client.post(active_url(lender_staff), {"active": "0"})

        assert response["Location"] == USER_LIST
        lender_staff.refresh_from_db()
        assert lender_staff.is_active is False
        event = AuditEvent.objects.get(action="user.deactivate")
        assert event.actor == lender_admin
        assert event.target_id == str(lender_staff.pk)

    def test_a_deactivated_user_cannot_sign_in(self, client, login, lender_admin, lender_staff):
        login(client, lender_admin)
        client.post(active_url(lender_staff), {"active": "0"})
        client.post(reverse("accounts:logout"))

        response = client.post(LOGIN, {"username": "alice", "password": "Lamp-orbit-2931"})

        assert response.status_code == 200
        assert "_auth_user_id" not in client.session

    def test_a_deactivated_user_is_signed_out_of_an_open_session(
        self, client, login, lender_admin, lender_staff
    ):
        login(client, lender_staff)
        services.user_set_active(actor=lender_admin, user=lender_staff, active=False)

        response = client.get(reverse("accounts:home"))

        assert response.status_code == 302
        assert response["Location"].startswith(LOGIN)

    def test_lender_admin_reactivates_a_colleague(self, client, login, lender_admin, lender_staff):
        lender_staff.is_active = False
        lender_staff.save(update_fields=["is_active"])
        login(client, lender_admin)

        client.post(active_url(lender_staff), {"active": "1"})

        lender_staff.refresh_from_db()
        assert lender_staff.is_active is True
        assert AuditEvent.objects.get(action="user.activate").actor == lender_admin

    def test_it_checks_ownership(self, client, login, lender_admin, other_lender_staff):
        login(client, lender_admin)

        response = client.post(active_url(other_lender_staff), {"active": "0"})

        assert response.status_code == 404
        other_lender_staff.refresh_from_db()
        assert other_lender_staff.is_active is True
        assert not AuditEvent.objects.filter(action="user.deactivate").exists()

    def test_an_admin_cannot_deactivate_themselves(self, client, login, lender_admin, zh):
        login(client, lender_admin)

        response = client.post(active_url(lender_admin), {"active": "0"}, follow=True)

        lender_admin.refresh_from_db()
        assert lender_admin.is_active is True
        assert zh("You cannot deactivate your own account.") in response.content.decode()
        assert not AuditEvent.objects.filter(action="user.deactivate").exists()

    def test_it_needs_a_post(self, client, login, lender_admin, lender_staff):
        login(client, lender_admin)

        assert client.get(active_url(lender_staff)).status_code == 405
        lender_staff.refresh_from_db()
        assert lender_staff.is_active is True
