"""The API's views: parse and check the input, call the service, shape the JSON. Every error
goes out through errors.error_response; bad input is a 4xx, never a 500, and stores nothing."""

import json
import re
from datetime import date
from decimal import Decimal
from functools import wraps

from django.conf import settings
from django.core.exceptions import (
    PermissionDenied,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
    ValidationError,
)
from django.db import DataError, IntegrityError
from django.http import HttpRequest, JsonResponse, UnreadablePostError
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from blacklist_portal.pagination import cheap_page
from blacklist_portal.uploads import DOCUMENT_KINDS, UploadRejected, check_upload
from registry.importing.columns import COLUMNS_BY_KEY
from registry.importing.rows import FieldError, parse_amount, parse_row
from registry.models import Entry
from registry.selectors import entries_of_member
from registry.services import ReportingSuspended, entry_report

from ..batch import BatchTooLarge, SubjectResult, batch_screen, parse_subject
from ..choices import MEMBER_PURPOSES, Channel, LoanType, Purpose
from ..models import Query
from ..services import Application, QueryRefused, QueryRequest, consent_upload, query_run
from .auth import api_key_required
from .errors import JSON_DUMPS, ApiError, error_response, from_validation_error, invalid
from .schema import SCHEMA

ENTRIES_PER_PAGE = 50
# Amount columns are numeric(14, 2).
MAX_AMOUNT = Decimal("999999999999.99")
MAX_EVIDENCE_FILES = 10
_QUERY_NO = re.compile(r"[A-Z0-9]{1,24}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Tab, line feed and carriage return may appear in remarks; other control characters never
# belong in a field (and a NUL byte would make PostgreSQL raise).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _json(data: dict, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, json_dumps_params=JSON_DUMPS)


def endpoint(*methods: str):
    """An authenticated API view answering `methods`; ApiError and unreadable requests become
    JSON errors."""

    def decorator(view):
        @wraps(view)
        def inner(request: HttpRequest, *args, **kwargs):
            if request.method not in methods:
                return error_response(
                    405, "method_not_allowed",
                    format_lazy(_("Method {method} is not allowed here."), method=request.method),
                    headers={"Allow": ", ".join(methods)},
                )
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.message, exc.fields)
            except RequestDataTooBig:
                return error_response(413, "too_large", _("The request body is too large."))
            except (MultiPartParserError, TooManyFieldsSent, TooManyFilesSent, UnreadablePostError):
                return error_response(400, "malformed_request", _("The request body could not be read."))
            except DataError:
                # A value the database cannot hold that no check caught: still the client's.
                return error_response(400, "invalid", _("A value is too long or too large."))
            except IntegrityError:
                # Two requests changed the same thing at once; the transaction was rolled back.
                return error_response(409, "conflict", _("Another request changed the same data at the same time; try again."))

        return api_key_required(inner)

    return decorator


# --- Input helpers ------------------------------------------------------------------------------


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _json_object(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, 5000-digit numbers, nesting
        raise ApiError(400, "malformed_json", _("The request body is not valid JSON.")) from None
    if not isinstance(data, dict):
        raise invalid({}, _("The request body must be a JSON object."))
    return data


def _date(value, key: str, errors: dict) -> date | None:
    if value is None or value == "":
        errors[key] = _("A value is required.")
        return None
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    errors[key] = _("Enter a date as YYYY-MM-DD.")
    return None


def _subject_fields(data: dict, errors: dict) -> tuple[str, str, str, int | None] | None:
    """id_type, id_number and name normalised (and consent_id), or errors filled in."""
    parsed = parse_subject(0, data)
    if isinstance(parsed, SubjectResult):
        errors.update(parsed.fields or {"": parsed.message})
        return None
    return parsed.id_type, parsed.id_number, parsed.name, parsed.consent_id


def _application(data: dict, purpose: str | None, errors: dict) -> Application | None:
    raw = data.get("application")
    if raw is None:
        if purpose == Purpose.LOAN_APPROVAL:
            errors["application"] = _(
                "A loan approval query needs the application: amount, loan_type and applied_on."
            )
        return None
    if not isinstance(raw, dict):
        errors["application"] = _("Expected an object with amount, loan_type and applied_on.")
        return None
    amount = None
    value = raw.get("amount")
    if value is None or value == "":
        errors["application.amount"] = _("A value is required.")
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        errors["application.amount"] = _("Expected an amount such as \"12345.60\".")
    else:
        try:
            amount = parse_amount(value)
        except FieldError as exc:
            errors["application.amount"] = exc.message
        else:
            if amount <= 0:
                errors["application.amount"] = _("The amount must be greater than zero.")
            elif amount > MAX_AMOUNT:
                errors["application.amount"] = _("Amount is too large: {amount}; the largest accepted is 1,000,000,000,000.00.").format(amount=amount)
    loan_type = raw.get("loan_type")
    if not isinstance(loan_type, str) or loan_type not in LoanType.values:
        errors["application.loan_type"] = format_lazy(
            _("Use one of: {choices}."), choices=", ".join(LoanType.values)
        )
    applied_on = _date(raw.get("applied_on"), "application.applied_on", errors)
    if applied_on and applied_on > timezone.localdate():
        errors["application.applied_on"] = _("The application date cannot be in the future.")
    if any(k.startswith("application.") for k in errors):
        return None
    return Application(amount=amount, loan_type=loan_type, applied_on=applied_on)


def _query_request(data: dict) -> QueryRequest:
    errors: dict = {}
    subject = _subject_fields(data, errors)
    purpose = data.get("purpose")
    if not isinstance(purpose, str) or purpose not in MEMBER_PURPOSES:
        errors["purpose"] = format_lazy(
            _("Use one of: {choices}."), choices=", ".join(MEMBER_PURPOSES)
        )
        purpose = None
    application = _application(data, purpose, errors)
    if errors:
        raise invalid(errors)
    id_type, id_number, name, consent_id = subject
    return QueryRequest(
        id_type=id_type, id_number=id_number, name=name, purpose=purpose,
        consent_id=consent_id, application=application,
    )


def _form_text(request: HttpRequest, errors: dict) -> dict[str, str]:
    """The form fields of a multipart request, refusing control characters."""
    values = {}
    for key in request.POST:
        value = request.POST.get(key, "")
        if _CONTROL.search(value):
            errors[key] = _("Control characters are not allowed.")
        else:
            values[key] = value
    return values


def _checked_files(request: HttpRequest, key: str, errors: dict, *, most: int) -> list:
    """The uploads of `key`, checked by content; 413 at once for a file over the limit."""
    files = request.FILES.getlist(key)
    if len(files) > most:
        errors[key] = format_lazy(_("Send at most {n} files."), n=most)
        return []
    checked = []
    for f in files:
        try:
            checked.append((f, check_upload(f, allowed=DOCUMENT_KINDS)))
        except UploadRejected as exc:
            if exc.code == "too_large":
                raise ApiError(413, "too_large", exc.message, {key: exc.message}) from None
            errors[key] = exc.message
    return checked


def _refused(refused: QueryRefused) -> ApiError:
    fields = {refused.field: refused.message} if refused.field else {}
    return ApiError(refused.status, refused.code, refused.message, fields)


def _forbidden() -> ApiError:
    return ApiError(403, "forbidden", _("This API key is not allowed to do this."))


# --- Output -------------------------------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat() if value else None


_RESULT_FIELDS = ("query_no", "created_at", "purpose", "channel", "hit", "name_matches", "result", "risk_grade", "fee")


def _result_json(values: dict, queried_at: str | None = None) -> dict:
    result = values["result"]
    return {
        "query_no": values["query_no"],
        "queried_at": queried_at or timezone.localtime(values["created_at"]).isoformat(),
        "purpose": values["purpose"],
        "channel": values["channel"],
        "hit": values["hit"],
        "name_matches": values["name_matches"],
        "entries": result.get("entries") or [],
        # None when the name does not match: nothing about the person is shown.
        "multi_lending": result.get("multi_lending"),
        "risk_grade": values["risk_grade"],
        "risk_factors": (result.get("risk") or {}).get("factors", []),
        "fee": f"{values['fee']:.2f}",
    }


def query_json(query: Query) -> dict:
    return _result_json({f: getattr(query, f) for f in _RESULT_FIELDS})


def _subject_result_json(r: SubjectResult, queried_at: str) -> dict:
    if r.status == "ok":
        return {"index": r.index, "status": "ok", **_result_json(r.row, queried_at)}
    error = {"code": r.code, "message": str(r.message)}
    if r.fields:
        error["fields"] = {k: str(v) for k, v in r.fields.items()}
    return {"index": r.index, "status": r.status, "error": error}


def _entry_json(entry: Entry) -> dict:
    s = entry.subject
    return {
        "id": entry.pk,
        "contract_no": entry.contract_no,
        "status": entry.status,
        "subject_type": s.subject_type,
        "id_type": s.id_type,
        "id_number_masked": s.id_masked,
        "name_masked": s.name_masked,
        "role": entry.subject_role,
        "category": entry.category,
        "loan_amount": str(entry.loan_amount),
        "overdue_amount": None if entry.overdue_amount is None else str(entry.overdue_amount),
        "delinquent_since": _iso(entry.delinquent_since),
        "notified_on": _iso(entry.notified_on),
        "settled_on": _iso(entry.settled_on),
        "submitted_at": timezone.localtime(entry.submitted_at).isoformat(),
        "disputed": entry.disputed,
        "return_reason": entry.return_reason,
    }


# --- Endpoints ----------------------------------------------------------------------------------


def schema(request: HttpRequest) -> JsonResponse:
    """The OpenAPI document; public, so that members' developers can read it before they
    have a key."""
    if request.method not in ("GET", "HEAD"):
        return error_response(
            405, "method_not_allowed",
            format_lazy(_("Method {method} is not allowed here."), method=request.method),
            headers={"Allow": "GET, HEAD"},
        )
    return _json(SCHEMA)


@endpoint("POST")
def consents(request: HttpRequest) -> JsonResponse:
    errors: dict = {}
    values = _form_text(request, errors)
    subject = _subject_fields(values, errors)
    purposes = []
    for value in request.POST.getlist("purposes"):
        purposes += [p.strip() for p in value.split(",") if p.strip()]
    unknown = [p for p in purposes if p not in MEMBER_PURPOSES]
    if unknown:
        errors["purposes"] = format_lazy(
            _("Unknown purpose {value}; use one or more of: {choices}."),
            value=", ".join(unknown)[:60], choices=", ".join(MEMBER_PURPOSES),
        )
    signed_on = _date(values.get("signed_on"), "signed_on", errors)
    expires_on = _date(values.get("expires_on"), "expires_on", errors)
    if not request.FILES.getlist("file"):
        errors["file"] = _("Attach the signed consent (PDF, JPEG or PNG).")
    checked = _checked_files(request, "file", errors, most=1)
    if errors:
        raise invalid(errors)
    (f, upload), = checked
    id_type, id_number, name, _consent = subject
    try:
        consent = consent_upload(
            actor=None, api_key=request.api_key, member=request.member, f=f, checked=upload,
            id_type=id_type, id_number=id_number, name=name, purposes=list(dict.fromkeys(purposes)),
            signed_on=signed_on, expires_on=expires_on, channel=Channel.API, request=request,
        )
    except PermissionDenied:
        raise _forbidden() from None
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    return _json(
        {"id": consent.pk, "expires_on": consent.expires_on.isoformat(), "purposes": consent.purposes},
        status=201,
    )


@endpoint("POST")
def queries(request: HttpRequest) -> JsonResponse:
    req = _query_request(_json_object(request))
    try:
        query = query_run(
            member=request.member, channel=Channel.API, req=req, api_key=request.api_key,
            request=request,
        )
    except QueryRefused as refused:
        raise _refused(refused) from None
    return _json(query_json(query), status=201)


@endpoint("GET")
def query_detail(request: HttpRequest, query_no: str) -> JsonResponse:
    # Another member's query is a 404, like one that does not exist (or a malformed number).
    query = None
    if _QUERY_NO.fullmatch(query_no):
        query = Query.objects.filter(query_no=query_no, member=request.member).first()
    if query is None:
        raise ApiError(404, "not_found", _("There is no query of your institution with this number."))
    return _json(query_json(query))


@endpoint("POST")
def batch_screenings(request: HttpRequest) -> JsonResponse:
    data = _json_object(request)
    subjects = data.get("subjects")
    limit = settings.PORTAL_BATCH_MAX_SUBJECTS
    if isinstance(subjects, list) and len(subjects) > limit:
        raise ApiError(
            413, "too_many_subjects",
            format_lazy(_("A batch may hold at most {limit} subjects."), limit=limit),
            {"subjects": format_lazy(_("{n} subjects sent."), n=len(subjects))},
        )
    errors: dict = {}
    if data.get("purpose") != Purpose.POST_LOAN:
        errors["purpose"] = _("Batch screening is for post-loan management only: use post_loan.")
    if not isinstance(subjects, list):
        errors["subjects"] = _("Expected a list of subjects.")
    elif not subjects:
        errors["subjects"] = _("Send at least one subject.")
    if errors:
        raise invalid(errors)
    try:
        batch = batch_screen(member=request.member, subjects=subjects, api_key=request.api_key, request=request)
    except BatchTooLarge:  # checked above; kept for callers that bypass the view
        raise ApiError(413, "too_many_subjects", _("Too many subjects.")) from None
    except QueryRefused as refused:
        raise _refused(refused) from None
    queried_at = timezone.localtime(batch.queried_at).isoformat()
    return _json(
        {
            "results": [_subject_result_json(r, queried_at) for r in batch.results],
            "summary": {
                "total": len(batch.results),
                "ok": batch.count("ok"),
                "refused": batch.count("refused"),
                "invalid": batch.count("invalid"),
                "fee": f"{batch.fee:.2f}",
            },
        },
        status=201,
    )


@endpoint("GET", "POST")
def entries(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        return _entry_create(request)
    contract_no = request.GET.get("contract_no", "").strip()
    if _CONTROL.search(contract_no):
        raise invalid({"contract_no": _("Control characters are not allowed.")})
    # Lists show masked identifiers only: never decrypt what is not shown.
    qs = entries_of_member(member=request.member).defer(
        "subject__id_number", "subject__name", "subject__phone"
    )
    if contract_no:
        qs = qs.filter(contract_no=contract_no)
    page = cheap_page(qs, request.GET.get("page"), per_page=ENTRIES_PER_PAGE)
    next_url = None
    if page.has_next:
        params = request.GET.copy()
        params["page"] = str(page.next_page_number())
        next_url = f"{reverse('api:entries')}?{params.urlencode()}"
    return _json({
        "results": [_entry_json(e) for e in page.object_list],
        "page": page.number,
        "has_next": page.has_next,
        "next": next_url,
    })


def _entry_create(request: HttpRequest) -> JsonResponse:
    errors: dict = {}
    values = _form_text(request, errors)
    for key in values:
        if key not in COLUMNS_BY_KEY:
            errors[key] = _("Unknown field: use the column names of the bulk report format.")
    for key in request.FILES:
        if key != "evidence":
            errors[key] = _("Unknown file field: send evidence as \"evidence\".")
    result = parse_row({k: v for k, v in values.items() if k in COLUMNS_BY_KEY}, today=timezone.localdate())
    for column, message in result.errors:
        errors[column] = f"{errors[column]} {message}" if column in errors else message
    evidence = _checked_files(request, "evidence", errors, most=MAX_EVIDENCE_FILES)
    if errors:
        raise invalid(errors)
    try:
        # The entry is attributed to the key's creator; entry_report checks the key's member.
        entry, outcome = entry_report(
            actor=request.api_key.created_by, api_key=request.api_key, member=request.member,
            row=result.data, evidence=evidence, request=request,
        )
    except PermissionDenied:
        raise _forbidden() from None
    except ReportingSuspended as exc:
        raise ApiError(403, "member_suspended", exc.messages[0]) from None
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    return _json({"id": entry.pk, "status": entry.status, "outcome": outcome}, status=201)


@api_key_required
def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return error_response(404, "not_found", _("There is no such API endpoint."))
