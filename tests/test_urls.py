"""Every URL in the URLconf is either explicitly public or sends anonymous users to the login
page (401 under /api/). A new URL that is neither makes `test_every_url_is_covered` fail."""

import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.converters import IntConverter, PathConverter, UUIDConverter
from django.utils.regex_helper import normalize

from blacklist_portal.accounts.roles import Role

LOGIN = reverse("accounts:login")

# Answer anonymous requests on purpose. Keys are "namespace:name" (or the route of an unnamed
# pattern). Everything else must send an anonymous user to the login page.
PUBLIC = {
    "accounts:login",
    "accounts:invitation",  # carries its own one-time token
    "set_language",
    "healthz",
    "root",  # a redirect to accounts:home, which itself requires login
    "admin:login",  # a redirect to the portal's login page
    "admin:logout",
}

SAMPLE_UUID = str(uuid.UUID(int=1))


@dataclass
class Route:
    key: str
    url: str
    callback: object


def _sample_value(converter, group_regex: str | None) -> str:
    if isinstance(converter, IntConverter):
        return "1"
    if isinstance(converter, UUIDConverter):
        return SAMPLE_UUID
    if isinstance(converter, PathConverter):
        return "x"
    if converter is not None:
        return "x"
    # A plain regex group: a word from an alternation such as (?P<app_label>accounts|audit),
    # else a digit, else a letter.
    if group_regex:
        first = group_regex.split("|")[0]
        if re.fullmatch(r"[\w-]+", first):
            return first
    return "1"


def _walk(resolver, prefix="", namespace="", converters=None):
    converters = converters or {}
    for entry in resolver.url_patterns:
        regex = entry.pattern.regex.pattern.removeprefix("^")
        entry_converters = {**converters, **getattr(entry.pattern, "converters", {})}
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}{entry.namespace}:"
            yield from _walk(entry, prefix + regex, ns, entry_converters)
        elif isinstance(entry, URLPattern):
            full_regex = prefix + regex
            key = f"{namespace}{entry.name}" if entry.name else f"{namespace}{full_regex}"
            fmt, params = normalize(full_regex)[0]
            values = {}
            for param in params:
                group = re.search(rf"\(\?P<{param}>([^)]*)\)", full_regex)
                values[param] = _sample_value(
                    entry_converters.get(param), group.group(1) if group else None
                )
            yield Route(key=key, url="/" + fmt % values, callback=entry.callback)


def all_routes() -> list[Route]:
    return list(_walk(get_resolver()))


ROUTES = all_routes()


def _is_login_redirect(response, requested) -> bool:
    if response.status_code != 302:
        return False
    target = urlsplit(response["Location"])
    return target.path == LOGIN and target.query == f"next={quote(requested, safe='/')}"


def test_the_walk_finds_the_portals_urls():
    keys = {r.key for r in ROUTES}

    assert {"accounts:login", "accounts:user_roles", "admin:index", "healthz"} <= keys
    assert len(ROUTES) > 20


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.key)
def test_each_sample_url_reaches_its_own_view(route):
    assert resolve(route.url).func is route.callback


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.key)
def test_every_url_is_covered(client, db, route):
    """Anonymous: public URLs answer; /api/ gives 401; everything else sends to login (the
    admin via its own login URL, which forwards to the portal's)."""
    if route.key in PUBLIC:
        response = client.get(route.url)
        assert response.status_code < 500, route.url
        return

    response = client.get(route.url)

    if route.url.startswith("/api/"):
        assert response.status_code == 401, route.url
        return
    if route.key.startswith("admin:") or route.url.startswith("/admin/"):
        assert response.status_code == 302, route.url
        admin_login = response["Location"]
        assert urlsplit(admin_login).path == reverse("admin:login"), route.url
        response = client.get(admin_login)
        assert _is_login_redirect(response, admin_login), (route.url, response)
        return
    assert _is_login_redirect(response, route.url), (
        f"{route.key} ({route.url}) answered an anonymous user with "
        f"{response.status_code} {response.get('Location', '')}: protect it, or add it to PUBLIC"
    )


def test_public_names_all_exist():
    assert PUBLIC <= {r.key for r in ROUTES}


def test_public_pages_reveal_nothing_to_anonymous_users(client, db):
    assert client.get(LOGIN).status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/")["Location"] == reverse("accounts:home")
    assert client.get(reverse("accounts:home"))["Location"] == f"{LOGIN}?next=/accounts/home/"
    invitation = client.get(reverse("accounts:invitation", args=["MQ", "bad-token"]))
    assert invitation.context["validlink"] is False


class TestAdmin:
    @pytest.mark.parametrize("role", [r.value for r in Role if r != Role.PLATFORM_ADMIN])
    def test_other_roles_get_404(self, db, client, login, request, role):
        login(client, request.getfixturevalue(role))

        assert client.get("/admin/").status_code == 404
        assert client.get("/admin/accounts/user/").status_code == 404

    def test_a_verified_platform_admin_gets_in(self, client, login, platform_admin):
        login(client, platform_admin)

        assert client.get("/admin/").status_code == 200
        assert client.get("/admin/accounts/user/").status_code == 200

    def test_an_unverified_platform_admin_is_sent_to_the_code_page(self, client, platform_admin):
        client.force_login(platform_admin)

        response = client.get("/admin/")

        assert response["Location"] == reverse("accounts:otp_verify")

    def test_anonymous_ends_up_on_the_portal_login(self, client, db):
        response = client.get("/admin/", follow=True)

        assert response.redirect_chain[-1][0].startswith(f"{LOGIN}?next=")
        assert response.status_code == 200
        assert response.templates[0].name == "accounts/login.html"

    def test_the_user_admin_offers_only_role_groups_and_active_institutions(
        self, client, login, platform_admin, lender_a, lender_b
    ):
        from django.contrib.auth.models import Group

        from blacklist_portal.accounts.models import Institution

        Group.objects.create(name="not-a-role")
        lender_b.status = Institution.Status.SUSPENDED
        lender_b.save()
        login(client, platform_admin)

        form = client.get("/admin/accounts/user/add/").context["adminform"].form

        assert {g.name for g in form.fields["groups"].queryset} == set(Role.values)
        institutions = set(form.fields["institution"].queryset)
        assert lender_a in institutions
        assert lender_b not in institutions
