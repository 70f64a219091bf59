import time
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils.translation import gettext as _

LOGIN_TIME_KEY = "portal_login_at"


class SessionLifetimeMiddleware:
    """Ends a session PORTAL_SESSION_ABSOLUTE_SECONDS after login, however active it is.
    (The idle timeout is the session cookie's age, renewed on every request.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            started = request.session.get(LOGIN_TIME_KEY)
            now = time.time()
            if started is None:
                request.session[LOGIN_TIME_KEY] = now
            elif now - started > settings.PORTAL_SESSION_ABSOLUTE_SECONDS:
                logout(request)
                messages.info(request, _("Your session has ended. Please sign in again."))
                return redirect(settings.LOGIN_URL)
        return self.get_response(request)


class TwoFactorRequiredMiddleware:
    """Users whose role requires two-factor reach nothing but the two-factor pages, the
    language switch and logout until they have verified a TOTP code in this session."""

    EXEMPT = {
        ("accounts", "otp_verify"),
        ("accounts", "otp_enrol"),
        ("accounts", "logout"),
        ("", "set_language"),
    }

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and user.requires_two_factor and not user.is_verified():
            try:
                match = resolve(request.path_info)
                key = (match.namespace, match.url_name)
            except Resolver404:
                key = None
            if key not in self.EXEMPT:
                target = reverse("accounts:otp_verify")
                if request.method == "GET":
                    target += "?" + urlencode({"next": request.get_full_path()})
                return redirect(target)
        return self.get_response(request)
