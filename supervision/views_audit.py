"""The audit log explorer and the consent sampling audit (issue 8, items 6 and 7).

Nothing here changes a member's data. What is written: audit rows (every page of the log
read, every export, every verification run, every sample drawn or read) and the regulator's
own records (samples and their findings).
"""

import csv
import datetime
import json

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from blacklist_portal.accounts.models import Institution
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.audit.services import audit_record, audit_verify_chain
from blacklist_portal.pagination import cheap_page
from registry.importing.report import spreadsheet_safe

from . import sampling
from .dashboard import SHANGHAI, _midnight, lender_members
from .models import SampleItem

# --- Audit log explorer -----------------------------------------------------------------------

# The verification walks the whole chain (minutes at tens of millions of rows), so it runs
# only when someone presses the button; its result is kept this long and shown with its time.
CHAIN_CACHE_KEY = "supervision:audit-chain-report"
CHAIN_CACHE_SECONDS = 600


class AuditFilterForm(forms.Form):
    actor = forms.CharField(label=gettext_lazy("Actor (user name)"), required=False, max_length=150)
    member = forms.ModelChoiceField(
        label=gettext_lazy("Institution"), queryset=Institution.objects.order_by("name"),
        required=False,
    )
    action = forms.CharField(
        label=gettext_lazy("Action"), required=False, max_length=64,
        help_text=gettext_lazy("e.g. entry.approve; entry.* for every entry action"),
    )
    target_type = forms.CharField(label=gettext_lazy("Object type"), required=False, max_length=64,
                                  help_text=gettext_lazy("e.g. registry.entry"))
    target_id = forms.CharField(label=gettext_lazy("Object id"), required=False, max_length=64)
    since = forms.DateField(label=gettext_lazy("From"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=gettext_lazy("Until (inclusive)"), required=False,
                            widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            raise ValidationError(_("The start date is after the end date."))
        return data


def audit_events(filters: dict) -> QuerySet:
    """The audit events matching the filters, newest first. Each filter is on an indexed
    column (actor, institution, action, object, time)."""
    qs = AuditEvent.objects.select_related("actor", "institution").order_by("-seq")
    if filters.get("actor"):
        qs = qs.filter(actor__username=filters["actor"].strip())
    if filters.get("member"):
        qs = qs.filter(institution=filters["member"])
    action = (filters.get("action") or "").strip()
    if action.endswith("*"):
        qs = qs.filter(action__startswith=action[:-1])
    elif action:
        qs = qs.filter(action=action)
    if filters.get("target_type"):
        qs = qs.filter(target_type=filters["target_type"].strip())
    if filters.get("target_id"):
        qs = qs.filter(target_id=filters["target_id"].strip())
    if filters.get("since"):
        qs = qs.filter(occurred_at__gte=_midnight(filters["since"]))
    if filters.get("until"):
        qs = qs.filter(occurred_at__lt=_midnight(filters["until"] + datetime.timedelta(days=1)))
    return qs


def _audit_filters(request: HttpRequest) -> tuple[AuditFilterForm, dict]:
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and form.is_valid():
        return form, {k: v for k, v in form.cleaned_data.items() if v not in (None, "")}
    return form, {}


def _filters_for_log(filters: dict) -> dict:
    return {k: (v.pk if isinstance(v, Institution) else str(v)) for k, v in filters.items()}


def chain_status() -> dict | None:
    report = cache.get(CHAIN_CACHE_KEY)
    if report is not None:
        report = {**report, "checked_at": parse_datetime(report["checked_at"])}
    return report


@login_required
@permission_required("accounts.view_audit_log", raise_exception=True)
def audit_log(request: HttpRequest) -> HttpResponse:
    form, filters = _audit_filters(request)
    page = cheap_page(audit_events(filters), request.GET.get("page"))
    # Reading the log is itself recorded (who looked for what), after the page was read.
    audit_record(actor=request.user, action="audit.view", request=request,
                 details={"filters": _filters_for_log(filters), "page": page.number})
    params = request.GET.copy()
    params.pop("page", None)
    head = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    return render(request, "supervision/audit_log.html", {
        "form": form,
        "page": page,
        "query": params.urlencode(),
        "chain": chain_status(),
        "chain_cache_minutes": CHAIN_CACHE_SECONDS // 60,
        "head": head,
    })


class _Echo:
    def write(self, value):
        return value


@login_required
@permission_required("accounts.view_audit_log", raise_exception=True)
def audit_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered log as CSV, streamed (any size). The export is logged before it starts."""
    form, filters = _audit_filters(request)
    audit_record(actor=request.user, action="audit.export", request=request,
                 details={"filters": _filters_for_log(filters)})
    qs = audit_events(filters)
    writer = csv.writer(_Echo())
    header = [_("Sequence"), _("Time"), _("Actor"), _("Institution"), _("Action"), _("Object type"),
              _("Object id"), _("IP address"), _("Details"), _("Hash")]

    def rows():
        yield "\ufeff" + writer.writerow(header)
        for e in qs.iterator(chunk_size=2000):
            yield writer.writerow([spreadsheet_safe(str(v)) for v in [
                e.seq, timezone.localtime(e.occurred_at, SHANGHAI).isoformat(timespec="seconds"),
                e.actor.username if e.actor else "", e.institution.name if e.institution else "",
                e.action, e.target_type, e.target_id, e.ip or "",
                json.dumps(e.details, ensure_ascii=False, sort_keys=True), e.hash,
            ]])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-log-{timezone.localdate():%Y%m%d}.csv"'
    )
    return response


@login_required
@permission_required("accounts.view_audit_log", raise_exception=True)
@require_POST
def audit_verify(request: HttpRequest) -> HttpResponse:
    """Walk the whole chain now; keep the result for CHAIN_CACHE_SECONDS."""
    report = audit_verify_chain()
    checked_at = timezone.now()
    cache.set(CHAIN_CACHE_KEY, {
        "ok": report.ok, "count": report.count, "head_hash": report.head_hash,
        "broken_at": report.broken_at, "reason": report.reason,
        "checked_at": checked_at.isoformat(),
    }, CHAIN_CACHE_SECONDS)
    audit_record(actor=request.user, action="audit.verify", request=request, now=checked_at,
                 details={"ok": report.ok, "count": report.count, "broken_at": report.broken_at})
    if report.ok:
        messages.success(request, _("The audit chain is intact (%(n)s events).") % {"n": report.count})
    else:
        messages.error(request, _("The audit chain is broken at event %(seq)s.") % {"seq": report.broken_at})
    return redirect("supervision:audit_log")


# --- Consent sampling -------------------------------------------------------------------------


class SampleDrawForm(forms.Form):
    member = forms.ModelChoiceField(label=gettext_lazy("Institution"), queryset=None)
    size = forms.IntegerField(label=gettext_lazy("Sample size"), min_value=1,
                              max_value=sampling.MAX_SIZE, initial=20)
    period_days = forms.IntegerField(label=gettext_lazy("From the last N days"), min_value=1,
                                     max_value=sampling.MAX_PERIOD_DAYS, initial=30)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = lender_members()


class FindingForm(forms.Form):
    finding = forms.ChoiceField(
        label=gettext_lazy("Finding"),
        # No default: each finding is chosen on purpose, never "in order" by inertia.
        choices=[("", "—")] + [(v, label) for v, label in SampleItem.Finding.choices if v],
    )
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=2000,
                           widget=forms.TextInput)


def _apply(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


@login_required
@permission_required("accounts.supervise", raise_exception=True)
def sample_list(request: HttpRequest) -> HttpResponse:
    form = SampleDrawForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sample = sampling.sample_draw(
                actor=request.user, member=form.cleaned_data["member"],
                size=form.cleaned_data["size"], period_days=form.cleaned_data["period_days"],
                request=request,
            )
        except ValidationError as exc:
            _apply(form, exc)
        else:
            return redirect("supervision:sample_detail", pk=sample.pk)
    return render(request, "supervision/sample_list.html", {
        "form": form, "samples": sampling.samples_with_summary(),
        "findings": [(v, label) for v, label in SampleItem.Finding.choices],
    })


@login_required
def sample_detail(request: HttpRequest, pk: int) -> HttpResponse:
    sample = sampling.access_sample(request.user, pk)
    items = list(
        sample.items.select_related("query", "query__consent", "query__user").order_by("query__created_at")
    )
    # The page shows each query's (masked) subject: a read of personal data.
    audit_record(actor=request.user, action="consent_sample.view", target=sample, request=request,
                 details={"member": sample.member_id, "items": len(items)})
    return render(request, "supervision/sample_detail.html", {
        "sample": sample,
        "items": [(item, FindingForm(initial={"finding": item.finding, "note": item.note},
                                     prefix=f"i{item.pk}")) for item in items],
        "summary": sampling.sample_summary(sample),
    })


@login_required
@require_POST
def sample_item_record(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    sample = sampling.access_sample(request.user, pk)
    item = get_object_or_404(SampleItem, pk=item_pk, sample=sample)
    form = FindingForm(request.POST, prefix=f"i{item.pk}")
    if form.is_valid():
        try:
            sampling.sample_item_record(
                actor=request.user, item=item, finding=form.cleaned_data["finding"],
                note=form.cleaned_data["note"], request=request,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Finding recorded."))
    else:
        messages.error(request, _("Choose a finding."))
    return redirect(reverse("supervision:sample_detail", args=[sample.pk]) + f"#item-{item.pk}")
