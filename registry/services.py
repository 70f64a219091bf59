"""Every change to subjects and entries goes through these functions: each validates, changes,
records history with the acting user and writes the audit row in one transaction."""

from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.audit.services import audit_record
from blacklist_portal.uploads import CheckedUpload, store_private

from . import crypto
from .choices import Category
from .identifiers import (
    mask_id_number,
    mask_name,
    mask_phone,
    normalize_id_number,
    normalize_name,
)
from .importing.rows import ParsedRow, row_fingerprint
from .models import Entry, Evidence, ImportBatch, Subject

# Fields of an entry that a (re-)report sets; everything else is workflow state.
REPORTED_FIELDS = (
    "subject_role",
    "category",
    "loan_amount",
    "overdue_amount",
    "delinquent_since",
    "court_name",
    "case_number",
    "judgment_date",
    "notified_on",
    "notice_method",
    "settled_on",
    "remarks",
)


def reported_values(row: ParsedRow) -> dict[str, Any]:
    """The entry fields a parsed row sets (the file's `role` column is the subject's role)."""
    return {field: getattr(row, "role" if field == "subject_role" else field) for field in REPORTED_FIELDS}


class ReportingSuspended(ValidationError):
    """The member may not report now (suspended institution or a reporting sanction)."""


def check_member_may_report(member: Institution, *, today: date) -> None:
    """A suspended institution, or one under a reporting suspension (a sanction), cannot
    report; the message says why and until when."""
    if not member.is_active:
        raise ReportingSuspended(_("Your institution is suspended and cannot report entries."))
    from supervision.enforcement import reporting_suspension

    suspension = reporting_suspension(member.pk, today=today)
    if suspension is not None:
        raise ReportingSuspended(
            _("Your institution's reporting access is suspended until %(until)s: %(reason)s")
            % {"until": suspension.until.isoformat(), "reason": suspension.reason}
        )


def re_report_refusal(entry: Entry, row: ParsedRow) -> tuple[str, str] | None:
    """(column, message) saying why a re-report of this contract must be refused, or None.
    Shared by the form, the API and bulk files."""
    if entry.status == Entry.Status.EXPIRED:
        return "contract_no", _(
            "The entry for this contract expired on %(date)s and cannot be reported again."
        ) % {"date": entry.retention_until}
    if entry.status == Entry.Status.DELETED:
        return "contract_no", _(
            "The entry for this contract was deleted after a dispute and cannot be reported again."
        )
    if entry.settled_on and row.settled_on and row.settled_on > entry.settled_on:
        return "settled_on", _("The settlement date cannot be moved later (it is %(date)s).") % {
            "date": entry.settled_on
        }
    return None


def entry_fingerprint(row: ParsedRow) -> str:
    """Keyed hash of a row's content: equal rows are re-reports that change nothing."""
    return row_fingerprint(row, key=crypto._keyring().blind_index_key)


def id_index_for(id_type: str, id_number: str) -> str:
    return crypto.blind_index(id_number, domain=f"id:{id_type}")


def name_index_for(name: str) -> str:
    return crypto.blind_index(name, domain="name")


def subject_find(*, id_type: str, id_number: str) -> Subject | None:
    """Exact lookup by a raw identifier (normalised here); never decrypts anything."""
    normalised = normalize_id_number(id_type, id_number)
    return Subject.objects.filter(id_index=id_index_for(id_type, normalised)).first()


def subject_get_or_create(
    *, subject_type: str, id_type: str, id_number: str, name: str, phone: str = ""
) -> Subject:
    """One subject per normalised identifier. Values must already be normalised."""
    index = id_index_for(id_type, id_number)
    subject = Subject.objects.filter(id_index=index).first()
    if subject is not None:
        if phone and not subject.phone:
            subject.phone = phone
            subject.phone_masked = mask_phone(phone)
            subject.save(update_fields=["phone", "phone_masked", "updated_at"])
        return subject
    subject = Subject(
        subject_type=subject_type,
        id_type=id_type,
        id_number=id_number,
        id_index=index,
        id_masked=mask_id_number(id_number),
        name=name,
        name_index=name_index_for(name),
        name_masked=mask_name(name),
        phone=phone,
        phone_masked=mask_phone(phone) if phone else "",
    )
    try:
        with transaction.atomic():
            subject.save(force_insert=True)
    except IntegrityError:
        # Another transaction created the same subject a moment ago.
        return Subject.objects.get(id_index=index)
    return subject


def subject_name_matches(subject: Subject, name: str) -> bool:
    try:
        return subject.name_index == name_index_for(normalize_name(name))
    except ValueError:
        return False


@transaction.atomic
def subject_reveal(*, subject: Subject, actor: User, request=None) -> dict[str, str]:
    """The full identifier, name and phone, for roles allowed to see them; always audited."""
    if not actor.has_perm("accounts.reveal_identifier"):
        raise PermissionDenied
    audit_record(actor=actor, action="subject.reveal", target=subject, request=request)
    return {"id_number": subject.id_number, "name": subject.name, "phone": subject.phone}


def _retention_until(settled_on: date) -> date:
    years = settings.PORTAL_RETENTION_YEARS
    try:
        return settled_on.replace(year=settled_on.year + years)
    except ValueError:  # 29 February
        return settled_on.replace(year=settled_on.year + years, day=28)


def _has_evidence(entry: Entry, *, new_files: int) -> bool:
    if new_files or entry.category == Category.COURT_JUDGMENT and entry.case_number:
        return True
    if entry.import_batch_id and entry.import_batch.evidence.exists():
        return True
    return entry.pk is not None and entry.evidence.exists()


def entry_report(
    *,
    actor: User,
    member: Institution,
    row: ParsedRow,
    evidence: list[tuple[Any, CheckedUpload]] = (),
    batch: ImportBatch | None = None,
    source: str = Entry.Source.MEMBER,
    auto_approve: bool = False,
    api_key=None,
    request=None,
    now: datetime | None = None,
) -> tuple[Entry, str]:
    """Report an entry, or re-report (update) the member's entry for the same contract and
    subject. Returns (entry, "created" | "updated" | "unchanged"). The entry goes to review
    (pending) unless its source is auto-approved.

    Through the API there is no person: pass `api_key` (the member's own key); the entry is
    attributed to the admin who created the key, and the audit row names the key."""
    now = now or timezone.now()
    if api_key is not None:
        if api_key.member_id != member.pk or member.kind != Institution.Kind.LENDER:
            raise PermissionDenied
        actor = api_key.created_by
    elif not actor.has_perm("accounts.report_entry") and not actor.has_perm("accounts.load_feeds"):
        raise PermissionDenied
    check_member_may_report(member, today=timezone.localdate(now))
    with transaction.atomic():
        subject = subject_get_or_create(
            subject_type=row.subject_type,
            id_type=row.id_type,
            id_number=row.id_number,
            name=row.name,
            phone=row.phone,
        )
        fingerprint = entry_fingerprint(row)
        entry = (
            Entry.objects.select_for_update()
            .filter(member=member, contract_no=row.contract_no, subject=subject)
            .first()
        )
        if entry is not None:
            refusal = re_report_refusal(entry, row)
            if refusal:
                raise ValidationError({refusal[0]: refusal[1]})
        # An identical re-report changes nothing, except that it resubmits a returned entry.
        if (
            entry is not None
            and entry.fingerprint == fingerprint
            and not evidence
            and entry.status != Entry.Status.RETURNED
        ):
            return entry, "unchanged"
        outcome = "updated" if entry is not None else "created"
        if entry is None:
            entry = Entry(member=member, subject=subject, contract_no=row.contract_no)
        keep_settlement = entry.settled_on
        for field, value in reported_values(row).items():
            setattr(entry, field, value)
        if keep_settlement and not row.settled_on:
            # A re-report without a settlement date never erases the one on file (and with it
            # the retention clock).
            entry.settled_on = keep_settlement
        entry.fingerprint = fingerprint
        entry.source = source
        entry.import_batch = batch or (entry.import_batch if entry.pk else None)
        entry.submitted_by = actor
        entry.submitted_at = now
        entry.return_reason = ""
        entry.reviewed_by = None
        entry.reviewed_at = None
        if not _has_evidence(entry, new_files=len(evidence)):
            raise ValidationError(
                _("Evidence is required: attach a file (or give the court case number for a judgment).")
            )
        entry.status = Entry.Status.PENDING_REVIEW
        if auto_approve:
            _make_live(entry, now=now)
        entry._history_user = actor
        entry.save()
        for f, checked in evidence:
            evidence_add(entry=entry, f=f, checked=checked, actor=actor)
        audit_record(
            actor=actor,
            action=f"entry.{'report' if outcome == 'created' else 're_report'}",
            target=entry,
            request=request,
            details={"batch": batch.pk if batch else None, "auto_approved": auto_approve,
                     "api_key_id": api_key.pk if api_key is not None else None},
            now=now,
        )
    return entry, outcome


def evidence_add(*, entry: Entry | None = None, batch: ImportBatch | None = None, f, checked: CheckedUpload, actor: User) -> Evidence:
    name = store_private(f, checked, folder="evidence")
    return Evidence.objects.create(
        entry=entry,
        batch=batch,
        file=name,
        kind=checked.kind,
        original_name=checked.original_name,
        size=checked.size,
        sha256=checked.sha256,
        uploaded_by=actor,
    )


def _make_live(entry: Entry, *, now: datetime) -> None:
    if entry.settled_on:
        entry.status = Entry.Status.SETTLED
        entry.retention_until = _retention_until(entry.settled_on)
    else:
        entry.status = Entry.Status.ACTIVE


@transaction.atomic
def entry_approve(*, entry: Entry, actor: User, request=None, now: datetime | None = None) -> Entry:
    now = now or timezone.now()
    if not actor.has_perm("accounts.review_entry"):
        raise PermissionDenied
    entry = Entry.objects.select_for_update().get(pk=entry.pk)
    if entry.status != Entry.Status.PENDING_REVIEW:
        raise ValidationError(_("Only an entry pending review can be approved."))
    if entry.submitted_by_id == actor.pk:
        raise ValidationError(_("You submitted this entry; another officer must approve it."))
    _make_live(entry, now=now)
    entry.reviewed_by = actor
    entry.reviewed_at = now
    entry._history_user = actor
    entry.save()
    audit_record(actor=actor, action="entry.approve", target=entry, request=request, now=now)
    return entry


@transaction.atomic
def entry_return(
    *, entry: Entry, actor: User, reason: str, request=None, now: datetime | None = None
) -> Entry:
    now = now or timezone.now()
    if not actor.has_perm("accounts.review_entry"):
        raise PermissionDenied
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say what the member must fix.")})
    entry = Entry.objects.select_for_update().get(pk=entry.pk)
    if entry.status != Entry.Status.PENDING_REVIEW:
        raise ValidationError(_("Only an entry pending review can be returned."))
    if entry.submitted_by_id == actor.pk:
        raise ValidationError(_("You submitted this entry; another officer must review it."))
    entry.status = Entry.Status.RETURNED
    entry.return_reason = reason
    entry.reviewed_by = actor
    entry.reviewed_at = now
    entry._history_user = actor
    entry.save()
    audit_record(
        actor=actor, action="entry.return", target=entry, request=request, now=now,
        details={"reason_length": len(reason)},
    )
    return entry


def _check_member_owns(entry: Entry, actor: User) -> None:
    if entry.member_id != actor.institution_id or not actor.has_perm("accounts.report_entry"):
        raise PermissionDenied


@transaction.atomic
def entry_settle(
    *, entry: Entry, actor: User, settled_on: date, request=None, now: datetime | None = None
) -> Entry:
    """Record repayment or the end of the behaviour. The retention clock starts at that date,
    which can be corrected earlier but never moved later."""
    now = now or timezone.now()
    _check_member_owns(entry, actor)
    entry = Entry.objects.select_for_update().get(pk=entry.pk)
    today = timezone.localdate(now)
    if settled_on > today:
        raise ValidationError({"settled_on": _("The settlement date cannot be in the future.")})
    if entry.status not in Entry.VISIBLE:
        raise ValidationError(_("Only an active or settled entry can be settled."))
    if entry.settled_on and settled_on > entry.settled_on:
        raise ValidationError(
            {"settled_on": _("The settlement date cannot be moved later (it is %(date)s).")
             % {"date": entry.settled_on}}
        )
    if entry.delinquent_since and settled_on < entry.delinquent_since:
        raise ValidationError(
            {"settled_on": _("The settlement date cannot be before the overdue start date.")}
        )
    entry.settled_on = settled_on
    entry.retention_until = _retention_until(settled_on)
    entry.status = Entry.Status.SETTLED
    entry._history_user = actor
    entry.save()
    audit_record(
        actor=actor, action="entry.settle", target=entry, request=request, now=now,
        details={"settled_on": settled_on.isoformat()},
    )
    return entry


@transaction.atomic
def entry_revoke(
    *, entry: Entry, actor: User, reason: str, request=None, now: datetime | None = None
) -> Entry:
    now = now or timezone.now()
    _check_member_owns(entry, actor)
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Give the reason for revoking this entry.")})
    entry = Entry.objects.select_for_update().get(pk=entry.pk)
    if entry.status in (Entry.Status.REVOKED, Entry.Status.EXPIRED, Entry.Status.DELETED):
        raise ValidationError(_("This entry is no longer on the register."))
    entry.status = Entry.Status.REVOKED
    entry.revoke_reason = reason
    entry._history_user = actor
    entry.save()
    audit_record(actor=actor, action="entry.revoke", target=entry, request=request, now=now)
    return entry


@transaction.atomic
def entry_set_statement(
    *, entry: Entry, actor: User, statement: str, request=None
) -> Entry:
    """The subject's own statement (本人声明), taken down by platform staff."""
    if not actor.has_perm("accounts.take_dispute") or actor.institution.kind != "operator":
        raise PermissionDenied
    entry = Entry.objects.select_for_update().get(pk=entry.pk)
    entry.subject_statement = statement.strip()
    entry._history_user = actor
    entry.save(update_fields=["subject_statement", "updated_at"])
    audit_record(actor=actor, action="entry.statement", target=entry, request=request)
    return entry


def entries_expire_due(*, today: date | None = None, batch_size: int = 1000) -> int:
    """Expire every settled entry whose retention has run out. Keeps only a stub: workflow
    dates and the category stay, free text and evidence go. Idempotent: a second run finds
    nothing to do. Each batch commits on its own, so an interrupted run resumes."""
    from django.core.files.storage import default_storage

    today = today or timezone.localdate()
    expired = 0
    while True:
        with transaction.atomic():
            batch = list(
                Entry.objects.select_for_update(skip_locked=True)
                .filter(status=Entry.Status.SETTLED, retention_until__lte=today)
                .order_by("pk")[:batch_size]
            )
            if not batch:
                return expired
            for entry in batch:
                entry.status = Entry.Status.EXPIRED
                entry.remarks = ""
                entry.subject_statement = ""
                entry._history_user = None
                entry.save(update_fields=["status", "remarks", "subject_statement", "updated_at"])
            # The history must not keep what expiry removes.
            Entry.history.filter(id__in=[e.pk for e in batch]).update(remarks="", subject_statement="")
            files = list(Evidence.objects.filter(entry__in=batch).values_list("file", flat=True))
            Evidence.objects.filter(entry__in=batch).delete()
            audit_record(
                actor=None,
                action="entry.expire",
                target_type="registry.entry",
                details={"count": len(batch), "first": batch[0].pk, "last": batch[-1].pk},
            )
            transaction.on_commit(lambda files=files: [default_storage.delete(f) for f in files])
            expired += len(batch)


# --- Changes made by disputes (disputes.services calls these) ---------------------------------

# What a dispute decision may correct on an entry.
CORRECTABLE_FIELDS = ("loan_amount", "overdue_amount", "delinquent_since", "settled_on", "category")


@transaction.atomic
def entry_correct(*, entry: Entry, actor: User, changes: dict, reason: str, now: datetime | None = None) -> Entry:
    """Correct an entry after a dispute. The history keeps the old values."""
    now = now or timezone.now()
    entry = Entry.objects.select_for_update().get(pk=entry.pk)
    unknown = set(changes) - set(CORRECTABLE_FIELDS)
    if unknown:
        raise ValidationError(_("These fields cannot be corrected: %(f)s") % {"f": ", ".join(sorted(unknown))})
    for field, value in changes.items():
        setattr(entry, field, value)
    if "settled_on" in changes and entry.settled_on:
        entry.retention_until = _retention_until(entry.settled_on)
        if entry.status == Entry.Status.ACTIVE:
            entry.status = Entry.Status.SETTLED
    entry._change_reason = reason[:100]
    entry._history_user = actor
    entry.save()
    audit_record(actor=actor, action="entry.correct", target=entry, now=now,
                 details={"fields": sorted(changes)})
    return entry


@transaction.atomic
def entry_delete_by_dispute(*, entry: Entry, actor: User, now: datetime | None = None) -> Entry:
    """Remove an entry from the register after a dispute; a stub stays for the record."""
    now = now or timezone.now()
    entry = Entry.objects.select_for_update().get(pk=entry.pk)
    entry.status = Entry.Status.DELETED
    entry.disputed = False
    entry._history_user = actor
    entry.save()
    audit_record(actor=actor, action="entry.delete_by_dispute", target=entry, now=now)
    return entry


def entries_set_dispute_flag(*, entry_ids: list[int], flagged: bool, actor: User | None = None) -> int:
    """Show or hide 存在异议 on entries. Callers pass the entries whose open disputes changed."""
    changed = 0
    for entry in Entry.objects.select_for_update().filter(pk__in=entry_ids).exclude(disputed=flagged):
        entry.disputed = flagged
        entry._history_user = actor
        entry.save(update_fields=["disputed", "updated_at"])
        changed += 1
    return changed


@transaction.atomic
def entry_restore_after_dispute(*, entry: Entry, actor: User, now: datetime | None = None) -> Entry:
    """Undo a deletion when a reconsideration reverses it: the entry is live again."""
    now = now or timezone.now()
    entry = Entry.objects.select_for_update().get(pk=entry.pk)
    if entry.status != Entry.Status.DELETED:
        return entry
    entry.status = Entry.Status.SETTLED if entry.settled_on else Entry.Status.ACTIVE
    entry._history_user = actor
    entry.save()
    audit_record(actor=actor, action="entry.restore_after_dispute", target=entry, now=now)
    return entry
