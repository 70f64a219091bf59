import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from blacklist_portal.audit.services import audit_record
from blacklist_portal.pagination import cheap_page
from blacklist_portal.uploads import private_file_response

from . import services
from .access import access_apikey, access_consent, access_query, access_receipt, access_statement
from .choices import Channel, Purpose
from .forms import (
    ApiKeyForm,
    ConsentForm,
    QueryForm,
    RepresentativeQueryForm,
    SelfQueryForm,
    StatementGenerateForm,
)
from .models import ApiKey, Consent, FeeLine, Query, Statement


def _query_string(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _apply(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


# --- Consents ---------------------------------------------------------------------------------


@login_required
@permission_required("accounts.upload_consent", raise_exception=True)
def consent_list(request: HttpRequest) -> HttpResponse:
    qs = Consent.objects.filter(member=request.user.institution).select_related("subject").order_by("-uploaded_at")
    return render(request, "billing/consent_list.html", {"page": cheap_page(qs, request.GET.get("page")),
                                                          "today": timezone.localdate()})


@login_required
@permission_required("accounts.upload_consent", raise_exception=True)
def consent_upload(request: HttpRequest) -> HttpResponse:
    form = ConsentForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            consent = services.consent_upload(
                actor=request.user, member=request.user.institution, f=data["file"], checked=form.checked_file,
                id_type=data["id_type"], id_number=data["id_number"], name=data["name"], purposes=data["purposes"],
                signed_on=data["signed_on"], expires_on=data["expires_on"], request=request,
            )
        except ValidationError as exc:
            _apply(form, exc)
        else:
            messages.success(request, _("Consent no. %(n)s saved. Use this number in queries.") % {"n": consent.pk})
            return redirect(f"{_url('billing:query_create')}?consent={consent.pk}")
    return render(request, "billing/consent_form.html", {"form": form})


def _url(name: str) -> str:
    from django.urls import reverse

    return reverse(name)


@login_required
def consent_download(request: HttpRequest, pk: int) -> HttpResponse:
    consent = access_consent(request.user, pk)
    audit_record(actor=request.user, action="consent.download", target=consent, request=request)
    return private_file_response(consent.file, kind=consent.kind, download_name=consent.original_name)


# --- Queries ----------------------------------------------------------------------------------


def _refused(form, refused: services.QueryRefused) -> None:
    form.add_error(refused.field if refused.field in form.fields else None, refused.message)


@login_required
@permission_required("accounts.query_register", raise_exception=True)
def query_create(request: HttpRequest) -> HttpResponse:
    form = QueryForm(request.POST or None, initial={"consent": request.GET.get("consent"), "purpose": Purpose.LOAN_APPROVAL})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        application = None
        if data["purpose"] == Purpose.LOAN_APPROVAL:
            application = services.Application(amount=data["amount"], loan_type=data["loan_type"], applied_on=data["applied_on"])
        req = services.QueryRequest(
            id_type=data["id_type"], id_number=data["id_number"], name=data["name"], purpose=data["purpose"],
            consent_id=data.get("consent"), application=application,
        )
        try:
            query = services.query_run(member=request.user.institution, channel=Channel.WEB, req=req,
                                       user=request.user, request=request)
        except services.QueryRefused as refused:
            _refused(form, refused)
        else:
            return redirect("billing:query_detail", query_no=query.query_no)
    consents = (
        Consent.objects.filter(member=request.user.institution, expires_on__gte=timezone.localdate())
        .select_related("subject").order_by("-uploaded_at")[:10]
    )
    return render(request, "billing/query_form.html", {"form": form, "consents": consents})


@login_required
def query_detail(request: HttpRequest, query_no: str) -> HttpResponse:
    query = access_query(request.user, query_no)
    audit_record(actor=request.user, action="query.view", target=query, request=request)
    template = "billing/query_print.html" if request.GET.get("print") else "billing/query_detail.html"
    return render(request, template, {"query": query, "result": query.result, "receipt": getattr(query, "receipt", None)})


@login_required
def query_log(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.has_perm("accounts.supervise"):
        qs = Query.objects.all()
    elif user.has_perm("accounts.query_register") or user.has_perm("accounts.view_statements"):
        qs = Query.objects.filter(member=user.institution)
    else:
        raise Http404
    channel = request.GET.get("channel")
    if channel in Channel.values:
        qs = qs.filter(channel=channel)
    qs = qs.select_related("member", "user").order_by("-created_at")
    if user.has_perm("accounts.supervise"):
        # A regulator reading every member's queries (masked subjects) is on record too.
        audit_record(actor=user, action="query_log.view", request=request,
                     details={"channel": channel or "", "page": request.GET.get("page", "1")})
    return render(request, "billing/query_log.html", {
        "page": cheap_page(qs, request.GET.get("page")), "query": _query_string(request),
        "channels": Channel.choices, "all_members": user.has_perm("accounts.supervise"),
    })


# --- Counter ----------------------------------------------------------------------------------


@login_required
@permission_required("accounts.serve_counter", raise_exception=True)
def counter_home(request: HttpRequest) -> HttpResponse:
    today_start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    recent = (Query.objects.filter(user=request.user, created_at__gte=today_start)
              .order_by("-created_at")[:20])
    return render(request, "billing/counter_home.html", {"recent": recent})


@login_required
@permission_required("accounts.serve_counter", raise_exception=True)
def counter_self_query(request: HttpRequest) -> HttpResponse:
    form = SelfQueryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            query = services.self_query_run(
                clerk=request.user, id_type=data["id_type"], id_number=data["id_number"], name=data["name"],
                identity_check=dict(form.fields["identity_check"].choices)[data["identity_check"]], request=request,
            )
        except services.QueryRefused as refused:
            _refused(form, refused)
        except ValidationError as exc:
            _apply(form, exc)
        else:
            return redirect("billing:query_detail", query_no=query.query_no)
    return render(request, "billing/counter_form.html", {"form": form, "title": _("Self-query"),
                                                          "lead": _("Check the ID card in person first. Two self-queries per calendar year are free.")})


@login_required
@permission_required("accounts.serve_counter", raise_exception=True)
def counter_member_query(request: HttpRequest) -> HttpResponse:
    form = RepresentativeQueryForm(request.POST or None, request.FILES or None, initial={"purpose": Purpose.LOAN_APPROVAL})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        member = data["member"]
        stored = []
        try:
            with transaction.atomic():
                consent = services.consent_upload(
                    actor=request.user, member=member, f=data["consent_file"], checked=form.checked_file,
                    id_type=data["id_type"], id_number=data["id_number"], name=data["name"], purposes=[data["purpose"]],
                    signed_on=data["consent_signed_on"], expires_on=data["consent_expires_on"],
                    channel=Channel.COUNTER, request=request,
                )
                stored.append(consent.file)
                application = None
                if data["purpose"] == Purpose.LOAN_APPROVAL:
                    application = services.Application(amount=data["amount"], loan_type=data["loan_type"], applied_on=data["applied_on"])
                query = services.query_run(
                    member=member, channel=Channel.COUNTER, user=request.user, request=request,
                    req=services.QueryRequest(id_type=data["id_type"], id_number=data["id_number"], name=data["name"],
                                              purpose=data["purpose"], consent_id=consent.pk, application=application,
                                              representative=data["representative"]),
                )
        except services.QueryRefused as refused:
            # The consent and the query were rolled back together: remove the stored scan, and
            # record the refusal now that the transaction that held its audit row is gone.
            for name in stored:
                default_storage.delete(name)
            audit_record(actor=request.user, institution=member, action="query.refused", request=request,
                         details={"reason": refused.code, "channel": Channel.COUNTER, "purpose": data["purpose"]})
            form.add_error("consent_expires_on" if refused.field == "consent" else refused.field, refused.message)
        except ValidationError as exc:
            for name in stored:
                default_storage.delete(name)
            _apply(form, exc)
        else:
            return redirect("billing:query_detail", query_no=query.query_no)
    return render(request, "billing/counter_form.html", {"form": form, "title": _("Representative query"), "multipart": True,
                                                          "lead": _("A member's representative with the borrower's paper consent: scan it in.")})


@login_required
def receipt_print(request: HttpRequest, pk: int) -> HttpResponse:
    receipt = access_receipt(request.user, pk)
    return render(request, "billing/receipt.html", {"receipt": receipt})


# --- Statements -------------------------------------------------------------------------------


@login_required
def statement_list(request: HttpRequest) -> HttpResponse:
    user = request.user
    admin = user.has_perm("accounts.manage_prices")
    if admin or user.has_perm("accounts.supervise"):
        qs = Statement.objects.select_related("member")
    elif user.has_perm("accounts.view_statements"):
        qs = Statement.objects.filter(member=user.institution)
    else:
        raise Http404
    month_start = timezone.localdate().replace(day=1)
    spend = None
    if not admin:
        spend = FeeLine.objects.filter(member=user.institution, month=month_start).aggregate(total=Sum("amount"))["total"]
    form = StatementGenerateForm(request.POST or None)
    if request.method == "POST" and admin and form.is_valid():
        n = services.statements_generate_for_month(month=form.cleaned_data["month"])
        messages.success(request, _("%(n)s statements generated.") % {"n": n})
        return redirect("billing:statement_list")
    return render(request, "billing/statement_list.html", {
        "page": cheap_page(qs.order_by("-month", "member__name"), request.GET.get("page")),
        "admin": admin, "form": form, "spend": spend or 0, "month_start": month_start,
    })


@login_required
def statement_detail(request: HttpRequest, pk: int) -> HttpResponse:
    statement = access_statement(request.user, pk)
    lines = statement.lines.select_related("query").order_by("sequence")
    if request.GET.get("format") == "csv":
        return _statement_csv(statement, lines)
    return render(request, "billing/statement_detail.html", {
        "statement": statement, "page": cheap_page(lines, request.GET.get("page"), per_page=100),
        "can_mark_paid": request.user.has_perm("accounts.manage_prices") and statement.status == Statement.Status.UNPAID,
    })


class _Echo:
    def write(self, value):
        return value


def _statement_csv(statement: Statement, lines) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def rows():
        yield "\ufeff" + writer.writerow([_("No."), _("Query number"), _("Time"), _("Channel"), _("Purpose"), _("Hit"), _("Amount (CNY)")])
        for line in lines.iterator(chunk_size=2000):
            q = line.query
            yield writer.writerow([line.sequence, q.query_no, timezone.localtime(q.created_at).strftime("%Y-%m-%d %H:%M:%S"),
                                   q.get_channel_display(), q.get_purpose_display(), _("Yes") if q.hit else _("No"), line.amount])
        yield writer.writerow(["", "", "", "", "", _("Total"), statement.total])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="statement-{statement.month:%Y-%m}.csv"'
    return response


@login_required
@require_POST
def statement_mark_paid(request: HttpRequest, pk: int) -> HttpResponse:
    statement = access_statement(request.user, pk)
    services.statement_mark_paid(statement=statement, actor=request.user, request=request)
    messages.success(request, _("Marked as paid."))
    return redirect("billing:statement_detail", pk=statement.pk)


# --- API keys ---------------------------------------------------------------------------------


@login_required
@permission_required("accounts.manage_api_keys", raise_exception=True)
def apikey_list(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        _key, new_key = services.apikey_create(actor=request.user, name=form.cleaned_data["name"], request=request)
        form = ApiKeyForm()
    keys = ApiKey.objects.filter(member=request.user.institution).order_by("-created_at")
    return render(request, "billing/apikey_list.html", {"keys": keys, "form": form, "new_key": new_key})


@login_required
@require_POST
def apikey_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    key = access_apikey(request.user, pk)
    services.apikey_revoke(actor=request.user, key=key, request=request)
    messages.success(request, _("The key was revoked; calls with it are refused from now on."))
    return redirect("billing:apikey_list")
