"""Every URL in the URLconf is either explicitly public or sends anonymous users to the login
page (401 under /api/). A new URL that is neither makes `test_every_url_is_covered` fail."""

import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

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
    "accounts:logout",  # POST only; ends whatever session there is
    "api:schema",  # the OpenAPI document, readable before a member has a key
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


def _walk(resolver, prefix="", namespace="", converters=None, route=""):
    converters = converters or {}
    for entry in resolver.url_patterns:
        entry_route = route + str(entry.pattern).removeprefix("^")
        regex = entry.pattern.regex.pattern.removeprefix("^")
        entry_converters = {**converters, **getattr(entry.pattern, "converters", {})}
        if isinstance(entry, URLResolver):
            ns = namespace
            if entry.namespace:
                ns = f"{namespace}{entry.namespace}:"
            yield from _walk(entry, prefix + regex, ns, entry_converters, entry_route)
        elif isinstance(entry, URLPattern):
            full_regex = prefix + regex
            key = f"{namespace}{entry.name}" if entry.name else f"{namespace}{entry_route}"
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
    return target.path == LOGIN and parse_qs(target.query) == {"next": [requested]}


def test_the_walk_finds_the_portals_urls():
    keys = {r.key for r in ROUTES}

    assert {"accounts:login", "accounts:user_roles", "admin:index", "healthz"} <= keys
    assert len(ROUTES) > 20


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.key)
def test_each_sample_url_reaches_its_own_view(route):
    assert resolve(route.url).func is route.callback


def coverage_problem(client, route: Route) -> str | None:
    """None if the route answers an anonymous GET as it must; else what is wrong.

    Public URLs answer (no server error); /api/ gives 401; the admin sends to its login URL,
    which forwards to the portal's; everything else sends straight to the portal's login."""
    response = client.get(route.url)
    if route.key in PUBLIC:
        return None if response.status_code < 500 else f"public page failed: {response}"
    if route.url.startswith("/api/"):
        return None if response.status_code == 401 else f"API answered {response.status_code}"
    if route.key.startswith("admin:"):
        admin_login = response.get("Location", "")
        if response.status_code != 302 or urlsplit(admin_login).path != reverse("admin:login"):
            return f"admin answered {response.status_code} {admin_login}"
        if parse_qs(urlsplit(admin_login).query) != {"next": [route.url]}:
            return f"admin login lost the page asked for: {admin_login}"
        response = client.get(admin_login)
        route = Route(route.key, admin_login, route.callback)
    if not _is_login_redirect(response, route.url):
        return (
            f"{route.key} ({route.url}) answered an anonymous user with "
            f"{response.status_code} {response.get('Location', '')}: protect it, or add it "
            "to PUBLIC"
        )
    return None


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.key)
def test_every_url_is_covered(client, db, route):
    assert coverage_problem(client, route) is None


def test_an_unprotected_url_would_be_caught(client, db, settings):
    from types import ModuleType

    from django.http import HttpResponse
    from django.urls import include, path

    from blacklist_portal import urls as portal_urls

    def leaky(request, **kwargs):
        return HttpResponse("personal data")

    urlconf = ModuleType("leaky_urls")
    urlconf.urlpatterns = [
        # First, so that no catch-all of the portal's swallows them.
        path("leak/<int:pk>/", leaky, name="leak"),
        path("api/v1/leak/", leaky, name="api_leak"),
        path("more/", include(([path("unnamed/", leaky)], "more"))),
        *portal_urls.urlpatterns,
    ]
    settings.ROOT_URLCONF = urlconf
    routes = {r.key: r for r in all_routes()}

    assert "leak" in coverage_problem(client, routes["leak"])
    assert coverage_problem(client, routes["api_leak"]) == "API answered 200"
    unnamed = next(r for k, r in routes.items() if k.startswith("more:"))
    assert unnamed.url == "/more/unnamed/"
    assert "PUBLIC" in coverage_problem(client, unnamed)
    assert coverage_problem(client, routes["accounts:user_list"]) is None


def test_public_names_all_exist():
    assert {r.key for r in ROUTES} >= PUBLIC


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

        for url in ("/admin/", "/admin/accounts/user/", "/admin/audit/auditevent/"):
            response = client.get(url, follow=True)
            assert response.status_code == 404, url
            assert not [t.name for t in response.templates if (t.name or "").startswith("admin/")]

    def test_a_verified_platform_admin_gets_in(self, client, login, platform_admin):
        login(client, platform_admin)

        response = client.get("/admin/")

        assert response.status_code == 200
        assert response.context["user"] == platform_admin

    def test_a_verified_platform_admin_can_manage_institutions_and_users(
        self, client, login, platform_admin, lender_staff
    ):
        login(client, platform_admin)

        index = client.get("/admin/")
        models = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}

        assert {"Institution", "User"} <= models
        assert client.get("/admin/accounts/institution/").status_code == 200
        assert client.get("/admin/accounts/user/").status_code == 200
        assert client.get(f"/admin/accounts/user/{lender_staff.pk}/change/").status_code == 200

    def test_an_unverified_platform_admin_is_sent_to_the_code_page(self, client, platform_admin):
        client.force_login(platform_admin)

        for url in ("/admin/", "/admin/accounts/user/"):
            assert client.get(url)["Location"] == reverse("accounts:otp_verify") + "?next=" + quote(url, safe=""), url

    def test_anonymous_ends_up_on_the_portal_login(self, client, db):
        response = client.get("/admin/", follow=True)

        assert urlsplit(response.redirect_chain[-1][0]).path == LOGIN
        assert response.status_code == 200
        assert response.templates[0].name == "accounts/login.html"

    def test_the_user_form_offers_only_role_groups_and_active_institutions(
        self, lender_a, lender_b
    ):
        from django.contrib.auth.models import Group

        from blacklist_portal.accounts.admin import UserAdminForm
        from blacklist_portal.accounts.models import Institution

        Group.objects.create(name="not-a-role")
        lender_b.status = Institution.Status.SUSPENDED
        lender_b.save()

        form = UserAdminForm()

        assert {g.name for g in form.fields["groups"].queryset} == set(Role.values)
        institutions = set(form.fields["institution"].queryset)
        assert lender_a in institutions
        assert lender_b not in institutions

    def test_the_user_form_refuses_a_role_that_does_not_fit_the_institution(self, lender_a):
        from django.contrib.auth.models import Group

        from blacklist_portal.accounts.admin import UserAdminForm

        form = UserAdminForm(
            data={
                "username": "newbie",
                "institution": lender_a.pk,
                "groups": [Group.objects.get(name="review_officer").pk],
                "is_active": True,
            }
        )

        assert not form.is_valid()
        assert "groups" in form.errors
