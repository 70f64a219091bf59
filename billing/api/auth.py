"""Bearer-key authentication for the API: `Authorization: Bearer <key>`.

A key acts for its institution (``request.member``). Every request is counted against the key's
rate limit in the cache (a fixed one-minute window: cheap, and shared by every web process when
the cache is Redis).
"""

import re
from datetime import datetime, timedelta
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt

from billing.choices import RefusalReason
from billing.models import ApiKey
from billing.services import apikey_authenticate

from .errors import error_response

# What a key issued by apikey_create can look like; anything else is refused before it
# reaches the database (a NUL byte would make PostgreSQL raise).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="api"'}
# last_used_at is a hint for the admin's key list, not a log: one write a minute is plenty.
LAST_USED_PRECISION = timedelta(minutes=1)
WINDOW_SECONDS = 60


def _now() -> datetime:
    return timezone.now()


def _bearer_token(request) -> str | None:
    scheme, _sep, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _TOKEN.fullmatch(token):
        return None
    return token


def _retry_after(key: ApiKey, now: datetime) -> int | None:
    """Count this request; seconds until the window ends if the key is over its limit."""
    epoch = now.timestamp()
    window = int(epoch // WINDOW_SECONDS)
    counter = f"api-rate:{key.prefix}:{window}"
    cache.add(counter, 0, timeout=WINDOW_SECONDS * 2)
    try:
        count = cache.incr(counter)
    except ValueError:  # the counter expired between add and incr
        cache.add(counter, 1, timeout=WINDOW_SECONDS * 2)
        count = 1
    if count <= settings.PORTAL_API_RATE_LIMIT:
        return None
    return max(1, (window + 1) * WINDOW_SECONDS - int(epoch))


def _touch(key: ApiKey, now: datetime) -> None:
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def api_key_required(view):
    """Authenticate the bearer key, refuse suspended institutions, apply the rate limit, and set
    ``request.api_key`` and ``request.member``. Keys are not cookies, so no CSRF check."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        raw = _bearer_token(request)
        if raw is None:
            return error_response(
                401, "unauthenticated", _("Send your API key as: Authorization: Bearer <key>."),
                headers=_CHALLENGE,
            )
        key = apikey_authenticate(raw)
        if key is None:
            return error_response(
                401, "invalid_key", _("This API key is not valid or has been revoked."),
                headers=_CHALLENGE,
            )
        if not key.member.is_active:
            return error_response(403, RefusalReason.MEMBER_SUSPENDED.value, RefusalReason.MEMBER_SUSPENDED.label)
        now = _now()
        wait = _retry_after(key, now)
        if wait is not None:
            return error_response(
                429, "rate_limited",
                _("Too many requests with this key: at most %(limit)s a minute. Try again in %(seconds)s seconds.")
                % {"limit": settings.PORTAL_API_RATE_LIMIT, "seconds": wait},
                headers={"Retry-After": str(wait)},
            )
        _touch(key, now)
        request.api_key = key
        request.member = key.member
        return view(request, *args, **kwargs)

    return wrapper
