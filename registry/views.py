import csv

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from blacklist_portal.audit.services import audit_record
from blacklist_portal.pagination import cheap_page
from blacklist_portal.uploads import private_file_response

from . import bulk, selectors, services
from .access import access_batch, access_entry, access_evidence, access_subject
from .filters import MemberEntryFilter, ReviewQueueFilter
from .forms import EntryForm, LoadForm, ReasonForm, SettleForm, StatementForm, UploadForm
from .importing.report import spreadsheet_safe
from .importing.template import template_csv_bytes, template_xlsx_bytes
from .models import Entry, ImportBatch


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


# --- Member views -------------------------------------------------------------------------


@login_required
@permission_required("accounts.report_entry", raise_exception=True)
def entry_list(request: HttpRequest) -> HttpResponse:
    qs = selectors.entries_of_member(member=request.user.institution)
    filterset = MemberEntryFilter(request.GET or None, queryset=qs)
    qs = filterset.qs if filterset.is_bound and filterset.is_valid() else qs
    if request.GET.get("format") == "csv":
        return _entries_csv(request, qs)
    page = cheap_page(qs, request.GET.get("page"))
    return render(
        request,
        "registry/entry_list.html",
        {"filter": filterset, "page": page, "query": _query_without_page(request),
         "today": timezone.localdate()},
    )


class _Echo:
    def write(self, value):
        return value


def _entries_csv(request: HttpRequest, qs) -> StreamingHttpResponse:
    """Streams, so an export of a million rows never sits in memory. Masked identifiers only."""
    audit_record(actor=request.user, action="entry.export", request=request,
                 details={"filters": {k: v for k, v in request.GET.items() if k != "format"}})
    writer = csv.writer(_Echo())
    today = timezone.localdate()
    header = [_("Contract number"), _("Name"), _("ID number"), _("Role"), _("Category"),
              _("Status"), _("Loan amount (CNY)"), _("Overdue amount (CNY)"), _("Days past due"),
              _("Subject notified on"), _("Settled on"), _("Submitted at"), _("Under dispute")]

    def rows():
        yield "\ufeff" + writer.writerow(header)
        for e in qs.iterator(chunk_size=2000):
            yield writer.writerow([spreadsheet_safe(str(v)) for v in [
                e.contract_no, e.subject.name_masked, e.subject.id_masked,
                e.get_subject_role_display(), e.get_category_display(), e.get_status_display(),
                e.loan_amount, e.overdue_amount or "", e.dpd_band(today),
                e.notified_on, e.settled_on or "", timezone.localtime(e.submitted_at).strftime("%Y-%m-%d %H:%M"),
                _("Yes") if e.disputed else "",
            ]])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="entries.csv"'
    return response


@login_required
@permission_required("accounts.report_entry", raise_exception=True)
def entry_create(request: HttpRequest) -> HttpResponse:
    form = EntryForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            entry, outcome = services.entry_report(
                actor=request.user,
                member=request.user.institution,
                row=form.parsed,
                evidence=form.checked_evidence,
                request=request,
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            if outcome == "unchanged":
                messages.info(request, _("This entry is already on file with the same content; nothing changed."))
            else:
                messages.success(request, _("The entry was submitted and waits for review."))
            return redirect("registry:entry_detail", pk=entry.pk)
    return render(request, "registry/entry_form.html", {"form": form, "entry": None})


@login_required
def entry_edit(request: HttpRequest, pk: int) -> HttpResponse:
    entry = access_entry(request.user, pk, for_write=True)
    if entry.status not in Entry.EDITABLE:
        messages.error(request, _("Only an entry pending review or returned can be edited."))
        return redirect("registry:entry_detail", pk=entry.pk)
    # The identity of the contract is fixed (a different contract or subject is a new entry)
    # and is not sent to the browser: the subject is shared by all members, and its clear
    # values are not this member's to see.
    form = EntryForm(
        request.POST or None, request.FILES or None, initial=_initial_from_entry(entry),
        fixed=_identity_of(entry),
    )
    if request.method == "POST" and form.is_valid():
        try:
            entry, _outcome = services.entry_report(
                actor=request.user, member=request.user.institution, row=form.parsed,
                evidence=form.checked_evidence, request=request,
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, _("The entry was resubmitted and waits for review."))
            return redirect("registry:entry_detail", pk=entry.pk)
    return render(request, "registry/entry_form.html", {"form": form, "entry": entry})


def _identity_of(entry: Entry) -> dict:
    s = entry.subject
    return {
        "subject_type": s.subject_type, "id_type": s.id_type, "id_number": s.id_number,
        "name": s.name, "phone": s.phone, "contract_no": entry.contract_no,
    }


def _initial_from_entry(entry: Entry) -> dict:
    return {
        "role": entry.subject_role, "category": entry.category,
        "loan_amount": entry.loan_amount, "overdue_amount": entry.overdue_amount or "",
        "delinquent_since": entry.delinquent_since, "court_name": entry.court_name,
        "case_number": entry.case_number, "judgment_date": entry.judgment_date,
        "notified_on": entry.notified_on, "notice_method": entry.notice_method,
        "settled_on": entry.settled_on, "remarks": entry.remarks,
    }


@login_required
def entry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    entry = access_entry(request.user, pk)
    audit_record(actor=request.user, action="entry.view", target=entry, request=request)
    can_write = entry.member_id == request.user.institution_id and request.user.has_perm("accounts.report_entry")
    history = entry.history.select_related("history_user").order_by("-history_date")[:20]
    return render(
        request,
        "registry/entry_detail.html",
        {
            "entry": entry,
            "evidence": list(entry.evidence.all()) + (list(entry.import_batch.evidence.all()) if entry.import_batch_id else []),
            "history": history,
            "can_write": can_write,
            "can_review": request.user.has_perm("accounts.review_entry") and entry.status == Entry.Status.PENDING_REVIEW,
            "can_reveal": request.user.has_perm("accounts.reveal_identifier"),
            "can_statement": request.user.has_perm("accounts.take_dispute") and request.user.institution.kind == "operator",
            "settle_form": SettleForm(),
            "reason_form": ReasonForm(),
            "statement_form": StatementForm(initial={"statement": entry.subject_statement}),
            "today": timezone.localdate(),
        },
    )


@login_required
@require_POST
def entry_settle(request: HttpRequest, pk: int) -> HttpResponse:
    entry = access_entry(request.user, pk, for_write=True)
    form = SettleForm(request.POST)
    if form.is_valid():
        try:
            services.entry_settle(entry=entry, actor=request.user, settled_on=form.cleaned_data["settled_on"], request=request)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Settlement recorded; the retention period runs from that date."))
    else:
        messages.error(request, _("Enter the settlement date."))
    return redirect("registry:entry_detail", pk=entry.pk)


@login_required
@require_POST
def entry_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    entry = access_entry(request.user, pk, for_write=True)
    form = ReasonForm(request.POST)
    if form.is_valid():
        try:
            services.entry_revoke(entry=entry, actor=request.user, reason=form.cleaned_data["reason"], request=request)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("The entry was revoked and is no longer shown to queries."))
    else:
        messages.error(request, _("Give the reason for revoking this entry."))
    return redirect("registry:entry_detail", pk=entry.pk)


@login_required
@require_POST
def entry_statement(request: HttpRequest, pk: int) -> HttpResponse:
    entry = access_entry(request.user, pk)
    form = StatementForm(request.POST)
    if form.is_valid():
        services.entry_set_statement(
            entry=entry, actor=request.user, statement=form.cleaned_data["statement"], request=request
        )
        messages.success(request, _("The subject's statement was saved."))
    return redirect("registry:entry_detail", pk=entry.pk)


@login_required
def evidence_download(request: HttpRequest, pk: int) -> HttpResponse:
    evidence = access_evidence(request.user, pk)
    audit_record(actor=request.user, action="evidence.download", target=evidence, request=request)
    return private_file_response(evidence.file, kind=evidence.kind, download_name=evidence.original_name)


@login_required
@require_POST
def subject_reveal(request: HttpRequest, pk: int) -> HttpResponse:
    subject = access_subject(request.user, pk)
    values = services.subject_reveal(subject=subject, actor=request.user, request=request)
    return render(request, "registry/subject_reveal.html", {"subject": subject, "values": values})


# --- Review -----------------------------------------------------------------------------------


@login_required
@permission_required("accounts.review_entry", raise_exception=True)
def review_queue(request: HttpRequest) -> HttpResponse:
    filterset = ReviewQueueFilter(request.GET or None, queryset=selectors.review_queue())
    qs = filterset.qs if filterset.is_bound and filterset.is_valid() else selectors.review_queue()
    page = cheap_page(qs, request.GET.get("page"))
    return render(request, "registry/review_queue.html",
                  {"filter": filterset, "page": page, "query": _query_without_page(request)})


@login_required
@require_POST
def entry_approve(request: HttpRequest, pk: int) -> HttpResponse:
    entry = access_entry(request.user, pk)
    try:
        services.entry_approve(entry=entry, actor=request.user, request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("registry:entry_detail", pk=entry.pk)
    messages.success(request, _("Approved: the entry is now visible to queries."))
    return redirect("registry:review_queue")


@login_required
@require_POST
def entry_return(request: HttpRequest, pk: int) -> HttpResponse:
    entry = access_entry(request.user, pk)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Say what the member must fix."))
        return redirect("registry:entry_detail", pk=entry.pk)
    try:
        services.entry_return(entry=entry, actor=request.user, reason=form.cleaned_data["reason"], request=request)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("registry:entry_detail", pk=entry.pk)
    messages.success(request, _("Returned to the member with your reason."))
    return redirect("registry:review_queue")


# --- Bulk files and feeds ------------------------------------------------------------------


def _upload(request: HttpRequest, *, is_feed: bool) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    feed_sources = None
    if is_feed:
        from .models import FeedSource

        feed_sources = FeedSource.objects.select_related("institution")
    if request.method == "POST" and form.is_valid():
        member = request.user.institution
        if is_feed:
            source_id = request.POST.get("source", "")
            source = feed_sources.filter(pk=int(source_id)).first() if source_id.isdigit() else None
            if source is None:
                form.add_error(None, _("Choose the data source of this file."))
                return render(request, "registry/upload.html", {"form": form, "is_feed": is_feed, "feed_sources": feed_sources})
            member = source.institution
        evidence = (form.cleaned_data["evidence"], form.checked_evidence) if form.checked_evidence else None
        try:
            batch = bulk.batch_create(actor=request.user, member=member, f=form.cleaned_data["file"],
                                      checked=form.checked_file, evidence=evidence, is_feed=is_feed, request=request)
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            return redirect("registry:batch_detail", pk=batch.pk)
    return render(request, "registry/upload.html", {"form": form, "is_feed": is_feed, "feed_sources": feed_sources})


@login_required
@permission_required("accounts.report_entry", raise_exception=True)
def batch_upload(request: HttpRequest) -> HttpResponse:
    return _upload(request, is_feed=False)


@login_required
@permission_required("accounts.load_feeds", raise_exception=True)
def feed_list(request: HttpRequest) -> HttpResponse:
    batches = ImportBatch.objects.filter(is_feed=True).select_related("member").order_by("-created_at")
    page = cheap_page(batches, request.GET.get("page"), per_page=25)
    return render(request, "registry/feed_list.html", {"page": page})


@login_required
@permission_required("accounts.load_feeds", raise_exception=True)
def feed_upload(request: HttpRequest) -> HttpResponse:
    return _upload(request, is_feed=True)


@login_required
@permission_required("accounts.report_entry", raise_exception=True)
def batch_list(request: HttpRequest) -> HttpResponse:
    batches = ImportBatch.objects.filter(member=request.user.institution, is_feed=False).order_by("-created_at")
    page = cheap_page(batches, request.GET.get("page"), per_page=25)
    return render(request, "registry/batch_list.html", {"page": page})


@login_required
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = access_batch(request.user, pk)
    form = LoadForm(request.POST or None, initial={"mode": ImportBatch.Mode.ALL_OR_NOTHING})
    if request.method == "POST":
        if request.POST.get("action") == "cancel":
            try:
                bulk.batch_cancel(batch=batch, actor=request.user, request=request)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            return redirect("registry:batch_detail", pk=batch.pk)
        if form.is_valid():
            try:
                bulk.batch_start_load(batch=batch, actor=request.user, mode=form.cleaned_data["mode"], request=request)
            except ValidationError as exc:
                form.add_error("mode", exc)
            else:
                return redirect("registry:batch_detail", pk=batch.pk)
    batch.refresh_from_db()
    return render(request, "registry/batch_detail.html", {
        "batch": batch, "form": form, "previous": bulk.batch_previous_load(batch),
        "running": batch.status in (ImportBatch.Status.VALIDATING, ImportBatch.Status.LOADING),
    })


@login_required
def batch_progress(request: HttpRequest, pk: int) -> JsonResponse:
    batch = access_batch(request.user, pk)
    return JsonResponse({"status": batch.status, "processed": batch.processed_rows,
                         "total": batch.total_rows, "percent": batch.progress_percent})


@login_required
def batch_error_report(request: HttpRequest, pk: int) -> HttpResponse:
    batch = access_batch(request.user, pk)
    if not batch.error_report:
        messages.info(request, _("This file has no rows with errors."))
        return redirect("registry:batch_detail", pk=batch.pk)
    return private_file_response(batch.error_report, kind="csv", download_name=f"errors-{batch.filename}.csv")


@login_required
@permission_required("accounts.report_entry", raise_exception=True)
def import_template(request: HttpRequest, fmt: str) -> HttpResponse:
    if fmt == "xlsx":
        response = HttpResponse(template_xlsx_bytes(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response["Content-Disposition"] = 'attachment; filename="blacklist-template.xlsx"'
    else:
        response = HttpResponse(template_csv_bytes(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="blacklist-template.csv"'
    return response
