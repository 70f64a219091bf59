"""Pages of the dispute workflow. Every change goes through disputes.services; what the
services refuse (PermissionDenied, ValidationError, TransitionRefused) comes back to the user
as a message next to the field concerned or at the top of the page — never as a server error."""

from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.audit.services import audit_record
from blacklist_portal.pagination import cheap_page
from blacklist_portal.uploads import private_file_response
from registry.choices import Category
from registry.models import Entry

from . import services
from .access import (
    about_member,
    access_attachment,
    access_dispute,
    entries_shown,
    reads_everything,
    user_may,
)
from .filters import DisputeQueueFilter
from .forms import (
    AnswerForm,
    AppealForm,
    AssignForm,
    DecideForm,
    ExtendForm,
    IntakeForm,
    ReconsiderForm,
)
from .models import Decision, Dispute, IntakeChannel, VerificationAnswer
from .workflow import OPEN_STATUSES, Action, Status, TransitionRefused, allowed_actions

CORRECTION_LABELS = {
    "loan_amount": gettext_lazy("Loan amount (CNY)"),
    "overdue_amount": gettext_lazy("Overdue amount (CNY)"),
    "delinquent_since": gettext_lazy("Overdue since"),
    "settled_on": gettext_lazy("Settled / behaviour ended on"),
    "category": gettext_lazy("Category"),
}
CHANGED = (Decision.CORRECTED, Decision.DELETED)
NOT_ALLOWED = gettext_lazy("You may not take this action on this dispute.")


# --- Helpers -----------------------------------------------------------------------------------


def time_left(due: datetime, now: datetime) -> str:
    """The time left to a deadline in whole Asia/Shanghai days, said plainly."""
    n = services.days_left(due, now)
    if n > 0:
        return ngettext("%(n)d day left", "%(n)d days left", n) % {"n": n}
    if n == 0:
        return _("Due today")
    return ngettext("%(n)d day overdue", "%(n)d days overdue", -n) % {"n": -n}


def urgency(due: datetime, now: datetime) -> str:
    """A CSS class for the time left: overdue, due within two days, or plenty."""
    n = services.days_left(due, now)
    return "due-overdue" if n < 0 else "due-soon" if n <= 2 else "due-later"


def _annotate(disputes, now: datetime, *, due_field: str = "decision_due_at") -> None:
    for d in disputes:
        due = getattr(d, due_field)
        if due is not None and (due_field != "decision_due_at" or d.status in OPEN_STATUSES):
            d.time_left, d.urgency = time_left(due, now), urgency(due, now)
        else:
            d.time_left, d.urgency = "", ""


def _query_without_page(request: HttpRequest) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def _apply_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


def _corrections(dispute: Dispute) -> list[tuple[str, str]]:
    """What a "corrected" decision changed, in words (nothing for any other decision)."""
    if dispute.decision != Decision.CORRECTED:
        return []
    rows = []
    for field, value in dispute.corrections.items():
        if field == "category" and value in Category.values:
            value = Category(value).label
        rows.append((CORRECTION_LABELS.get(field, field), value))
    return rows


def _event_note(event) -> str:
    """The timeline's note in words: services store the decision or answer as its code."""
    labels = {Action.DECIDE: Decision, Action.RECONSIDER: Decision, Action.ANSWER_VERIFICATION: VerificationAnswer}
    choices = labels.get(event.action)
    if choices is not None and event.note in choices.values:
        return choices(event.note).label
    return event.note


def _officers(dispute: Dispute):
    """Who may be assigned: review officers; for an appeal, senior officers who did not decide."""
    qs = User.objects.filter(is_active=True).order_by("full_name", "username")
    if dispute.status == Status.APPEALED:
        qs = qs.filter(groups__permissions__codename="decide_appeal").exclude(pk=dispute.decided_by_id)
    else:
        qs = qs.filter(groups__permissions__codename="work_disputes")
    return qs.distinct()


def _with_members(qs):
    return qs.select_related("subject", "assignee").prefetch_related(
        Prefetch("entries", queryset=Entry.objects.select_related("member").order_by("member_id", "pk"))
    )


# --- Lists -------------------------------------------------------------------------------------


@login_required
def queue(request: HttpRequest) -> HttpResponse:
    if not reads_everything(request.user):
        raise PermissionDenied
    now = timezone.now()
    base = _with_members(Dispute.objects.order_by("decision_due_at", "pk"))
    filterset = DisputeQueueFilter(request.GET, queryset=base, request=request, now=now)
    qs = filterset.qs if filterset.is_valid() else base.filter(status__in=OPEN_STATUSES | {Status.APPEALED})
    page = cheap_page(qs, request.GET.get("page"))
    _annotate(page, now)
    return render(request, "disputes/queue.html",
                  {"filter": filterset, "page": page, "query": _query_without_page(request)})


@login_required
@permission_required("accounts.take_dispute", raise_exception=True)
def mine(request: HttpRequest) -> HttpResponse:
    user = request.user
    if user.institution.kind == Institution.Kind.LENDER:
        qs = Dispute.objects.filter(filed_by_member_id=user.institution_id)
    else:
        qs = Dispute.objects.filter(taken_by=user)
    now = timezone.now()
    page = cheap_page(qs.select_related("subject").order_by("-received_at", "-pk"), request.GET.get("page"))
    _annotate(page, now)
    return render(request, "disputes/mine.html", {"page": page})


@login_required
@permission_required("accounts.answer_verification", raise_exception=True)
def verification_inbox(request: HttpRequest) -> HttpResponse:
    qs = (
        Dispute.objects.filter(about_member(request.user.institution_id), status=Status.AWAITING_VERIFICATION)
        .select_related("subject")
        .order_by("verification_due_at", "pk")
    )
    now = timezone.now()
    page = cheap_page(qs, request.GET.get("page"))
    _annotate(page, now, due_field="verification_due_at")
    return render(request, "disputes/verification_inbox.html", {"page": page})


@login_required
def bulletin(request: HttpRequest) -> HttpResponse:
    """公示: corrections and deletions, with masked identities only."""
    qs = (
        Dispute.objects.filter(status__in=[Status.DECIDED, Status.APPEALED, Status.CLOSED])
        .filter(Q(reconsideration="", decision__in=CHANGED) | Q(reconsideration__in=CHANGED))
        .select_related("subject")
        .order_by("-decided_at", "-pk")
    )
    page = cheap_page(qs, request.GET.get("page"))
    for d in page:
        outcome = d.reconsideration or d.decision
        d.outcome_label = Decision(outcome).label
        d.outcome_on = d.closed_at if d.reconsideration else d.decided_at
        d.changed_fields = [label for label, _v in _corrections(d)] if outcome == Decision.CORRECTED else []
    return render(request, "disputes/bulletin.html", {"page": page})


# --- Intake ------------------------------------------------------------------------------------


@login_required
@permission_required("accounts.take_dispute", raise_exception=True)
def intake(request: HttpRequest) -> HttpResponse:
    finding = request.method == "POST" and "find" in request.POST
    form = IntakeForm(request.POST or None, request.FILES or None, user=request.user, finding=finding)
    if request.method == "POST":
        valid = form.is_valid()
        if form.subject is not None:
            # The person's entries are shown (masked): a reading of personal data.
            audit_record(actor=request.user, action="dispute.intake_lookup", target=form.subject,
                         request=request, details={"entries": [e.pk for e in form.entries]})
        if valid and not finding:
            data = form.cleaned_data
            try:
                dispute = services.dispute_receive(
                    actor=request.user, subject=form.subject, entry=data["entry_obj"],
                    claim_type=data["claim_type"], description=data["description"],
                    applicant_name=data["applicant_name"], applicant_contact=data["applicant_contact"],
                    channel=data.get("channel") or IntakeChannel.MEMBER,
                    attachments=form.checked_attachments, request=request,
                )
            except ValidationError as exc:
                _apply_errors(form, exc)
            except PermissionDenied:
                form.add_error(None, NOT_ALLOWED)
            else:
                messages.success(request, _("The correction request was received. Give the applicant the receipt."))
                return redirect("disputes:receipt", pk=dispute.pk)
    details = [form[name] for name in form.fields if name not in IntakeForm.IDENTITY_FIELDS]
    return render(request, "disputes/intake.html", {"form": form, "details": details})


@login_required
def receipt(request: HttpRequest, pk: int) -> HttpResponse:
    dispute = access_dispute(request.user, pk)
    audit_record(actor=request.user, action="dispute.receipt", target=dispute, request=request)
    return render(request, "disputes/receipt.html", {
        "dispute": dispute,
        "entries": entries_shown(request.user, dispute),
        "verification_days": settings.PORTAL_DISPUTE_VERIFICATION_DAYS,
        "decision_days": settings.PORTAL_DISPUTE_DECISION_DAYS,
        "appeal_days": settings.PORTAL_DISPUTE_APPEAL_DAYS,
    })


# --- The dispute page ----------------------------------------------------------------------------

FORMS: dict[str, Callable] = {
    Action.ASSIGN: lambda data, dispute: AssignForm(data, officers=_officers(dispute)),
    Action.ANSWER_VERIFICATION: lambda data, dispute: AnswerForm(data),
    Action.EXTEND: lambda data, dispute: ExtendForm(data),
    Action.DECIDE: lambda data, dispute: DecideForm(data),
    Action.APPEAL: lambda data, dispute: AppealForm(data),
    Action.RECONSIDER: lambda data, dispute: ReconsiderForm(data),
}


def _available(user: User, dispute: Dispute, now: datetime) -> tuple[set[str], list[str]]:
    """The actions to offer now: the workflow's, for this user, minus those the services would
    refuse anyway (with the reason shown instead of a form)."""
    actions = {a for a in allowed_actions(dispute.status) if user_may(user, dispute, a)}
    notes = []
    if Action.EXTEND in actions and dispute.extension_reason:
        actions.discard(Action.EXTEND)
    if Action.DECIDE in actions and dispute.assignee_id not in (None, user.pk) and not user.has_perm("accounts.decide_appeal"):
        actions.discard(Action.DECIDE)
        notes.append(_("This dispute is assigned to %(name)s, who decides it.") % {"name": dispute.assignee})
    if Action.RECONSIDER in actions and dispute.decided_by_id == user.pk:
        actions.discard(Action.RECONSIDER)
        notes.append(_("You decided this dispute; another senior officer must reconsider it."))
    if Action.APPEAL in actions and dispute.appeal_due_at and now > dispute.appeal_due_at:
        actions.discard(Action.APPEAL)
    if Action.CLOSE in actions and dispute.appeal_due_at and now <= dispute.appeal_due_at:
        actions.discard(Action.CLOSE)
    if (Action.ANSWER_VERIFICATION in actions and dispute.verification_due_at
            and now > dispute.verification_due_at):
        actions.discard(Action.ANSWER_VERIFICATION)
    return actions, notes


def _render_detail(request: HttpRequest, dispute: Dispute, *, failed: str | None = None, form=None) -> HttpResponse:
    user, now = request.user, timezone.now()
    audit_record(actor=user, action="dispute.view", target=dispute, request=request)
    actions, notes = _available(user, dispute, now)
    forms = {a: make(None, dispute) for a, make in FORMS.items() if a in actions}
    if failed:
        actions.add(failed)  # show the form that failed, with its errors, whatever else applies
        forms[failed] = form
    entries = list(entries_shown(user, dispute))
    total = dispute.entries.count()
    events = list(dispute.events.select_related("actor"))
    for ev in events:
        ev.note_display = _event_note(ev)
    return render(request, "disputes/detail.html", {
        "dispute": dispute,
        "entries": entries,
        "hidden_entries": total - len(entries),
        "attachments": dispute.attachments.all(),
        "events": events,
        "corrections": _corrections(dispute),
        "is_open": dispute.status in OPEN_STATUSES,
        "time_left": time_left(dispute.decision_due_at, now),
        "urgency": urgency(dispute.decision_due_at, now),
        "verification_left": time_left(dispute.verification_due_at, now) if dispute.verification_due_at else "",
        "actions": actions,
        "notes": notes,
        "assign_form": forms.get(Action.ASSIGN),
        "answer_form": forms.get(Action.ANSWER_VERIFICATION),
        "extend_form": forms.get(Action.EXTEND),
        "decide_form": forms.get(Action.DECIDE),
        "appeal_form": forms.get(Action.APPEAL),
        "reconsider_form": forms.get(Action.RECONSIDER),
        "can_request_verification": Action.REQUEST_VERIFICATION in actions,
        "can_close": Action.CLOSE in actions,
        "has_letter": bool(dispute.decision),
    })


@login_required
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, access_dispute(request.user, pk))


def _act(request: HttpRequest, pk: int, action: str, run: Callable, done: str) -> HttpResponse:
    """Run one workflow action from the dispute page. `run(dispute, cleaned_data, form)`
    calls the service. Field errors re-render the page with the form; anything else becomes a
    page message; nothing changes unless the service succeeds."""
    dispute = access_dispute(request.user, pk, for_write=True)
    if not user_may(request.user, dispute, action):
        messages.error(request, NOT_ALLOWED)
        return redirect("disputes:detail", pk=dispute.pk)
    make = FORMS.get(action)
    form = make(request.POST, dispute) if make else None
    if form is not None and not form.is_valid():
        return _render_detail(request, dispute, failed=action, form=form)
    try:
        run(dispute, form.cleaned_data if form is not None else {}, form)
    except TransitionRefused as exc:
        messages.error(request, exc.message)
    except PermissionDenied:
        messages.error(request, NOT_ALLOWED)
    except ValidationError as exc:
        if form is not None and hasattr(exc, "error_dict") and any(f in form.fields for f in exc.error_dict):
            _apply_errors(form, exc)
            return _render_detail(request, dispute, failed=action, form=form)
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done)
    return redirect("disputes:detail", pk=dispute.pk)


@login_required
@require_POST
def assign(request: HttpRequest, pk: int) -> HttpResponse:
    def run(dispute, data, form):
        services.dispute_assign(dispute=dispute, actor=request.user, assignee=data["assignee"], request=request)

    return _act(request, pk, Action.ASSIGN, run, _("Assigned."))


@login_required
@require_POST
def request_verification(request: HttpRequest, pk: int) -> HttpResponse:
    def run(dispute, data, form):
        services.dispute_request_verification(dispute=dispute, actor=request.user, request=request)

    return _act(request, pk, Action.REQUEST_VERIFICATION, run,
                _("The reporting member was asked to verify the entry."))


@login_required
@require_POST
def answer(request: HttpRequest, pk: int) -> HttpResponse:
    def run(dispute, data, form):
        services.dispute_answer_verification(dispute=dispute, actor=request.user, answer=data["answer"],
                                             note=data["note"], request=request)

    return _act(request, pk, Action.ANSWER_VERIFICATION, run, _("Your answer was recorded."))


@login_required
@require_POST
def extend(request: HttpRequest, pk: int) -> HttpResponse:
    def run(dispute, data, form):
        services.dispute_extend(dispute=dispute, actor=request.user, reason=data["reason"], request=request)

    return _act(request, pk, Action.EXTEND, run, _("The decision deadline was extended."))


@login_required
@require_POST
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    def run(dispute, data, form):
        services.dispute_decide(dispute=dispute, actor=request.user, decision=data["decision"],
                                reasons=data["reasons"], corrections=form.corrections(), request=request)

    return _act(request, pk, Action.DECIDE, run, _("The decision was recorded. Print the letter for the applicant."))


@login_required
@require_POST
def appeal(request: HttpRequest, pk: int) -> HttpResponse:
    def run(dispute, data, form):
        services.dispute_appeal(dispute=dispute, actor=request.user, reason=data["reason"], request=request)

    return _act(request, pk, Action.APPEAL, run, _("The appeal was received; a senior officer will reconsider."))


@login_required
@require_POST
def reconsider(request: HttpRequest, pk: int) -> HttpResponse:
    def run(dispute, data, form):
        services.dispute_reconsider(dispute=dispute, actor=request.user, outcome=data["decision"],
                                    reasons=data["reasons"], corrections=form.corrections(), request=request)

    return _act(request, pk, Action.RECONSIDER, run, _("The reconsideration was recorded; the dispute is closed."))


@login_required
@require_POST
def close(request: HttpRequest, pk: int) -> HttpResponse:
    def run(dispute, data, form):
        services.dispute_close(dispute=dispute, actor=request.user)

    return _act(request, pk, Action.CLOSE, run, _("The dispute is closed."))


# --- Documents -----------------------------------------------------------------------------------


@login_required
def letter(request: HttpRequest, pk: int) -> HttpResponse:
    """The written decision for the applicant (A4, printable)."""
    dispute = access_dispute(request.user, pk)
    if not dispute.decision:
        messages.error(request, _("There is no decision yet, so no letter to print."))
        return redirect("disputes:detail", pk=dispute.pk)
    audit_record(actor=request.user, action="dispute.letter", target=dispute, request=request)
    now = timezone.now()
    return render(request, "disputes/letter.html", {
        "dispute": dispute,
        "entries": entries_shown(request.user, dispute),
        "corrections": _corrections(dispute),
        "may_appeal": dispute.status == Status.DECIDED and now <= dispute.appeal_due_at,
        "appeal_days": settings.PORTAL_DISPUTE_APPEAL_DAYS,
        "notify_days": settings.PORTAL_DISPUTE_NOTIFY_QUERIERS_DAYS,
        "today": timezone.localdate(now),
    })


@login_required
def attachment_download(request: HttpRequest, pk: int) -> HttpResponse:
    attachment = access_attachment(request.user, pk)
    audit_record(actor=request.user, action="dispute.attachment_download", target=attachment, request=request,
                 details={"dispute": attachment.dispute_id})
    return private_file_response(attachment.file, kind=attachment.kind, download_name=attachment.original_name)
