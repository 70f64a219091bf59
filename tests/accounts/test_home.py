import pytest
from django.urls import reverse

from blacklist_portal.accounts.roles import HOME_ORDER, Role

ROLES = [r.value for r in Role]


@pytest.mark.parametrize("role", ROLES)
def test_each_role_lands_on_its_own_home_page(db, client, login, request, role, zh):
    user = request.getfixturevalue(role)
    login(client, user)

    response = client.get(reverse("accounts:home"))

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/home/{role}/"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert page.context["role"] == Role(role)
    assert zh(Role(role).label) in page.content.decode()


@pytest.mark.parametrize("role", ROLES)
def test_a_user_cannot_open_another_roles_home(db, client, login, request, role):
    user = request.getfixturevalue(role)
    login(client, user)

    for other in ROLES:
        if other != role:
            response = client.get(reverse("accounts:role_home", args=[other]))
            assert response.status_code == 404, other


def test_an_unknown_role_home_is_not_found(client, login, lender_staff):
    login(client, lender_staff)

    assert client.get("/accounts/home/superuser/").status_code == 404


def test_a_user_with_two_roles_lands_on_the_higher_one_and_may_open_both(
    client, login, lender_staff
):
    lender_staff.groups.add(*_groups(Role.LENDER_ADMIN))
    login(client, lender_staff)

    assert client.get(reverse("accounts:home"))["Location"] == "/accounts/home/lender_admin/"
    assert client.get("/accounts/home/lender_staff/").status_code == 200
    assert HOME_ORDER.index(Role.LENDER_ADMIN) < HOME_ORDER.index(Role.LENDER_STAFF)


def test_a_user_without_a_role_is_told_so(client, login, user_factory, zh):
    login(client, user_factory("nobody"))

    response = client.get(reverse("accounts:home"))

    assert response.status_code == 200
    assert zh("No role assigned") in response.content.decode()


def test_the_root_url_sends_a_signed_in_user_home(client, login, lender_staff):
    login(client, lender_staff)

    assert client.get("/")["Location"] == reverse("accounts:home")


def test_navigation_offers_users_to_lender_admins_only(client, login, lender_admin, lender_staff):
    login(client, lender_admin)
    admin_nav = client.get("/accounts/home/lender_admin/").context["nav_items"]
    login(client, lender_staff)
    staff_nav = client.get("/accounts/home/lender_staff/").context["nav_items"]

    assert reverse("accounts:user_list") in [i["url"] for i in admin_nav]
    assert reverse("accounts:user_list") not in [i["url"] for i in staff_nav]
    assert reverse("admin:index") not in [i["url"] for i in admin_nav]


def test_navigation_offers_administration_to_platform_admins(client, login, platform_admin):
    login(client, platform_admin)

    nav = client.get("/accounts/home/platform_admin/").context["nav_items"]

    assert reverse("admin:index") in [i["url"] for i in nav]


def _groups(*roles):
    from django.contrib.auth.models import Group

    return Group.objects.filter(name__in=[r.value for r in roles])
