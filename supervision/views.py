"""Pages of supervision: complaints, violations and sanctions, abnormal-query alerts, and a
member's own sanctions. Every change goes through supervision.services; what a service refuses
comes back as a message next to the field or at the top of the page, never a server error.

Nothing here changes a member's entries, queries or consents: regulators read them (the query
log and entries have their own pages) and act on supervision records only."""

from collections.abc import Callable
from datetime import date, datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from blacklist_portal.audit.services import audit_record
from blacklist_portal.pagination import cheap_page
from blacklist_portal.uploads import private_file_response

from . import services
from .access import (
    access_alert,
    access_complaint,
    access_evidence,
    access_sanction,
    access_violation,
    complaints_visible_to,
    is_member_admin,
    supervises,
)
from .forms import (
    AcknowledgeForm,
    AlertFilterForm,
    AssignForm,
    ComplaintFilterForm,
    ComplaintIntakeForm,
    EscalateForm,
    EvaluateForm,
    LiftForm,
    ReplyForm,
    SanctionForm,
    ViolationForm,
)
from .models import Complaint, QueryAlert, Sanction, Violation

NOT_ALLOWED = gettext_lazy("You may not take this action.")
# The linked queries shown on an alert's page (a volume spike can have thousands).
ALERT_QUERIES_SHOWN = 200


# --- Helpers -----------------------------------------------------------------------------------


def time_left(due: datetime, now: datetime) -> str:
    n = services.days_left(due, now)
    if n > 0:
        return ngettext("%(n)d day left", "%(n)d days left", n) % {"n": n}
    if n == 0:
        return _("Due today")
    return ngettext("%(n)d day overdue", "%(n)d days overdue", -n) % {"n": -n}


def urgency(due: datetime, now: datetime) -> str:
    n = services.days_left(due, now)
    return "due-overdue" if n < 0 else "due-soon" if n <= 3 else "due-later"


def _annotate_due(complaints, now: datetime) -> None:
    for c in complaints:
        if c.status in services.OPEN_COMPLAINT:
            c.time_left, c.urgency = time_left(c.due_at, now), urgency(c.due_at, now)
        else:
            c.time_left, c.urgency = "", ""


def sanction_state(sanction: Sanction, today: date) -> tuple[str, str]:
    """(css class, words) for where a sanction stands today."""
    if sanction.kind != Sanction.Kind.SUSPENSION:
        return "recorded", _("Recorded")
    if sanction.lifted_at is not None:
        return "lifted", _("Lifted early")
    if today < sanction.starts_on:
        return "scheduled", _("Not started yet")
    if today > sanction.ends_on:
        return "ended", _("Ended")
    return "in-force", _("In force")


def _annotate_state(sanctions, today: date) -> None:
    for s in sanctions:
        s.state_class, s.state_label = sanction_state(s, today)
        s.scope = services.suspension_scope(s) if s.kind == Sanction.Kind.SUSPENSION else ""


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _with_default(request: HttpRequest, key: str, value: str):
    """The filter's GET data, with `key` defaulting to `value` when absent (also on page 2 of
    an unfiltered list); an empty value still means "any"."""
    data = request.GET.copy()
    data.setdefault(key, value)
    return data


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _require_perm(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(f"accounts.{perm}"):
        raise PermissionDenied


def _run(request: HttpRequest, form, call: Callable, done: str) -> bool:
    """Call a service with a valid form; field errors go onto the form, others into a page
    message. True when the service succeeded."""
    try:
        call()
    except PermissionDenied:
        messages.error(request, NOT_ALLOWED)
    except ValidationError as exc:
        if form is not None and hasattr(exc, "error_dict") and any(f in form.fields for f in exc.error_dict):
            _apply_errors(form, exc)
            return False
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done)
        return True
    return False


# --- Complaints ----------------------------------------------------------------------------------


def _complaint_list_qs():
    return Complaint.objects.select_related("member", "assignee").defer(*services.ENCRYPTED_COMPLAINT_FIELDS)


@login_required
def complaint_list(request: HttpRequest) -> HttpResponse:
    """The regulators' queue: earliest reply deadline first, with the time left."""
    if not supervises(request.user):
        raise PermissionDenied
    form = ComplaintFilterForm(_with_default(request, "status", ComplaintFilterForm.OPEN))
    qs = _complaint_list_qs().order_by("due_at", "pk")
    if form.is_valid():
        status, member = form.cleaned_data["status"], form.cleaned_data["member"]
        if status == ComplaintFilterForm.OPEN:
            qs = qs.filter(status__in=services.OPEN_COMPLAINT)
        elif status:
            qs = qs.filter(status=status)
        if member is not None:
            qs = qs.filter(member=member)
    else:
        qs = qs.filter(status__in=services.OPEN_COMPLAINT)
    page = cheap_page(qs, request.GET.get("page"))
    _annotate_due(page, timezone.now())
    return render(request, "supervision/complaint_list.html",
                  {"filter_form": form, "page": page, "query": _query_without_page(request)})


@login_required
@permission_required("accounts.take_complaint", raise_exception=True)
def complaint_intake(request: HttpRequest) -> HttpResponse:
    form = ComplaintIntakeForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        created = {}

        def call():
            created["complaint"] = services.complaint_receive(
                actor=request.user, member=data["member"], complainant_name=data["complainant_name"],
                complainant_contact=data["complainant_contact"], channel=data["channel"],
                summary=data["summary"], description=data["description"], request=request,
            )

        if _run(request, form, call, _("The complaint was received. Give the complainant the receipt.")):
            return redirect("supervision:complaint_receipt", pk=created["complaint"].pk)
    return render(request, "supervision/complaint_intake.html", {"form": form})


@login_required
@permission_required("accounts.take_complaint", raise_exception=True)
def complaints_taken(request: HttpRequest) -> HttpResponse:
    qs = _complaint_list_qs().filter(taken_by=request.user).order_by("-received_at", "-pk")
    page = cheap_page(qs, request.GET.get("page"))
    _annotate_due(page, timezone.now())
    return render(request, "supervision/complaints_taken.html", {"page": page})


def _render_complaint(request: HttpRequest, complaint: Complaint, *, revealed: dict | None = None,
                      failed: str | None = None, form=None) -> HttpResponse:
    user, now = request.user, timezone.now()
    audit_record(actor=user, action="complaint.view", target=complaint, institution=complaint.member,
                 request=request)
    handles = user.has_perm("accounts.handle_complaints")
    is_open = complaint.status in services.OPEN_COMPLAINT
    forms = {
        "assign": AssignForm(initial={"assignee": complaint.assignee_id}) if handles and is_open else None,
        "reply": ReplyForm() if (handles and complaint.status == Complaint.Status.ASSIGNED
                                 and complaint.assignee_id == user.pk) else None,
    }
    if failed:
        forms[failed] = form
    notes = []
    if handles and complaint.status == Complaint.Status.ASSIGNED and complaint.assignee_id != user.pk:
        notes.append(_("This complaint is assigned to %(name)s, who replies to it.") % {"name": complaint.assignee})
    return render(request, "supervision/complaint_detail.html", {
        "complaint": complaint,
        "regulator_view": supervises(user),
        "member_view": not supervises(user) and complaint.member_id == user.institution_id,
        "revealed": revealed,
        "can_reveal": supervises(user) and user.has_perm("accounts.reveal_identifier"),
        "is_open": is_open,
        "time_left": time_left(complaint.due_at, now),
        "urgency": urgency(complaint.due_at, now),
        "assign_form": forms["assign"],
        "reply_form": forms["reply"],
        "can_close": handles and complaint.status == Complaint.Status.REPLIED,
        "can_print_letter": (handles and user.has_perm("accounts.reveal_identifier")
                             and complaint.status in (Complaint.Status.REPLIED, Complaint.Status.CLOSED)),
        "reminders": complaint.reminders.order_by("sent_at") if supervises(user) else [],
        "notes": notes,
    })


@login_required
def complaint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_complaint(request, access_complaint(request.user, pk))


@login_required
@require_POST
def complaint_reveal(request: HttpRequest, pk: int) -> HttpResponse:
    complaint = access_complaint(request.user, pk)
    if not supervises(request.user):
        raise PermissionDenied
    revealed = services.complaint_reveal(complaint=complaint, actor=request.user, request=request)
    return _render_complaint(request, complaint, revealed=revealed)


@login_required
def complaint_receipt(request: HttpRequest, pk: int) -> HttpResponse:
    complaint = access_complaint(request.user, pk)
    if is_member_admin(request.user):
        raise PermissionDenied  # the complainant's receipt is not the member's document
    audit_record(actor=request.user, action="complaint.receipt", target=complaint, institution=complaint.member,
                 request=request)
    return render(request, "supervision/complaint_receipt.html",
                  {"complaint": complaint, "reply_days": settings.PORTAL_COMPLAINT_REPLY_DAYS})


@login_required
def complaint_letter(request: HttpRequest, pk: int) -> HttpResponse:
    """The written reply, addressed to the complainant (name and contact in clear: logged)."""
    complaint = access_complaint(request.user, pk)
    if not (request.user.has_perm("accounts.handle_complaints") and request.user.has_perm("accounts.reveal_identifier")):
        raise PermissionDenied
    if not complaint.reply:
        messages.error(request, _("There is no reply yet, so no letter to print."))
        return redirect("supervision:complaint_detail", pk=complaint.pk)
    audit_record(actor=request.user, action="complaint.letter", target=complaint, institution=complaint.member,
                 request=request)
    return render(request, "supervision/complaint_letter.html",
                  {"complaint": complaint, "today": timezone.localdate()})


def _complaint_action(request: HttpRequest, pk: int, form_name: str | None, make_form, call, done: str) -> HttpResponse:
    complaint = access_complaint(request.user, pk, for_write=True)
    form = make_form(request.POST) if make_form else None
    if form is not None and not form.is_valid():
        return _render_complaint(request, complaint, failed=form_name, form=form)
    data = form.cleaned_data if form is not None else {}
    if not _run(request, form, lambda: call(complaint, data), done) and form is not None and form.errors:
        return _render_complaint(request, complaint, failed=form_name, form=form)
    return redirect("supervision:complaint_detail", pk=complaint.pk)


@login_required
@require_POST
def complaint_assign(request: HttpRequest, pk: int) -> HttpResponse:
    return _complaint_action(
        request, pk, "assign", AssignForm,
        lambda c, d: services.complaint_assign(complaint=c, actor=request.user, assignee=d["assignee"], request=request),
        _("Assigned."),
    )


@login_required
@require_POST
def complaint_reply(request: HttpRequest, pk: int) -> HttpResponse:
    return _complaint_action(
        request, pk, "reply", ReplyForm,
        lambda c, d: services.complaint_reply(complaint=c, actor=request.user, reply=d["reply"], request=request),
        _("The reply was recorded. Print the letter for the complainant."),
    )


@login_required
@require_POST
def complaint_close(request: HttpRequest, pk: int) -> HttpResponse:
    return _complaint_action(
        request, pk, None, None,
        lambda c, d: services.complaint_close(complaint=c, actor=request.user, request=request),
        _("The complaint is closed."),
    )


# --- Violations and sanctions --------------------------------------------------------------------


@login_required
def violation_list(request: HttpRequest) -> HttpResponse:
    if not supervises(request.user):
        raise PermissionDenied
    qs = (
        Violation.objects.select_related("member", "recorded_by")
        .annotate(n_sanctions=Count("sanctions"))
        .order_by("-recorded_at", "-pk")
    )
    page = cheap_page(qs, request.GET.get("page"))
    return render(request, "supervision/violation_list.html", {"page": page})


@login_required
@permission_required("accounts.handle_complaints", raise_exception=True)
def violation_create(request: HttpRequest) -> HttpResponse:
    form = ViolationForm(request.POST or None, request.FILES or None, initial={"member": request.GET.get("member")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        created = {}

        def call():
            created["violation"] = services.violation_record(
                actor=request.user, member=data["member"], type=data["type"], description=data["description"],
                evidence=form.checked_evidence, request=request,
            )

        if _run(request, form, call, _("The violation was recorded. Impose a sanction if one is due.")):
            return redirect("supervision:violation_detail", pk=created["violation"].pk)
    return render(request, "supervision/violation_form.html", {"form": form})


def _render_violation(request: HttpRequest, violation: Violation, *, sanction_form=None) -> HttpResponse:
    today = timezone.localdate()
    sanctions = list(violation.sanctions.select_related("recorded_by").order_by("-recorded_at"))
    _annotate_state(sanctions, today)
    handles = request.user.has_perm("accounts.handle_complaints")
    return render(request, "supervision/violation_detail.html", {
        "violation": violation,
        "evidence": violation.evidence.order_by("pk"),
        "sanctions": sanctions,
        "sanction_form": sanction_form or (SanctionForm(initial={"starts_on": today}) if handles else None),
    })


@login_required
def violation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_violation(request, access_violation(request.user, pk))


@login_required
@require_POST
def sanction_create(request: HttpRequest, pk: int) -> HttpResponse:
    violation = access_violation(request.user, pk)
    _require_perm(request, "handle_complaints")
    form = SanctionForm(request.POST)
    if not form.is_valid():
        return _render_violation(request, violation, sanction_form=form)
    created = {}

    def call():
        created["sanction"] = services.sanction_impose(actor=request.user, violation=violation, request=request,
                                                       **form.terms())

    if _run(request, form, call, _("The sanction was recorded and the member told.")):
        return redirect("supervision:sanction_detail", pk=created["sanction"].pk)
    if form.errors:
        return _render_violation(request, violation, sanction_form=form)
    return redirect("supervision:violation_detail", pk=violation.pk)


@login_required
def evidence_download(request: HttpRequest, pk: int) -> HttpResponse:
    evidence = access_evidence(request.user, pk)
    audit_record(actor=request.user, action="violation.evidence_download", target=evidence,
                 institution=evidence.violation.member, request=request,
                 details={"violation": evidence.violation_id})
    return private_file_response(evidence.file, kind=evidence.kind, download_name=evidence.original_name)


@login_required
def sanction_list(request: HttpRequest) -> HttpResponse:
    if not supervises(request.user):
        raise PermissionDenied
    today = timezone.localdate()
    qs = Sanction.objects.select_related("member", "violation").order_by("-recorded_at", "-pk")
    in_force = request.GET.get("show") == "in_force"
    if in_force:
        qs = qs.filter(kind=Sanction.Kind.SUSPENSION, lifted_at__isnull=True, starts_on__lte=today,
                       ends_on__gte=today)
    page = cheap_page(qs, request.GET.get("page"))
    _annotate_state(page, today)
    return render(request, "supervision/sanction_list.html",
                  {"page": page, "in_force": in_force, "query": _query_without_page(request)})


def _render_sanction(request: HttpRequest, sanction: Sanction, *, lift_form=None) -> HttpResponse:
    today = timezone.localdate()
    _annotate_state([sanction], today)
    can_lift = (
        request.user.has_perm("accounts.handle_complaints")
        and sanction.kind == Sanction.Kind.SUSPENSION
        and sanction.lifted_at is None
        and sanction.ends_on >= today
    )
    return render(request, "supervision/sanction_detail.html", {
        "sanction": sanction,
        "regulator_view": supervises(request.user),
        "lift_form": (lift_form or LiftForm()) if can_lift else None,
    })


@login_required
def sanction_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_sanction(request, access_sanction(request.user, pk))


@login_required
@require_POST
def sanction_lift(request: HttpRequest, pk: int) -> HttpResponse:
    sanction = access_sanction(request.user, pk)
    _require_perm(request, "handle_complaints")
    form = LiftForm(request.POST)
    if not form.is_valid():
        return _render_sanction(request, sanction, lift_form=form)
    call = lambda: services.sanction_lift(  # noqa: E731
        sanction=sanction, actor=request.user, reason=form.cleaned_data["reason"], request=request
    )
    if not _run(request, form, call, _("The suspension was lifted; the member can work again.")) and form.errors:
        return _render_sanction(request, sanction, lift_form=form)
    return redirect("supervision:sanction_detail", pk=sanction.pk)


@login_required
def own_supervision(request: HttpRequest) -> HttpResponse:
    """A member's administrators: the sanctions on their institution and the complaints about it."""
    if not is_member_admin(request.user):
        raise PermissionDenied
    today = timezone.localdate()
    member_id = request.user.institution_id
    sanctions = list(Sanction.objects.filter(member_id=member_id).select_related("violation")
                     .order_by("-recorded_at", "-pk")[:200])
    _annotate_state(sanctions, today)
    complaints = cheap_page(
        complaints_visible_to(request.user).filter(member_id=member_id)
        .defer(*services.ENCRYPTED_COMPLAINT_FIELDS).order_by("-received_at", "-pk"),
        request.GET.get("page"),
    )
    return render(request, "supervision/sanction_own.html", {"sanctions": sanctions, "page": complaints})


# --- Abnormal-query alerts -------------------------------------------------------------------------


@login_required
def alert_list(request: HttpRequest) -> HttpResponse:
    if not supervises(request.user):
        raise PermissionDenied
    form = AlertFilterForm(_with_default(request, "status", QueryAlert.Status.OPEN))
    qs = QueryAlert.objects.select_related("member").order_by("-day", "-created_at", "-pk")
    if form.is_valid():
        data = form.cleaned_data
        if data["status"]:
            qs = qs.filter(status=data["status"])
        if data["rule"]:
            qs = qs.filter(rule=data["rule"])
        if data["member"] is not None:
            qs = qs.filter(member=data["member"])
        if data["day"] is not None:
            qs = qs.filter(day=data["day"])
    page = cheap_page(qs, request.GET.get("page"))
    return render(request, "supervision/alert_list.html", {
        "filter_form": form, "page": page, "query": _query_without_page(request),
        "evaluate_form": EvaluateForm() if request.user.has_perm("accounts.handle_complaints") else None,
    })


@login_required
@require_POST
def alert_evaluate(request: HttpRequest) -> HttpResponse:
    _require_perm(request, "handle_complaints")
    form = EvaluateForm(request.POST)
    if form.is_valid():
        day = form.cleaned_data["day"]
        result = {}

        def call():
            result["alerts"] = services.alerts_evaluate(day=day, actor=request.user, request=request)

        if _run(request, form, call, _("The rules were evaluated for %(day)s.") % {"day": day.isoformat()}):
            n = len(result["alerts"])
            messages.info(request, ngettext("%(n)d new alert.", "%(n)d new alerts.", n) % {"n": n})
            return redirect(f"{reverse('supervision:alert_list')}?status=&day={day.isoformat()}")
    for errors in form.errors.values():
        messages.error(request, " ".join(errors))
    return redirect("supervision:alert_list")


def _escalation_text(alert: QueryAlert) -> str:
    return _("%(rule)s on %(day)s: %(count)s queries (alert #%(pk)s).") % {
        "rule": alert.get_rule_display(), "day": alert.day.isoformat(),
        "count": alert.details.get("count", "?"), "pk": alert.pk,
    }


def _render_alert(request: HttpRequest, alert: QueryAlert, *, failed: str | None = None, form=None) -> HttpResponse:
    total = alert.queries.count()
    queries = list(alert.queries.select_related("user").order_by("created_at", "pk")[:ALERT_QUERIES_SHOWN])
    # The queries' subjects (masked) are personal data: the reading is logged.
    audit_record(actor=request.user, action="alert.view", target=alert, institution=alert.member,
                 request=request, details={"queries_shown": len(queries)})
    handles = request.user.has_perm("accounts.handle_complaints")
    forms = {
        "ack": AcknowledgeForm() if handles and alert.status == QueryAlert.Status.OPEN else None,
        "escalate": EscalateForm(initial={"type": services.ESCALATION_TYPE[alert.rule],
                                          "description": _escalation_text(alert)})
        if handles and alert.status != QueryAlert.Status.ESCALATED else None,
    }
    if failed:
        forms[failed] = form
    return render(request, "supervision/alert_detail.html", {
        "alert": alert,
        "queries": queries,
        "total": total,
        "more": total - len(queries),
        "violations": alert.violations.order_by("pk"),
        "ack_form": forms["ack"],
        "escalate_form": forms["escalate"],
    })


@login_required
def alert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_alert(request, access_alert(request.user, pk))


@login_required
@require_POST
def alert_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    alert = access_alert(request.user, pk)
    _require_perm(request, "handle_complaints")
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        return _render_alert(request, alert, failed="ack", form=form)
    call = lambda: services.alert_acknowledge(  # noqa: E731
        alert=alert, actor=request.user, note=form.cleaned_data["note"], request=request
    )
    if not _run(request, form, call, _("The alert is acknowledged.")) and form.errors:
        return _render_alert(request, alert, failed="ack", form=form)
    return redirect("supervision:alert_detail", pk=alert.pk)


@login_required
@require_POST
def alert_escalate(request: HttpRequest, pk: int) -> HttpResponse:
    alert = access_alert(request.user, pk)
    _require_perm(request, "handle_complaints")
    form = EscalateForm(request.POST)
    if not form.is_valid():
        return _render_alert(request, alert, failed="escalate", form=form)
    created = {}

    def call():
        created["violation"] = services.alert_escalate(
            alert=alert, actor=request.user, type=form.cleaned_data["type"],
            description=form.cleaned_data["description"], request=request,
        )

    if _run(request, form, call, _("The alert became a violation. Impose a sanction if one is due.")):
        return redirect("supervision:violation_detail", pk=created["violation"].pk)
    if form.errors:
        return _render_alert(request, alert, failed="escalate", form=form)
    return redirect("supervision:alert_detail", pk=alert.pk)
