"""Supervision (监管) services: complaints against members with their 30-day clock and
reminders, violations and sanctions, and the regulator's handling of abnormal-query alerts.

Every change checks the actor's capability, writes its audit row in the same transaction and
takes `now=` so tests can move the clock. Regulators change supervision records only: nothing
here touches a member's entries, queries or consents."""

import secrets
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.audit.services import audit_record
from blacklist_portal.inbox.services import notify
from blacklist_portal.uploads import CheckedUpload, store_private
from disputes.services import days_left, end_of_day_after
from registry.identifiers import mask_name

from . import alerts as rules
from .models import (
    Complaint,
    ComplaintReminder,
    QueryAlert,
    Sanction,
    Violation,
    ViolationEvidence,
)

OPEN_COMPLAINT = (Complaint.Status.RECEIVED, Complaint.Status.ASSIGNED)
# The largest fine the column holds (numeric(14, 2)).
FINE_MAX = Decimal("999999999999.99")
# The violation an escalated alert becomes, unless the regulator chooses another type.
ESCALATION_TYPE = {
    QueryAlert.Rule.NIGHT: Violation.Type.MISUSE,
    QueryAlert.Rule.VOLUME_SPIKE: Violation.Type.MISUSE,
    QueryAlert.Rule.SUBJECT_REPEAT: Violation.Type.MISUSE,
    QueryAlert.Rule.POST_LOAN_WITHOUT_APPROVAL: Violation.Type.NO_CONSENT,
}
# Decrypting complainants' names and contacts costs time and is not needed for lists.
ENCRYPTED_COMPLAINT_FIELDS = ("complainant_name", "complainant_contact")


def shanghai_today(now: datetime) -> date:
    return timezone.localdate(now, timezone.get_default_timezone())


def _users_with(perm: str, **filters) -> list[User]:
    return list(
        User.objects.filter(is_active=True, groups__permissions__codename=perm, **filters).distinct()
    )


def regulators() -> list[User]:
    """Who handles complaints and sanctions (and is told of overdue complaints and new alerts)."""
    return _users_with("handle_complaints")


def _require(actor: User, perm: str) -> None:
    if not actor.has_perm(f"accounts.{perm}"):
        raise PermissionDenied


def _required_text(value: str, field: str, message: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValidationError({field: message})
    return value


def _fmt(moment: datetime) -> str:
    return f"{timezone.localtime(moment, timezone.get_default_timezone()):%Y-%m-%d}"


# --- Complaints (投诉) ------------------------------------------------------------------------------


def _complaint_link(complaint: Complaint) -> str:
    return reverse("supervision:complaint_detail", args=[complaint.pk])


def _receipt_no(now: datetime) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return f"C{shanghai_today(now):%Y%m%d}{''.join(secrets.choice(alphabet) for _ in range(6))}"


def _locked_complaint(complaint: Complaint) -> Complaint:
    return Complaint.objects.select_for_update(of=("self",)).select_related("member", "assignee").get(pk=complaint.pk)


def _complaint_audit(complaint: Complaint, action: str, actor: User | None, *, request=None, now: datetime,
                     details: dict | None = None) -> None:
    audit_record(actor=actor, action=f"complaint.{action}", target=complaint, institution=complaint.member,
                 request=request, now=now, details={"status": complaint.status, **(details or {})})


@transaction.atomic
def complaint_receive(
    *,
    actor: User,
    member: Institution,
    complainant_name: str,
    complainant_contact: str,
    channel: str,
    summary: str,
    description: str,
    request=None,
    now: datetime | None = None,
) -> Complaint:
    """Take a complaint against a member (at the counter or from a letter). The written reply
    is due at the end of the Asia/Shanghai day PORTAL_COMPLAINT_REPLY_DAYS days later."""
    now = now or timezone.now()
    _require(actor, "take_complaint")
    if member.kind != Institution.Kind.LENDER:
        raise ValidationError({"member": _("Complaints are about member institutions (lenders).")})
    if channel not in Complaint.Channel.values:
        raise ValidationError({"channel": _("Choose how the complaint was received.")})
    name = _required_text(complainant_name, "complainant_name", _("Enter the complainant's name."))
    complaint = Complaint(
        receipt_no=_receipt_no(now),
        member=member,
        complainant_name=name,
        complainant_name_masked=mask_name(name),
        complainant_contact=(complainant_contact or "").strip(),
        channel=channel,
        summary=_required_text(summary, "summary", _("Say in one line what the complaint is about.")),
        description=_required_text(description, "description", _("Describe the complaint.")),
        taken_by=actor,
        received_at=now,
        due_at=end_of_day_after(now, settings.PORTAL_COMPLAINT_REPLY_DAYS),
    )
    complaint._history_user = actor
    complaint.save(force_insert=True)
    _complaint_audit(complaint, "receive", actor, request=request, now=now,
                     details={"member": member.pk, "channel": channel})
    notify(
        users=regulators(),
        title=_("New complaint %(no)s about %(member)s") % {"no": complaint.receipt_no, "member": member.name},
        body=_("Written reply due %(due)s.") % {"due": _fmt(complaint.due_at)},
        link=_complaint_link(complaint),
        now=now,
    )
    return complaint


@transaction.atomic
def complaint_assign(
    *, complaint: Complaint, actor: User, assignee: User, request=None, now: datetime | None = None
) -> Complaint:
    now = now or timezone.now()
    _require(actor, "handle_complaints")
    complaint = _locked_complaint(complaint)
    if complaint.status not in OPEN_COMPLAINT:
        raise ValidationError(_("This complaint has been answered; it cannot be reassigned."))
    if not (assignee.is_active and assignee.has_perm("accounts.handle_complaints")):
        raise ValidationError({"assignee": _("Choose a regulator who handles complaints.")})
    before = complaint.assignee_id
    complaint.assignee = assignee
    complaint.status = Complaint.Status.ASSIGNED
    complaint._history_user = actor
    complaint.save(update_fields=["assignee", "status"])
    _complaint_audit(complaint, "assign", actor, request=request, now=now,
                     details={"assignee": assignee.pk, "previous": before})
    if assignee.pk != actor.pk:
        notify(users=[assignee],
               title=_("Complaint %(no)s is assigned to you") % {"no": complaint.receipt_no},
               body=_("Written reply due %(due)s.") % {"due": _fmt(complaint.due_at)},
               link=_complaint_link(complaint), now=now)
    return complaint


@transaction.atomic
def complaint_reply(
    *, complaint: Complaint, actor: User, reply: str, request=None, now: datetime | None = None
) -> Complaint:
    """The written reply to the complainant (条例 Art. 26), by the regulator it is assigned to."""
    now = now or timezone.now()
    _require(actor, "handle_complaints")
    complaint = _locked_complaint(complaint)
    if complaint.status != Complaint.Status.ASSIGNED:
        raise ValidationError(_("Assign the complaint before replying to it."))
    if complaint.assignee_id != actor.pk:
        raise ValidationError(
            _("This complaint is assigned to %(name)s, who replies to it; reassign it first.")
            % {"name": complaint.assignee}
        )
    complaint.reply = _required_text(reply, "reply", _("Write the reply."))
    complaint.replied_at = now
    complaint.replied_by = actor
    complaint.status = Complaint.Status.REPLIED
    complaint._history_user = actor
    complaint.save(update_fields=["reply", "replied_at", "replied_by", "status"])
    _complaint_audit(complaint, "reply", actor, request=request, now=now,
                     details={"on_time": now <= complaint.due_at})
    return complaint


@transaction.atomic
def complaint_close(*, complaint: Complaint, actor: User, request=None, now: datetime | None = None) -> Complaint:
    now = now or timezone.now()
    _require(actor, "handle_complaints")
    complaint = _locked_complaint(complaint)
    if complaint.status != Complaint.Status.REPLIED:
        raise ValidationError(_("Only a complaint that has been replied to can be closed."))
    complaint.closed_at = now
    complaint.status = Complaint.Status.CLOSED
    complaint._history_user = actor
    complaint.save(update_fields=["closed_at", "status"])
    _complaint_audit(complaint, "close", actor, request=request, now=now)
    return complaint


@transaction.atomic
def complaint_reveal(*, complaint: Complaint, actor: User, request=None, now: datetime | None = None) -> dict:
    """The complainant's name and contact in clear, for a regulator allowed to reveal them.
    Every reveal is a reading of personal data and is logged."""
    now = now or timezone.now()
    _require(actor, "reveal_identifier")
    if not (actor.has_perm("accounts.supervise") or actor.has_perm("accounts.handle_complaints")):
        raise PermissionDenied
    audit_record(actor=actor, action="complaint.reveal", target=complaint, institution=complaint.member,
                 request=request, now=now)
    return {"name": complaint.complainant_name, "contact": complaint.complainant_contact}


def _remind_once(complaint: Complaint, kind: str, step: int, users: Iterable[User], title: str, body: str,
                 now: datetime) -> bool:
    """Record and send one reminder unless it was sent already: the reminder row and the
    notifications commit together, and a second sweep finds the row and sends nothing."""
    with transaction.atomic():
        _row, created = ComplaintReminder.objects.get_or_create(
            complaint=complaint, kind=kind, step=step, defaults={"sent_at": now}
        )
        if not created:
            return False
        notify(users=users, title=title, body=body, link=_complaint_link(complaint), now=now)
        audit_record(actor=None, action="complaint.reminder", target=complaint, institution=complaint.member,
                     now=now, details={"kind": kind, "step": step})
    return True


def complaint_sweep(*, now: datetime | None = None) -> dict:
    """Reminders and escalations that are due, read from the database: running it twice sends
    nothing twice, and after an outage it catches up.

    Before the due date the assignee (or, while nobody is assigned, every regulator) is
    reminded PORTAL_COMPLAINT_REMINDER_DAYS days ahead. After an outage only the most urgent
    step reached is sent: a reminder "7 days left" is no use on the last day. Once the due date
    has passed, every regulator is told, once."""
    now = now or timezone.now()
    counts = {"reminders": 0, "escalations": 0}
    steps = sorted(set(settings.PORTAL_COMPLAINT_REMINDER_DAYS))
    horizon = now + timedelta(days=max(steps, default=0) + 1)
    everyone = None
    qs = (
        Complaint.objects.filter(status__in=OPEN_COMPLAINT, due_at__lte=horizon)
        .select_related("assignee", "member")
        .defer(*ENCRYPTED_COMPLAINT_FIELDS)
        .order_by("due_at", "pk")
    )
    for complaint in qs.iterator(chunk_size=1000):
        if everyone is None:
            everyone = regulators()
        due = _fmt(complaint.due_at)
        if now > complaint.due_at:
            counts["escalations"] += _remind_once(
                complaint, ComplaintReminder.Kind.OVERDUE, 0, everyone,
                _("Overdue: complaint %(no)s about %(member)s was due %(due)s")
                % {"no": complaint.receipt_no, "member": complaint.member.name, "due": due},
                _("The 30-day deadline for the written reply has passed."), now,
            )
            continue
        left = days_left(complaint.due_at, now)
        reached = [s for s in steps if left <= s]
        if not reached:
            continue
        counts["reminders"] += _remind_once(
            complaint, ComplaintReminder.Kind.DUE_SOON, min(reached),
            [complaint.assignee] if complaint.assignee else everyone,
            _("Complaint %(no)s: written reply due %(due)s") % {"no": complaint.receipt_no, "due": due},
            ngettext("%(n)d day left to reply.", "%(n)d days left to reply.", max(left, 0))
            % {"n": max(left, 0)}, now,
        )
    return counts


# --- Violations and sanctions ---------------------------------------------------------------------


def _member_users(member: Institution, perm: str | None = None) -> list[User]:
    if perm is None:
        return list(User.objects.filter(is_active=True, institution=member))
    return _users_with(perm, institution=member)


@transaction.atomic
def violation_record(
    *,
    actor: User,
    member: Institution,
    type: str,  # noqa: A002 - the model's field name
    description: str,
    evidence: Iterable[tuple[object, CheckedUpload]] = (),
    alert: QueryAlert | None = None,
    request=None,
    now: datetime | None = None,
) -> Violation:
    """A regulator records a violation by a member, with evidence files (already checked by
    `check_upload`; stored privately)."""
    now = now or timezone.now()
    _require(actor, "handle_complaints")
    if member.kind != Institution.Kind.LENDER:
        raise ValidationError({"member": _("Violations are recorded against member institutions (lenders).")})
    if type not in Violation.Type.values:
        raise ValidationError({"type": _("Choose the type of violation.")})
    if alert is not None and alert.member_id != member.pk:
        raise ValidationError(_("The alert is about another institution."))
    violation = Violation(
        member=member,
        type=type,
        description=_required_text(description, "description", _("Describe the violation.")),
        alert=alert,
        recorded_by=actor,
        recorded_at=now,
    )
    violation._history_user = actor
    violation.save(force_insert=True)
    files = []
    for f, checked in evidence:
        files.append(ViolationEvidence.objects.create(
            violation=violation, file=store_private(f, checked, folder="violations"), kind=checked.kind,
            original_name=checked.original_name, size=checked.size, sha256=checked.sha256, uploaded_by=actor,
        ))
    audit_record(actor=actor, action="violation.record", target=violation, institution=member, request=request,
                 now=now, details={"type": type, "alert": alert.pk if alert else None,
                                   "evidence": [e.sha256 for e in files]})
    return violation


def _fine(amount) -> Decimal:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise ValidationError({"fine_amount": _("Enter the amount in yuan, e.g. 50000.00.")}) from None
    if not value.is_finite() or value <= 0 or value > FINE_MAX:
        raise ValidationError({"fine_amount": _("Enter an amount greater than zero.")})
    if value != value.quantize(Decimal("0.01")):
        raise ValidationError({"fine_amount": _("At most two decimal places (fen).")})
    return value.quantize(Decimal("0.01"))


def _sanction_terms(*, kind, fine_amount, suspends_queries, suspends_reporting, starts_on, ends_on, today) -> dict:
    """The sanction's fields, checked: each kind carries exactly its own terms."""
    if kind not in Sanction.Kind.values:
        raise ValidationError({"kind": _("Choose a sanction.")})
    is_fine, is_suspension = kind == Sanction.Kind.FINE, kind == Sanction.Kind.SUSPENSION
    if not is_fine and fine_amount is not None:
        raise ValidationError({"fine_amount": _("Only a fine has an amount.")})
    if not is_suspension and (suspends_queries or suspends_reporting or starts_on or ends_on):
        raise ValidationError(_("Only a suspension has dates and suspended access."))
    terms = {"fine_amount": None, "suspends_queries": False, "suspends_reporting": False,
             "starts_on": None, "ends_on": None}
    if is_fine:
        if fine_amount is None:
            raise ValidationError({"fine_amount": _("Enter the amount of the fine.")})
        terms["fine_amount"] = _fine(fine_amount)
    if is_suspension:
        errors = {}
        if not (suspends_queries or suspends_reporting):
            errors["suspends_queries"] = _("Suspend queries, reporting, or both.")
        if starts_on is None:
            errors["starts_on"] = _("Enter the first day of the suspension.")
        elif starts_on < today:
            errors["starts_on"] = _("A suspension cannot start in the past.")
        if ends_on is None:
            errors["ends_on"] = _("Enter the last day of the suspension.")
        elif starts_on is not None and ends_on < starts_on:
            errors["ends_on"] = _("The last day cannot be before the first day.")
        if errors:
            raise ValidationError(errors)
        terms.update(suspends_queries=bool(suspends_queries), suspends_reporting=bool(suspends_reporting),
                     starts_on=starts_on, ends_on=ends_on)
    return terms


def _sanction_link(sanction: Sanction) -> str:
    return reverse("supervision:sanction_detail", args=[sanction.pk])


def suspension_scope(sanction: Sanction) -> str:
    if sanction.suspends_queries and sanction.suspends_reporting:
        return _("queries and reporting")
    return _("queries") if sanction.suspends_queries else _("reporting")


def _tell_member(sanction: Sanction, title: str, body: str, now: datetime) -> None:
    """The member's administrators get a link to the sanction; for a suspension every other
    user of the member is told too (the banner on their pages says the same)."""
    admins = _member_users(sanction.member, "view_own_supervision")
    notify(users=admins, title=title, body=body, link=_sanction_link(sanction), now=now)
    if sanction.kind == Sanction.Kind.SUSPENSION:
        others = [u for u in _member_users(sanction.member) if u.pk not in {a.pk for a in admins}]
        notify(users=others, title=title, body=body, now=now)


@transaction.atomic
def sanction_impose(
    *,
    actor: User,
    violation: Violation,
    kind: str,
    reason: str,
    fine_amount: Decimal | None = None,
    suspends_queries: bool = False,
    suspends_reporting: bool = False,
    starts_on: date | None = None,
    ends_on: date | None = None,
    request=None,
    now: datetime | None = None,
) -> Sanction:
    """A warning, a fine (CNY) or a suspension of query and/or reporting access from `starts_on`
    to `ends_on` inclusive (Asia/Shanghai dates). A suspension is enforced by
    supervision.enforcement on every channel and lifts by itself after its last day."""
    now = now or timezone.now()
    _require(actor, "handle_complaints")
    terms = _sanction_terms(kind=kind, fine_amount=fine_amount, suspends_queries=suspends_queries,
                            suspends_reporting=suspends_reporting, starts_on=starts_on, ends_on=ends_on,
                            today=shanghai_today(now))
    sanction = Sanction(
        violation=violation, member=violation.member, kind=kind,
        reason=_required_text(reason, "reason", _("Give the reason the member will read.")),
        recorded_by=actor, recorded_at=now, **terms,
    )
    sanction._history_user = actor
    sanction.save(force_insert=True)
    audit_record(actor=actor, action="sanction.impose", target=sanction, institution=sanction.member,
                 request=request, now=now,
                 details={"kind": kind, "violation": violation.pk, "fine_amount": terms["fine_amount"],
                          "suspends_queries": terms["suspends_queries"],
                          "suspends_reporting": terms["suspends_reporting"],
                          "starts_on": terms["starts_on"], "ends_on": terms["ends_on"]})
    if kind == Sanction.Kind.SUSPENSION:
        body = _("%(scope)s suspended from %(start)s to %(end)s inclusive: %(reason)s") % {
            "scope": suspension_scope(sanction), "start": sanction.starts_on.isoformat(),
            "end": sanction.ends_on.isoformat(), "reason": sanction.reason}
    elif kind == Sanction.Kind.FINE:
        body = _("A fine of %(amount)s CNY: %(reason)s") % {"amount": sanction.fine_amount, "reason": sanction.reason}
    else:
        body = _("A warning: %(reason)s") % {"reason": sanction.reason}
    _tell_member(sanction, _("The regulator imposed a sanction on your institution"), body, now)
    return sanction


@transaction.atomic
def sanction_lift(
    *, sanction: Sanction, actor: User, reason: str, request=None, now: datetime | None = None
) -> Sanction:
    """Lift a suspension before its last day (or cancel one that has not started)."""
    now = now or timezone.now()
    _require(actor, "handle_complaints")
    sanction = Sanction.objects.select_for_update().select_related("member").get(pk=sanction.pk)
    if sanction.kind != Sanction.Kind.SUSPENSION:
        raise ValidationError(_("Only a suspension can be lifted."))
    if sanction.lifted_at is not None:
        raise ValidationError(_("This suspension was lifted already."))
    if sanction.ends_on < shanghai_today(now):
        raise ValidationError(_("This suspension has ended already."))
    sanction.lift_reason = _required_text(reason, "reason", _("Give the reason for lifting the suspension."))
    sanction.lifted_at = now
    sanction.lifted_by = actor
    sanction._history_user = actor
    sanction.save(update_fields=["lift_reason", "lifted_at", "lifted_by"])
    audit_record(actor=actor, action="sanction.lift", target=sanction, institution=sanction.member,
                 request=request, now=now, details={"ends_on": sanction.ends_on})
    _tell_member(sanction, _("The suspension of your institution was lifted"),
                 _("Lifted on %(date)s: %(reason)s") % {"date": shanghai_today(now).isoformat(),
                                                         "reason": sanction.lift_reason}, now)
    return sanction


def sanction_in_force(sanction: Sanction, today: date) -> bool:
    return (
        sanction.kind == Sanction.Kind.SUSPENSION
        and sanction.lifted_at is None
        and sanction.starts_on <= today <= sanction.ends_on
    )


# --- Abnormal-query alerts ------------------------------------------------------------------------


def alerts_raise(*, findings: Iterable[rules.Finding], day: date, now: datetime) -> list[QueryAlert]:
    """One alert per finding, with the queries behind it. The unique key (rule, member, day,
    key) makes a second evaluation of the same day raise nothing."""
    created = []
    through = QueryAlert.queries.through
    for finding in findings:
        with transaction.atomic():
            alert, new = QueryAlert.objects.get_or_create(
                rule=finding.rule, member_id=finding.member_id, day=day, key=finding.key,
                defaults={"details": finding.details, "created_at": now},
            )
            if new:
                through.objects.bulk_create(
                    [through(queryalert_id=alert.pk, query_id=q) for q in finding.query_ids], batch_size=2000
                )
                created.append(alert)
    return created


@transaction.atomic
def alerts_evaluate(*, day: date, actor: User | None = None, request=None, now: datetime | None = None) -> list[QueryAlert]:
    """Evaluate every rule over the query log of one Asia/Shanghai day: by the daily task
    (actor None) or on demand by a regulator."""
    now = now or timezone.now()
    if actor is not None:
        _require(actor, "handle_complaints")
    if day > shanghai_today(now):
        raise ValidationError({"day": _("That day has not come yet.")})
    created = alerts_raise(findings=rules.evaluate(day), day=day, now=now)
    audit_record(actor=actor, action="alerts.evaluate", request=request, now=now,
                 details={"day": day.isoformat(), "raised": len(created)})
    if created and actor is None:
        notify(users=_users_with("supervise"),
               title=ngettext("%(n)d new query alert for %(day)s", "%(n)d new query alerts for %(day)s",
                              len(created)) % {"n": len(created), "day": day.isoformat()},
               link=reverse("supervision:alert_list"), now=now)
    return created


def alerts_evaluate_recent(*, now: datetime | None = None) -> int:
    """The daily task: yesterday, and the days before it that an outage may have skipped
    (re-evaluating a day raises nothing twice). Oldest first."""
    now = now or timezone.now()
    today = shanghai_today(now)
    days = [today - timedelta(days=n) for n in range(settings.PORTAL_ALERT_CATCH_UP_DAYS, 0, -1)]
    return sum(len(alerts_evaluate(day=d, now=now)) for d in days)


def _locked_alert(alert: QueryAlert) -> QueryAlert:
    return QueryAlert.objects.select_for_update().select_related("member").get(pk=alert.pk)


@transaction.atomic
def alert_acknowledge(*, alert: QueryAlert, actor: User, note: str, request=None, now: datetime | None = None) -> QueryAlert:
    """The regulator looked into the alert and found nothing to pursue (the note says why)."""
    now = now or timezone.now()
    _require(actor, "handle_complaints")
    alert = _locked_alert(alert)
    if alert.status != QueryAlert.Status.OPEN:
        raise ValidationError(_("This alert has been handled already."))
    alert.note = _required_text(note, "note", _("Say what you found."))
    alert.status = QueryAlert.Status.ACKNOWLEDGED
    alert.handled_by, alert.handled_at = actor, now
    alert.save(update_fields=["note", "status", "handled_by", "handled_at"])
    audit_record(actor=actor, action="alert.acknowledge", target=alert, institution=alert.member,
                 request=request, now=now, details={"rule": alert.rule})
    return alert


@transaction.atomic
def alert_escalate(
    *, alert: QueryAlert, actor: User, description: str, type: str | None = None,  # noqa: A002
    request=None, now: datetime | None = None,
) -> Violation:
    """Turn the alert into a violation of the member (type pre-filled from the rule), on which
    the regulator can then impose a sanction."""
    now = now or timezone.now()
    _require(actor, "handle_complaints")
    alert = _locked_alert(alert)
    if alert.status == QueryAlert.Status.ESCALATED:
        raise ValidationError(_("This alert has been escalated already."))
    violation = violation_record(actor=actor, member=alert.member, type=type or ESCALATION_TYPE[alert.rule],
                                 description=description, alert=alert, request=request, now=now)
    alert.status = QueryAlert.Status.ESCALATED
    alert.handled_by, alert.handled_at = actor, now
    alert.save(update_fields=["status", "handled_by", "handled_at"])
    audit_record(actor=actor, action="alert.escalate", target=alert, institution=alert.member,
                 request=request, now=now, details={"rule": alert.rule, "violation": violation.pk})
    return violation


def member_suspensions(member_id: int, *, today: date) -> list[Sanction]:
    """The suspensions in force today (for the banner on the member's pages)."""
    return list(
        Sanction.objects.filter(
            Q(suspends_queries=True) | Q(suspends_reporting=True),
            member_id=member_id, kind=Sanction.Kind.SUSPENSION, starts_on__lte=today, ends_on__gte=today,
            lifted_at__isnull=True,
        ).order_by("ends_on")
    )
