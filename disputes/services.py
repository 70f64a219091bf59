"""The dispute workflow's services. Each action: check who may take it and when, move the
status through `workflow.next_status`, change the entry through registry services, write the
timeline event and the audit row — one transaction."""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.audit.services import audit_record, audit_record_many
from blacklist_portal.inbox.services import notify, notify_many
from blacklist_portal.sql import Names
from blacklist_portal.uploads import CheckedUpload, store_private
from registry import services as registry_services
from registry.identifiers import mask_name
from registry.models import Entry, Subject

from .models import (
    Attachment,
    Decision,
    Dispute,
    DisputeEvent,
    IntakeChannel,
    Reminder,
    VerificationAnswer,
)
from .workflow import (
    FLAGGED_STATUSES,
    OPEN_STATUSES,
    Action,
    Status,
    TransitionRefused,
    next_status,
)


def end_of_day_after(start: datetime, days: int) -> datetime:
    """The last instant of the Asia/Shanghai calendar day `days` days after `start`'s day."""
    local_day: date = timezone.localdate(start, timezone.get_default_timezone()) + timedelta(days=days)
    return datetime.combine(local_day, time.max, tzinfo=timezone.get_default_timezone())


def days_left(due: datetime, now: datetime) -> int:
    """Whole Asia/Shanghai days from today until the due day (0 = due today, < 0 overdue)."""
    tz = timezone.get_default_timezone()
    return (timezone.localdate(due, tz) - timezone.localdate(now, tz)).days


def _receipt_no(now: datetime) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return f"D{timezone.localdate(now, timezone.get_default_timezone()):%Y%m%d}{''.join(secrets.choice(alphabet) for _ in range(6))}"


def _event(dispute: Dispute, action: str, before: str, actor: User | None, note: str, now: datetime) -> None:
    DisputeEvent.objects.create(
        dispute=dispute, action=action, from_status=before, to_status=dispute.status, actor=actor, note=note, at=now
    )


def _move(dispute: Dispute, action: str, actor: User | None, *, note: str = "", now: datetime, request=None) -> str:
    before = dispute.status
    dispute.status = next_status(before, action)
    dispute._history_user = actor
    dispute.save()
    _event(dispute, action, before, actor, note, now)
    audit_record(actor=actor, action=f"dispute.{action}", target=dispute, request=request, now=now,
                 institution=actor.institution if actor else None,
                 details={"from": before, "to": dispute.status})
    return before


def _locked(dispute: Dispute) -> Dispute:
    return Dispute.objects.select_for_update().get(pk=dispute.pk)


def _refresh_flags(dispute: Dispute, actor: User | None = None) -> None:
    """An entry shows 存在异议 while any of its disputes is open or appealed."""
    ids = list(dispute.entries.values_list("pk", flat=True))
    flagged = set(
        Dispute.entries.through.objects.filter(
            entry_id__in=ids, dispute__status__in=FLAGGED_STATUSES
        ).values_list("entry_id", flat=True)
    )
    registry_services.entries_set_dispute_flag(entry_ids=list(flagged), flagged=True, actor=actor)
    registry_services.entries_set_dispute_flag(
        entry_ids=[i for i in ids if i not in flagged], flagged=False, actor=actor
    )


def _officers(perm: str) -> list[User]:
    return [u for u in User.objects.filter(is_active=True, groups__permissions__codename=perm).distinct()]


def _member_verifiers(dispute: Dispute) -> list[User]:
    """The active users of the reporting members who answer verification requests."""
    return _verifiers_by_dispute([dispute.pk])[dispute.pk]


def _link(dispute: Dispute) -> str:
    from django.urls import reverse

    return reverse("disputes:detail", args=[dispute.pk])


# --- Intake -----------------------------------------------------------------------------------


@transaction.atomic
def dispute_receive(
    *,
    actor: User,
    subject: Subject,
    entry: Entry | None,
    claim_type: str,
    description: str,
    applicant_name: str,
    applicant_contact: str = "",
    channel: str,
    attachments: list[tuple[object, CheckedUpload]] = (),
    request=None,
    now: datetime | None = None,
) -> Dispute:
    """Take a correction request. From this moment its entries show 存在异议."""
    now = now or timezone.now()
    if not actor.has_perm("accounts.take_dispute"):
        raise PermissionDenied
    from .models import ClaimType

    if claim_type not in ClaimType.values:
        raise ValidationError({"claim_type": _("Choose what the applicant says is wrong.")})
    if channel not in IntakeChannel.values:
        raise ValidationError({"channel": _("Choose how the request was received.")})
    if entry is not None:
        if entry.subject_id != subject.pk:
            raise ValidationError({"entry": _("This entry is about another person.")})
        if entry.status not in Entry.VISIBLE:
            raise ValidationError({"entry": _("This entry is not on the register.")})
        entries = [entry]
    else:
        entries = list(Entry.objects.filter(subject=subject, status__in=Entry.VISIBLE))
        if not entries:
            raise ValidationError({"entry": _("There is no entry about this person on the register.")})
    is_member = actor.institution.kind == Institution.Kind.LENDER
    dispute = Dispute.objects.create(
        receipt_no=_receipt_no(now),
        subject=subject,
        claim_type=claim_type,
        description=description.strip(),
        applicant_name=applicant_name.strip(),
        applicant_name_masked=mask_name(applicant_name.strip()),
        applicant_contact=applicant_contact.strip(),
        channel=IntakeChannel.MEMBER if is_member else channel,
        filed_by_member=actor.institution if is_member else None,
        taken_by=actor,
        received_at=now,
        decision_due_at=end_of_day_after(now, settings.PORTAL_DISPUTE_DECISION_DAYS),
    )
    dispute.entries.set(entries)
    for f, checked in attachments:
        Attachment.objects.create(
            dispute=dispute, file=store_private(f, checked, folder="disputes"), kind=checked.kind,
            original_name=checked.original_name, size=checked.size, sha256=checked.sha256, uploaded_by=actor,
        )
    _event(dispute, "receive", "", actor, "", now)
    _refresh_flags(dispute, actor)
    audit_record(actor=actor, action="dispute.receive", target=dispute, request=request, now=now,
                 details={"claim": claim_type, "entries": [e.pk for e in entries], "channel": dispute.channel})
    notify(
        users=_officers("work_disputes"),
        title=_("New dispute %(no)s") % {"no": dispute.receipt_no},
        body=_("Decision due %(due)s.") % {"due": f"{timezone.localtime(dispute.decision_due_at):%Y-%m-%d}"},
        link=_link(dispute),
        now=now,
    )
    return dispute


# --- The officer's work -----------------------------------------------------------------------


def _require_officer(actor: User) -> None:
    if not actor.has_perm("accounts.work_disputes"):
        raise PermissionDenied


@transaction.atomic
def dispute_assign(*, dispute: Dispute, actor: User, assignee: User, request=None, now: datetime | None = None) -> Dispute:
    now = now or timezone.now()
    _require_officer(actor)
    dispute = _locked(dispute)
    if dispute.status == Status.APPEALED:
        if not assignee.has_perm("accounts.decide_appeal"):
            raise ValidationError({"assignee": _("An appeal goes to a senior review officer.")})
        if assignee.pk == dispute.decided_by_id:
            raise ValidationError({"assignee": _("The officer who decided the dispute cannot reconsider it.")})
    elif not assignee.has_perm("accounts.work_disputes"):
        raise ValidationError({"assignee": _("Choose a review officer.")})
    dispute.assignee = assignee
    _move(dispute, Action.ASSIGN, actor, note=str(assignee), now=now, request=request)
    notify(users=[assignee], title=_("Dispute %(no)s is assigned to you") % {"no": dispute.receipt_no},
           link=_link(dispute), now=now)
    return dispute


@transaction.atomic
def dispute_request_verification(*, dispute: Dispute, actor: User, request=None, now: datetime | None = None) -> Dispute:
    now = now or timezone.now()
    _require_officer(actor)
    dispute = _locked(dispute)
    dispute.verification_due_at = end_of_day_after(now, settings.PORTAL_DISPUTE_VERIFICATION_DAYS)
    _move(dispute, Action.REQUEST_VERIFICATION, actor, now=now, request=request)
    notify(
        users=_member_verifiers(dispute),
        title=_("Please verify the disputed entry (%(no)s)") % {"no": dispute.receipt_no},
        body=_("Answer by %(due)s; without an answer the entry is treated as unverifiable and deleted.")
        % {"due": f"{timezone.localtime(dispute.verification_due_at):%Y-%m-%d}"},
        link=_link(dispute),
        now=now,
    )
    return dispute


@transaction.atomic
def dispute_answer_verification(
    *, dispute: Dispute, actor: User, answer: str, note: str, request=None, now: datetime | None = None
) -> Dispute:
    """The reporting member's answer: verified, corrected (say what) or delete."""
    now = now or timezone.now()
    dispute = _locked(dispute)
    members = set(dispute.entries.values_list("member_id", flat=True))
    if actor.institution_id not in members or not actor.has_perm("accounts.answer_verification"):
        raise PermissionDenied
    if answer not in (VerificationAnswer.VERIFIED, VerificationAnswer.CORRECTED, VerificationAnswer.DELETE):
        raise ValidationError({"answer": _("Choose verified, corrected or delete.")})
    if answer == VerificationAnswer.CORRECTED and not note.strip():
        raise ValidationError({"note": _("Say what is corrected.")})
    if dispute.status == Status.AWAITING_VERIFICATION and dispute.verification_due_at and now > dispute.verification_due_at:
        raise ValidationError(_("The time to answer has passed; the entry is treated as unverifiable."))
    dispute.verification_answer = answer
    dispute.verification_note = note.strip()
    dispute.verification_answered_at = now
    _move(dispute, Action.ANSWER_VERIFICATION, actor, note=answer, now=now, request=request)
    if dispute.assignee:
        notify(users=[dispute.assignee], title=_("The member answered on dispute %(no)s") % {"no": dispute.receipt_no},
               link=_link(dispute), now=now)
    return dispute


@transaction.atomic
def dispute_verification_timeout(*, dispute: Dispute, now: datetime | None = None) -> Dispute:
    now = now or timezone.now()
    dispute = _locked(dispute)
    if dispute.status != Status.AWAITING_VERIFICATION or now <= dispute.verification_due_at:
        return dispute
    dispute.verification_answer = VerificationAnswer.UNVERIFIABLE
    _move(dispute, Action.VERIFICATION_TIMEOUT, None, now=now)
    return dispute


@transaction.atomic
def dispute_extend(*, dispute: Dispute, actor: User, reason: str, request=None, now: datetime | None = None) -> Dispute:
    now = now or timezone.now()
    _require_officer(actor)
    dispute = _locked(dispute)
    next_status(dispute.status, Action.EXTEND)
    if dispute.extension_reason:
        raise ValidationError(_("The deadline has been extended once already."))
    if not reason.strip():
        raise ValidationError({"reason": _("Give the reason for the extension.")})
    dispute.extension_reason = reason.strip()
    dispute.decision_due_at = end_of_day_after(dispute.decision_due_at, settings.PORTAL_DISPUTE_EXTENSION_DAYS)
    # The reminders count down to the new date from the start again.
    dispute.reminders.filter(kind__in=[Reminder.Kind.DUE_SOON, Reminder.Kind.OVERDUE]).delete()
    _move(dispute, Action.EXTEND, actor, note=reason, now=now, request=request)
    return dispute


def _apply_outcome(dispute: Dispute, outcome: str, corrections: dict, actor: User, now: datetime) -> None:
    """Make the decision true on the register; remember corrected values' previous state."""
    before = {}
    for entry in dispute.entries.all():
        if entry.status not in Entry.VISIBLE:
            continue
        if outcome == Decision.DELETED:
            registry_services.entry_delete_by_dispute(entry=entry, actor=actor, now=now)
            before.setdefault("deleted", []).append(entry.pk)
        elif outcome == Decision.CORRECTED:
            before[str(entry.pk)] = {
                f: (None if getattr(entry, f) is None else str(getattr(entry, f))) for f in corrections
            }
            registry_services.entry_correct(
                entry=entry, actor=actor, changes=corrections, reason=f"dispute {dispute.receipt_no}", now=now
            )
    dispute.corrections_before = before
    dispute.save(update_fields=["corrections_before"])


def _undo_outcome(dispute: Dispute, actor: User, now: datetime) -> None:
    """Reverse the first decision before a reconsideration applies a different one."""
    if dispute.decision == Decision.DELETED:
        # Only the entries this dispute deleted: another dispute's deletion stands.
        for entry in dispute.entries.filter(pk__in=dispute.corrections_before.get("deleted", [])):
            registry_services.entry_restore_after_dispute(entry=entry, actor=actor, now=now)
    elif dispute.decision == Decision.CORRECTED:
        for entry in dispute.entries.all():
            old = dispute.corrections_before.get(str(entry.pk))
            if old:
                registry_services.entry_correct(
                    entry=entry, actor=actor, changes=_corrections_clean(old, allow_empty=True),
                    reason=f"reconsideration {dispute.receipt_no}", now=now,
                )


def _notify_queriers(dispute: Dispute, outcome: str, now: datetime) -> None:
    """Members that queried the subject recently learn of a correction or deletion."""
    if outcome not in (Decision.CORRECTED, Decision.DELETED):
        return
    from billing.models import Query

    since = now - timedelta(days=settings.PORTAL_DISPUTE_NOTIFY_QUERIERS_DAYS)
    members = set(
        Query.objects.filter(subject_index=dispute.subject.id_index, kind=Query.Kind.MEMBER, created_at__gte=since)
        .values_list("member_id", flat=True)
    )
    users = User.objects.filter(
        is_active=True, institution_id__in=members, groups__permissions__codename="query_register"
    ).distinct()
    notify(
        users=users,
        title=_("A record you queried was %(outcome)s") % {"outcome": Decision(outcome).label},
        body=_("Subject %(name)s %(id)s: the entry was %(outcome)s after a dispute (%(no)s). Query again before relying on an earlier result.")
        % {"name": dispute.subject.name_masked, "id": dispute.subject.id_masked,
           "outcome": Decision(outcome).label, "no": dispute.receipt_no},
        now=now,
    )


def _corrections_clean(corrections: dict, *, allow_empty: bool = False) -> dict:
    """Typed corrections from form text. `allow_empty` keeps None (restoring an empty value)."""
    from registry.choices import Category
    from registry.importing.rows import FieldError, parse_amount, parse_date

    clean = {}
    errors = {}
    for field, value in corrections.items():
        if value in ("", None):
            if allow_empty:
                clean[field] = None
            continue
        try:
            if field in ("loan_amount", "overdue_amount"):
                clean[field] = parse_amount(value)
            elif field in ("delinquent_since", "settled_on"):
                clean[field] = parse_date(value)
            elif field == "category":
                if value not in Category.values:
                    errors[field] = _("Choose a category.")
                clean[field] = value
            else:
                errors[field] = _("This field cannot be corrected.")
        except FieldError as exc:
            errors[field] = exc.message
    if errors:
        raise ValidationError(errors)
    return clean


@transaction.atomic
def dispute_decide(
    *, dispute: Dispute, actor: User, decision: str, reasons: str, corrections: dict | None = None,
    request=None, now: datetime | None = None,
) -> Dispute:
    now = now or timezone.now()
    _require_officer(actor)
    dispute = _locked(dispute)
    next_status(dispute.status, Action.DECIDE)  # refuse out-of-order before anything changes
    if dispute.assignee_id and dispute.assignee_id != actor.pk and not actor.has_perm("accounts.decide_appeal"):
        raise ValidationError(_("Only the assigned officer (or a senior officer) decides this dispute."))
    if decision not in Decision.values:
        raise ValidationError({"decision": _("Choose a decision.")})
    if not reasons.strip():
        raise ValidationError({"reasons": _("Write the reasons for the decision.")})
    if dispute.verification_answer == VerificationAnswer.UNVERIFIABLE and decision != Decision.DELETED:
        raise ValidationError({"decision": _("The member did not verify the entry in time: it must be deleted.")})
    corrections = _corrections_clean(corrections or {})
    if decision == Decision.CORRECTED and not corrections:
        raise ValidationError({"decision": _("Enter the corrected values.")})
    dispute.decision = decision
    dispute.decision_reasons = reasons.strip()
    dispute.corrections = {k: str(v) for k, v in corrections.items()} if decision == Decision.CORRECTED else {}
    dispute.decided_by = actor
    dispute.decided_at = now
    dispute.appeal_due_at = end_of_day_after(now, settings.PORTAL_DISPUTE_APPEAL_DAYS)
    _move(dispute, Action.DECIDE, actor, note=decision, now=now, request=request)
    _apply_outcome(dispute, decision, corrections if decision == Decision.CORRECTED else {}, actor, now)
    _refresh_flags(dispute, actor)
    _notify_queriers(dispute, decision, now)
    return dispute


@transaction.atomic
def dispute_appeal(*, dispute: Dispute, actor: User, reason: str, request=None, now: datetime | None = None) -> Dispute:
    now = now or timezone.now()
    if not actor.has_perm("accounts.take_dispute"):
        raise PermissionDenied
    dispute = _locked(dispute)
    if actor.institution.kind == Institution.Kind.LENDER and dispute.filed_by_member_id != actor.institution_id:
        # The reporting member cannot appeal a correction of its own entry.
        raise PermissionDenied
    next_status(dispute.status, Action.APPEAL)
    if now > dispute.appeal_due_at:
        raise ValidationError(
            _("The time to appeal ended on %(date)s.")
            % {"date": f"{timezone.localtime(dispute.appeal_due_at, timezone.get_default_timezone()):%Y-%m-%d}"}
        )
    if not reason.strip():
        raise ValidationError({"reason": _("Give the grounds of the appeal.")})
    dispute.appeal_reason = reason.strip()
    dispute.appealed_at = now
    dispute.assignee = None
    _move(dispute, Action.APPEAL, actor, note=reason, now=now, request=request)
    _refresh_flags(dispute, actor)
    notify(users=[u for u in _officers("decide_appeal") if u.pk != dispute.decided_by_id],
           title=_("Appeal on dispute %(no)s") % {"no": dispute.receipt_no}, link=_link(dispute), now=now)
    return dispute


@transaction.atomic
def dispute_reconsider(
    *, dispute: Dispute, actor: User, outcome: str, reasons: str, corrections: dict | None = None,
    request=None, now: datetime | None = None,
) -> Dispute:
    """A senior officer who did not decide the dispute confirms or changes the decision."""
    now = now or timezone.now()
    if not actor.has_perm("accounts.decide_appeal"):
        raise PermissionDenied
    dispute = _locked(dispute)
    next_status(dispute.status, Action.RECONSIDER)
    if actor.pk == dispute.decided_by_id:
        raise ValidationError(_("You decided this dispute; another senior officer must reconsider it."))
    if outcome not in Decision.values:
        raise ValidationError({"decision": _("Choose a decision.")})
    if not reasons.strip():
        raise ValidationError({"reasons": _("Write the reasons for the decision.")})
    corrections = _corrections_clean(corrections or {})
    if outcome == Decision.CORRECTED and outcome != dispute.decision and not corrections:
        raise ValidationError({"decision": _("Enter the corrected values.")})
    dispute.reconsideration = outcome
    dispute.reconsideration_reasons = reasons.strip()
    dispute.reconsidered_by = actor
    dispute.closed_at = now
    _move(dispute, Action.RECONSIDER, actor, note=outcome, now=now, request=request)
    if outcome != dispute.decision or (outcome == Decision.CORRECTED and corrections):
        _undo_outcome(dispute, actor, now)
        if outcome in (Decision.DELETED, Decision.CORRECTED):
            _apply_outcome(dispute, outcome, corrections, actor, now)
        _notify_queriers(dispute, outcome, now)
    _refresh_flags(dispute, actor)
    return dispute


@transaction.atomic
def dispute_close(
    *, dispute: Dispute, actor: User | None = None, request=None, now: datetime | None = None
) -> Dispute:
    """Close a decided dispute once its appeal window has passed (the sweep does it; an
    officer may too)."""
    now = now or timezone.now()
    if actor is not None and not actor.has_perm("accounts.work_disputes"):
        raise PermissionDenied
    dispute = _locked(dispute)
    next_status(dispute.status, Action.CLOSE)
    if now <= dispute.appeal_due_at:
        raise ValidationError(_("The applicant may still appeal until %(date)s.") % {"date": f"{timezone.localtime(dispute.appeal_due_at):%Y-%m-%d}"})
    dispute.closed_at = now
    _move(dispute, Action.CLOSE, actor, now=now, request=request)
    _refresh_flags(dispute, actor)
    return dispute


# --- The sweep: reminders, escalations, timeouts --------------------------------------------------


@dataclass
class _Due:
    """A reminder the sweep found due and not yet sent (by what it read before its write)."""

    key: tuple[int, str, int]  # (dispute id, kind, step): Reminder's unique key
    count_as: str
    tell: bool  # False: recorded only (a later step of the same dispute, told once)
    title: str
    body: str


def _insert_reminders(keys: list[tuple[int, str, int]], now: datetime) -> set[tuple[int, str, int]]:
    """Insert the reminder rows that do not exist yet and return the keys this call inserted:
    `INSERT … ON CONFLICT DO NOTHING RETURNING`. A concurrent sweep inserting the same key
    waits for this transaction and then skips it, so each key is returned to one sweep only.
    The keys are inserted in the order given (the sweep's order: dispute id, then step), the
    same in every sweep, so two sweeps never wait for each other in a cycle."""
    r = Names(Reminder)
    names = [r(name) for name in ("dispute", "kind", "step", "sent_at")]
    sent_at = Reminder._meta.get_field("sent_at").get_db_prep_value(now, connection)
    conflict = f"ON CONFLICT ({', '.join(names[:3])}) DO NOTHING RETURNING {', '.join(names[:3])}"
    inserted: set[tuple[int, str, int]] = set()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Three array parameters rather than thousands of placeholders; in the given order.
            cursor.execute(
                f"INSERT INTO {r.table} ({', '.join(names)}) "  # noqa: S608 (names from the model)
                "SELECT d, k, s, %s FROM unnest(%s::bigint[], %s::text[], %s::integer[]) "
                f"WITH ORDINALITY AS x(d, k, s, n) ORDER BY n {conflict}",
                [sent_at, [k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]],
            )
            return {(int(d), str(k), int(st)) for d, k, st in cursor.fetchall()}
        for i in range(0, len(keys), _INSERT_BATCH):  # SQLite: a bounded number of placeholders
            batch = keys[i : i + _INSERT_BATCH]
            cursor.execute(
                f"INSERT INTO {r.table} ({', '.join(names)}) "  # noqa: S608 (names from the model)
                f"VALUES {', '.join(['(%s, %s, %s, %s)'] * len(batch))} {conflict}",
                [v for dispute_id, kind, step in batch for v in (dispute_id, kind, step, sent_at)],
            )
            inserted.update((int(d), str(k), int(st)) for d, k, st in cursor.fetchall())
    return inserted


_INSERT_BATCH = 500


def _send_due(
    due: list[_Due], counts: dict, now: datetime, recipients: Callable[[list[int]], dict[int, list[User]]]
) -> None:
    """Record and send a chunk's due reminders, each unless it was sent already: the reminder
    rows, their notifications and e-mails and their audit rows commit together (one
    transaction per chunk); a second sweep finds the rows and sends nothing. `recipients`
    maps dispute ids to the users to tell; it is asked only about the reminders really sent."""
    if not due:
        return
    with transaction.atomic():
        inserted = _insert_reminders([d.key for d in due], now)
        sent = [d for d in due if d.key in inserted]  # the others: sent by a concurrent sweep
        users = recipients(sorted({d.key[0] for d in sent if d.tell}))
        link = _link_maker()
        messages, events = [], []
        for d in sent:
            dispute_id, kind, step = d.key
            counts[d.count_as] += 1
            messages.append((users[dispute_id] if d.tell else [], d.title, d.body, link(dispute_id)))
            events.append({"actor": None, "action": "dispute.reminder", "target_type": _DISPUTE_LABEL,
                           "target_id": dispute_id, "now": now, "details": {"kind": kind, "step": step}})
        notify_many(messages, now=now, send_now=False)
        # Last: the chain lock is held until the commit, which follows at once.
        audit_record_many(events)


_DISPUTE_LABEL = Dispute._meta.label_lower


def _link_maker() -> Callable[[int], str]:
    """`_link` by dispute id, without resolving the URL once per reminder."""
    from django.urls import reverse

    sentinel = "918273645"
    template = reverse("disputes:detail", args=[int(sentinel)])
    if template.count(sentinel) != 1:  # pragma: no cover - a URL pattern that repeats the id
        return lambda dispute_id: reverse("disputes:detail", args=[dispute_id])
    before, after = template.split(sentinel)
    return lambda dispute_id: f"{before}{dispute_id}{after}"


def _verifiers_by_dispute(dispute_ids: list[int]) -> dict[int, list[User]]:
    """The verifiers (see _member_verifiers) of many disputes, in two queries."""
    members: dict[int, set[int]] = {pk: set() for pk in dispute_ids}
    for dispute_id, member_id in Dispute.entries.through.objects.filter(dispute_id__in=dispute_ids).values_list(
        "dispute_id", "entry__member_id"
    ):
        members[dispute_id].add(member_id)
    verifiers = list(
        User.objects.filter(
            is_active=True, institution_id__in=set().union(*members.values()),
            groups__permissions__codename="answer_verification",
        ).distinct()
    )
    return {pk: [u for u in verifiers if u.institution_id in ids] for pk, ids in members.items()}


def _sent_keys(dispute_ids: list[int]) -> set[tuple[int, str, int]]:
    if connection.vendor == "postgresql":  # one array parameter, not a thousand placeholders
        r = Names(Reminder)
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {r('dispute')}, {r('kind')}, {r('step')} FROM {r.table} WHERE {r('dispute')} = ANY(%s)",  # noqa: S608
                [dispute_ids],
            )
            return set(cursor.fetchall())
    return set(Reminder.objects.filter(dispute__in=dispute_ids).values_list("dispute_id", "kind", "step"))


def _chunks(qs, size: int = 1000):
    chunk = []
    for obj in qs.iterator(chunk_size=size):
        chunk.append(obj)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _day(at: datetime) -> str:
    return f"{timezone.localtime(at, timezone.get_default_timezone()):%Y-%m-%d}"


def dispute_sweep(*, now: datetime | None = None) -> dict:
    """Everything due, from the database: the sweep catches up after any outage, and running
    it twice sends nothing twice. Per chunk of 1,000 disputes (only the columns it needs), the
    reminders already sent are read once and the due ones recorded and sent in one
    transaction, so a sweep costs a few queries per thousand disputes, whatever it sends."""
    now = now or timezone.now()
    counts = {"reminders": 0, "escalations": 0, "verification_reminders": 0, "timeouts": 0, "closed": 0}
    steps = sorted(settings.PORTAL_DISPUTE_REMINDER_DAYS, reverse=True)
    horizon = now + timedelta(days=max(steps) + 1)
    seniors: list[User] | None = None

    def senior_officers() -> list[User]:
        nonlocal seniors
        if seniors is None:
            seniors = _officers("decide_appeal")
        return seniors

    # Translated once per sweep (the language does not change during it).
    overdue_title = _("Overdue: dispute %(no)s was due %(due)s")
    overdue_body = _("The legal deadline has passed without a decision.")
    due_title = _("Dispute %(no)s: decision due in %(n)s days")
    due_body = _("Due %(due)s.")
    verify_title = _("Verification of dispute %(no)s due in %(n)s days")
    verify_body = _("Without an answer the entry is treated as unverifiable and deleted.")
    open_qs = (
        Dispute.objects.filter(status__in=OPEN_STATUSES, decision_due_at__lte=horizon)
        .order_by("pk")
        .values_list("pk", "receipt_no", "decision_due_at", "assignee_id")
    )
    for chunk in _chunks(open_qs):
        sent = _sent_keys([row[0] for row in chunk])
        due: list[_Due] = []
        assignee_of: dict[int, int] = {}  # dispute id → assignee id, for the due-soon reminders
        for pk, receipt_no, decision_due_at, assignee_id in chunk:
            if now > decision_due_at:
                if (pk, Reminder.Kind.OVERDUE, 0) not in sent:
                    due.append(_Due(
                        (pk, Reminder.Kind.OVERDUE, 0), "escalations", True,
                        overdue_title % {"no": receipt_no, "due": _day(decision_due_at)}, overdue_body,
                    ))
                continue
            if assignee_id is None:
                continue
            left = days_left(decision_due_at, now)
            missed = [st for st in steps if left <= st and (pk, Reminder.Kind.DUE_SOON, st) not in sent]
            if not missed:
                continue
            # After an outage several steps may be due at once: record them all, tell once.
            title = due_title % {"no": receipt_no, "n": max(left, 0)}
            body = due_body % {"due": _day(decision_due_at)}
            assignee_of[pk] = assignee_id
            for n, step in enumerate(sorted(missed)):
                due.append(_Due((pk, Reminder.Kind.DUE_SOON, step), "reminders", n == 0, title, body))

        def recipients(dispute_ids: list[int], assignee_of=assignee_of) -> dict[int, list[User]]:
            assignees = User.objects.in_bulk({assignee_of[pk] for pk in dispute_ids if pk in assignee_of})
            return {pk: [assignees[assignee_of[pk]]] if pk in assignee_of else senior_officers() for pk in dispute_ids}

        _send_due(due, counts, now, recipients)
    awaiting = (
        Dispute.objects.filter(status=Status.AWAITING_VERIFICATION)
        .order_by("pk")
        .values_list("pk", "receipt_no", "verification_due_at")
    )
    for chunk in _chunks(awaiting):
        sent = _sent_keys([row[0] for row in chunk])
        due = []
        for pk, receipt_no, verification_due_at in chunk:
            if now > verification_due_at:
                if dispute_verification_timeout(dispute=Dispute(pk=pk), now=now).status != Status.AWAITING_VERIFICATION:
                    counts["timeouts"] += 1
                continue
            left = days_left(verification_due_at, now)
            missed = [st for st in (2, 1) if left <= st and (pk, Reminder.Kind.VERIFY_DUE, st) not in sent]
            for n, step in enumerate(sorted(missed)):
                due.append(_Due(
                    (pk, Reminder.Kind.VERIFY_DUE, step), "verification_reminders", n == 0,
                    verify_title % {"no": receipt_no, "n": max(left, 0)}, verify_body,
                ))
        _send_due(due, counts, now, _verifiers_by_dispute)
    decided = Dispute.objects.filter(status=Status.DECIDED, appeal_due_at__lt=now).order_by("pk")
    for dispute in decided.iterator(chunk_size=1000):
        try:
            dispute_close(dispute=dispute, now=now)
        except (TransitionRefused, ValidationError):
            continue  # closed (or appealed) by someone else since the query above
        counts["closed"] += 1
    if any(counts.values()):
        from blacklist_portal.inbox.tasks import send_outbox

        transaction.on_commit(lambda: send_outbox.delay())
    return counts
