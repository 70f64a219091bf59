"""The one shape of every API error: ``{"error": {"code", "message", "fields"}}``.

Messages are lazy translations rendered here, at response time, so they come out in the
request's language: LocaleMiddleware has activated it from Accept-Language (Chinese unless the
client asks for English).
"""

from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _

JSON_DUMPS = {"ensure_ascii": False}


class ApiError(Exception):
    """Raised by the views' helpers; turned into an error response by `api_view`."""

    def __init__(self, status: int, code: str, message, fields: dict | None = None):
        super().__init__(str(message))
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


def error_response(
    status: int, code: str, message, fields: dict | None = None, *, headers: dict | None = None
) -> JsonResponse:
    body = {
        "error": {
            "code": code,
            "message": str(message),
            "fields": {str(k): str(v) for k, v in (fields or {}).items()},
        }
    }
    return JsonResponse(body, status=status, headers=headers, json_dumps_params=JSON_DUMPS)


def invalid(fields: dict, message=None) -> ApiError:
    """400 for input that parsed but is wrong: one message per field."""
    return ApiError(400, "invalid", message or _("Some fields are not valid."), fields)


def from_validation_error(exc: ValidationError) -> ApiError:
    """A service's ValidationError as a 400: a dict of fields, or one message."""
    if hasattr(exc, "error_dict"):
        fields = {
            field: " ".join(str(m) for error in errors for m in error.messages)
            for field, errors in exc.error_dict.items()
        }
        non_field = fields.pop("__all__", None)
        return invalid(fields, non_field)
    return invalid({}, " ".join(str(m) for m in exc.messages))
