"""The regulator's dashboard and the members' data-quality scores (issue 8, items 1 and 2).

Read-only with respect to members' data: the only thing written here is a QualityScore, the
regulator's own record, recomputed on demand.
"""

import csv
import datetime

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from blacklist_portal.audit.services import audit_record
from registry.importing.report import spreadsheet_safe

from . import charts, dashboard, quality
from .dashboard import SHANGHAI


class DashboardFilterForm(forms.Form):
    member = forms.ModelChoiceField(
        label=gettext_lazy("Institution"), queryset=None, required=False,
        empty_label=gettext_lazy("Whole market"),
    )
    months = forms.TypedChoiceField(
        label=gettext_lazy("Period"), coerce=int, required=False, initial=dashboard.DEFAULT_MONTHS,
        choices=[(m, gettext_lazy("Last %(n)s months") % {"n": m}) for m in dashboard.MONTH_CHOICES],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].queryset = dashboard.lender_members()


def _filters(request: HttpRequest) -> tuple[DashboardFilterForm, int | None, int]:
    form = DashboardFilterForm(request.GET or None)
    member, months = None, dashboard.DEFAULT_MONTHS
    if form.is_bound and form.is_valid():
        member = form.cleaned_data["member"]
        months = form.cleaned_data["months"] or dashboard.DEFAULT_MONTHS
    return form, member, months


def _stats_as_of() -> datetime.datetime:
    as_of = dashboard.market_stats_as_of()
    if as_of is None:
        # Never built (a new installation): counting now is cheap while the register is small.
        dashboard.market_stats_rebuild()
        as_of = dashboard.market_stats_as_of()
    return as_of


@login_required
@permission_required("accounts.supervise", raise_exception=True)
def dashboard_view(request: HttpRequest) -> HttpResponse:
    form, member, months = _filters(request)
    as_of = _stats_as_of()
    win = dashboard.window(months=months)
    tables = dashboard.dashboard_tables(win=win, member_id=member.pk if member else None)
    return render(request, "supervision/dashboard.html", {
        "form": form,
        "member": member,
        "months": months,
        "as_of": as_of,
        "blocks": [(t, charts.draw(t)) for t in tables],
        "query": request.GET.urlencode(),
    })


@login_required
@permission_required("accounts.supervise", raise_exception=True)
@require_POST
def dashboard_refresh(request: HttpRequest) -> HttpResponse:
    """Recount entries and queries now instead of waiting for the night (in the background:
    at millions of rows it takes seconds to minutes)."""
    from .tasks_dashboard import market_stats

    transaction.on_commit(market_stats.delay)
    messages.info(request, _("The counts are being rebuilt. Reload the page in a minute."))
    return redirect("supervision:dashboard")


class _Echo:
    def write(self, value):
        return value


def _cell(value) -> str:
    return "" if value is None else spreadsheet_safe(str(value))


@login_required
@permission_required("accounts.supervise", raise_exception=True)
def dashboard_csv(request: HttpRequest, table: str) -> HttpResponse:
    """One chart's table as CSV, with the same filters as the page (aggregates only: no
    personal data, so not audit-logged)."""
    if table not in dashboard.TABLES:
        raise Http404
    _form, member, months = _filters(request)
    _stats_as_of()
    data = dashboard.dashboard_table(table, win=dashboard.window(months=months),
                                     member_id=member.pk if member else None)
    writer = csv.writer(_Echo())
    body = "\ufeff" + writer.writerow([_cell(c) for c in data.columns])
    body += "".join(writer.writerow([_cell(v) for v in row]) for row in data.rows)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    scope = f"member-{member.pk}" if member else "market"
    today = timezone.localdate()
    response["Content-Disposition"] = f'attachment; filename="{table}-{scope}-{today:%Y%m%d}.csv"'
    return response


# --- Data-quality scores ----------------------------------------------------------------------


def _month_param(value: str | None, default: datetime.date) -> datetime.date:
    try:
        return datetime.datetime.strptime(value or "", "%Y-%m").replace(tzinfo=SHANGHAI).date()
    except ValueError:
        return default


@login_required
@permission_required("accounts.supervise", raise_exception=True)
def quality_list(request: HttpRequest) -> HttpResponse:
    month = _month_param(request.GET.get("month"), quality.previous_month())
    rows = [
        (member, score, quality.stored_factors(score) if score else [])
        for member, score in quality.scores_for_month(month=month)
    ]
    return render(request, "supervision/quality_list.html", {
        "month": month, "rows": rows, "factors": quality.FACTORS,
    })


@login_required
@permission_required("accounts.supervise", raise_exception=True)
@require_POST
def quality_recompute(request: HttpRequest) -> HttpResponse:
    month = _month_param(request.POST.get("month"), quality.previous_month())
    scores = quality.quality_scores_compute(month=month)
    audit_record(actor=request.user, action="quality.compute", target_type="supervision.qualityscore",
                 request=request, details={"month": f"{month:%Y-%m}", "members": len(scores)})
    messages.success(request, _("Scores for %(month)s computed for %(n)s members.")
                     % {"month": f"{month:%Y-%m}", "n": len(scores)})
    return redirect(reverse("supervision:quality_list") + f"?month={month:%Y-%m}")


@login_required
def quality_mine(request: HttpRequest) -> HttpResponse:
    member = quality.access_member_quality(request.user, request.user.institution_id)
    return redirect("supervision:quality_detail", member_id=member.pk)


@login_required
def quality_detail(request: HttpRequest, member_id: int) -> HttpResponse:
    member = quality.access_member_quality(request.user, member_id)
    history = quality.score_history(member=member)
    now = timezone.now()
    current_month = timezone.localtime(now, SHANGHAI).date().replace(day=1)
    live = quality.quality_measure(month=current_month, member_ids=[member.pk], now=now)[member.pk]
    latest = history[-1] if history else None
    return render(request, "supervision/quality_detail.html", {
        "member": member,
        "latest": latest,
        "latest_factors": quality.stored_factors(latest) if latest else [],
        "live": live,
        "live_score": quality.score_of(live),
        "current_month": current_month,
        "history": list(reversed(history)),
        "history_chart": charts.line_chart(
            [f"{s.month:%Y-%m}" for s in history], [(_("Score"), [s.score for s in history])],
            title=_("Score by month"), top=100,
        ) if history else None,
        "is_regulator": request.user.has_perm("accounts.supervise"),
        "grace_days": quality.SETTLEMENT_GRACE_DAYS,
    })
