"""Django admin, for platform admins only (two-factor verified)."""

from urllib.parse import urlencode

from django.contrib import admin
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from blacklist_portal.accounts.roles import Role


class PortalAdminSite(admin.AdminSite):
    site_header = _("Microloan blacklist portal — administration")
    site_title = _("Portal administration")
    index_title = _("Administration")

    def has_permission(self, request) -> bool:
        user = request.user
        return bool(
            user.is_active
            and user.is_authenticated
            and user.has_role(Role.PLATFORM_ADMIN)
            and user.is_verified()
        )

    def login(self, request, extra_context=None):
        if request.user.is_authenticated:
            # Signed in but not a (verified) platform admin: the admin does not exist for them.
            raise Http404
        # One login page for the whole portal, with lockout and two-factor.
        return redirect(f"{reverse('accounts:login')}?{urlencode({'next': request.get_full_path()})}")


portal_admin = PortalAdminSite(name="admin")
