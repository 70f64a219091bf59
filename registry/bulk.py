"""Bulk files: upload → validate every row (dry run, error report) → load nothing, or only
the valid rows. Runs in Celery tasks (eager in tests); memory stays flat because rows stream
from the file and are written in chunks."""

import io
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.audit.services import audit_record
from blacklist_portal.uploads import CheckedUpload, store_private

from .choices import Category
from .identifiers import mask_id_number, mask_name, mask_phone
from .importing import validate_file
from .importing.columns import HeaderError
from .importing.reader import FileFormatError
from .importing.report import write_error_report
from .importing.rows import ParsedRow
from .models import Entry, ImportBatch, Subject
from .services import (
    REPORTED_FIELDS,
    _retention_until,
    check_member_may_report,
    entry_fingerprint,
    evidence_add,
    id_index_for,
    name_index_for,
    re_report_refusal,
    reported_values,
)

log = logging.getLogger(__name__)

CHUNK = 1000
PROGRESS_EVERY = 2000


@transaction.atomic
def batch_create(
    *,
    actor: User,
    member: Institution,
    f,
    checked: CheckedUpload,
    evidence: tuple | None = None,
    is_feed: bool = False,
    request=None,
) -> ImportBatch:
    if is_feed:
        if not actor.has_perm("accounts.load_feeds"):
            raise PermissionDenied
    elif not actor.has_perm("accounts.report_entry") or actor.institution_id != member.pk:
        raise PermissionDenied
    check_member_may_report(member, today=timezone.localdate())
    name = store_private(f, checked, folder="imports")
    batch = ImportBatch.objects.create(
        member=member,
        uploaded_by=actor,
        is_feed=is_feed,
        file=name,
        filename=checked.original_name,
        sha256=checked.sha256,
    )
    if evidence is not None:
        evidence_add(batch=batch, f=evidence[0], checked=evidence[1], actor=actor)
    audit_record(
        actor=actor,
        action="import.upload",
        target=batch,
        request=request,
        details={"sha256": checked.sha256, "size": checked.size, "feed": is_feed},
    )
    from .tasks import validate_batch

    transaction.on_commit(lambda: validate_batch.delay(batch.pk))
    return batch


def batch_previous_load(batch: ImportBatch) -> ImportBatch | None:
    """An earlier, loaded upload of the very same file by the same member, if any."""
    return (
        ImportBatch.objects.filter(
            member_id=batch.member_id, sha256=batch.sha256, status=ImportBatch.Status.LOADED
        )
        .exclude(pk=batch.pk)
        .order_by("-created_at")
        .first()
    )


def _row_outcomes(batch: ImportBatch, *, today: date) -> Iterator:
    """Parsed rows, plus the checks that need the database or the batch: evidence, and
    conflicts with entries already on file (expired, or a settlement date moved later)."""
    has_batch_evidence = batch.evidence.exists()
    path = Path(default_storage.path(batch.file))
    pending = []
    for outcome in validate_file(path, batch.filename, today=today):
        pending.append(outcome)
        if len(pending) >= CHUNK:
            yield from _check_chunk(batch, pending, has_batch_evidence)
            pending = []
    if pending:
        yield from _check_chunk(batch, pending, has_batch_evidence)


def _check_chunk(batch: ImportBatch, outcomes: list, has_batch_evidence: bool) -> Iterator:
    parsed = [o.data for o in outcomes if o.data is not None]
    existing = _existing_entries(batch.member_id, parsed)
    for o in outcomes:
        errors = list(o.errors)
        row = o.data
        if row is not None:
            if not has_batch_evidence and not (
                row.category == Category.COURT_JUDGMENT and row.case_number
            ):
                errors.append(
                    ("category", _("Evidence is required: upload an evidence file with the batch."))
                )
            entry = existing.get((row.contract_no, id_index_for(row.id_type, row.id_number)))
            refusal = re_report_refusal(entry, row) if entry is not None else None
            if refusal:
                errors.append(refusal)
        yield o.row_number, (row if not errors else None), errors


def _existing_entries(member_id: int, rows: list[ParsedRow]) -> dict:
    if not rows:
        return {}
    indexes = {id_index_for(r.id_type, r.id_number) for r in rows}
    contracts = {r.contract_no for r in rows}
    # Only the columns the checks need: loading the subject would decrypt its identifiers.
    qs = Entry.objects.filter(
        member_id=member_id, contract_no__in=contracts, subject__id_index__in=indexes
    ).annotate(subject_index=F("subject__id_index")).only("contract_no", "status", "settled_on", "retention_until")
    return {(e.contract_no, e.subject_index): e for e in qs}


def batch_validate(*, batch_id: int, today: date | None = None) -> ImportBatch:
    """The dry run: every row checked, every error written to a downloadable report."""
    batch = ImportBatch.objects.get(pk=batch_id)
    if batch.status != ImportBatch.Status.VALIDATING:
        return batch  # already done: running twice changes nothing
    today = today or timezone.localdate()
    counts = {"total": 0, "errors": 0}

    def errors_only():
        for row_number, _row, errors in _row_outcomes(batch, today=today):
            counts["total"] += 1
            if errors:
                counts["errors"] += 1
                for column, message in errors:
                    yield row_number, column, str(message)
            if counts["total"] % PROGRESS_EVERY == 0:
                ImportBatch.objects.filter(pk=batch.pk).update(processed_rows=counts["total"])

    report = io.StringIO()
    try:
        write_error_report(errors_only(), report)
    except (HeaderError, FileFormatError) as exc:
        problems = getattr(exc, "problems", None) or [exc.message]
        batch.status = ImportBatch.Status.REJECTED
        batch.problem = "\n".join(str(p) for p in problems)
        batch.finished_at = timezone.now()
        batch.save(update_fields=["status", "problem", "finished_at"])
        return batch
    if counts["errors"]:
        batch.error_report = default_storage.save(
            f"imports/reports/{batch.pk}-errors.csv",
            ContentFile(report.getvalue().encode("utf-8")),
        )
    batch.total_rows = counts["total"]
    batch.processed_rows = counts["total"]
    batch.error_rows = counts["errors"]
    batch.status = ImportBatch.Status.VALIDATED
    if counts["total"] == 0:
        batch.status = ImportBatch.Status.REJECTED
        batch.problem = _("The file has a header but no data rows.")
    batch.save()
    return batch


@transaction.atomic
def batch_start_load(*, batch: ImportBatch, actor: User, mode: str, request=None) -> ImportBatch:
    batch = ImportBatch.objects.select_for_update().get(pk=batch.pk)
    allowed = batch.member_id == actor.institution_id or (batch.is_feed and actor.has_perm("accounts.load_feeds"))
    if not allowed:
        raise PermissionDenied
    if batch.status != ImportBatch.Status.VALIDATED:
        raise ValidationError(_("This file has not been checked, or was loaded already."))
    if mode == ImportBatch.Mode.ALL_OR_NOTHING and batch.error_rows:
        raise ValidationError(
            _("%(n)s rows have errors. Fix the file, or choose to load only the valid rows.")
            % {"n": batch.error_rows}
        )
    if batch.valid_rows == 0:
        raise ValidationError(_("No row of this file is valid; nothing can be loaded."))
    batch.mode = mode
    batch.status = ImportBatch.Status.LOADING
    batch.processed_rows = 0
    batch.save(update_fields=["mode", "status", "processed_rows"])
    audit_record(actor=actor, action="import.load", target=batch, request=request, details={"mode": mode})
    from .tasks import load_batch

    transaction.on_commit(lambda: load_batch.delay(batch.pk))
    return batch


@transaction.atomic
def batch_cancel(*, batch: ImportBatch, actor: User, request=None) -> ImportBatch:
    batch = ImportBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status not in (ImportBatch.Status.VALIDATED, ImportBatch.Status.REJECTED):
        raise ValidationError(_("Only a checked file that is not loaded can be cancelled."))
    batch.status = ImportBatch.Status.CANCELLED
    batch.save(update_fields=["status"])
    audit_record(actor=actor, action="import.cancel", target=batch, request=request)
    return batch


def batch_load(*, batch_id: int, now=None) -> ImportBatch:
    """Load the valid rows, a chunk per transaction. Each row upserts its entry by
    (member, contract, subject); a row whose content is already on file changes nothing, so
    running the load again, or uploading the same file again, is a no-op. Rows are re-validated
    while loading: the file is the same, so the result is the same as the dry run."""
    batch = ImportBatch.objects.select_related("member", "uploaded_by").get(pk=batch_id)
    if batch.status != ImportBatch.Status.LOADING:
        return batch
    now = now or timezone.now()
    today = timezone.localdate(now)
    auto_approve = False
    source = Entry.Source.MEMBER
    if batch.is_feed:
        feed = getattr(batch.member, "feed_source", None)
        auto_approve = bool(feed and feed.auto_approve)
        source = feed.source if feed else Entry.Source.COURT
    processed = 0
    chunk: list[ParsedRow] = []
    for _row_number, row, errors in _row_outcomes(batch, today=today):
        processed += 1
        if errors:
            continue
        chunk.append(row)
        if len(chunk) >= CHUNK:
            _load_chunk(batch, chunk, now=now, auto_approve=auto_approve, source=source, processed=processed)
            chunk = []
    _load_chunk(batch, chunk, now=now, auto_approve=auto_approve, source=source, processed=processed)
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportBatch.Status.LOADED, processed_rows=processed, finished_at=timezone.now()
    )
    batch.refresh_from_db()
    return batch


@transaction.atomic
def _load_chunk(batch, rows, *, now, auto_approve, source, processed) -> None:
    # Later rows for the same contract and subject win, as if the file were loaded row by row.
    by_key = {}
    for row in rows:
        by_key[(row.contract_no, id_index_for(row.id_type, row.id_number))] = row
    subjects = _subjects_for(list(by_key.values()))
    existing = {
        (e.contract_no, e.subject_id): e
        for e in Entry.objects.select_for_update().filter(
            member_id=batch.member_id,
            contract_no__in={k[0] for k in by_key},
            subject_id__in=[s.pk for s in subjects.values()],
        )
    }
    creates, updates, unchanged = [], [], 0
    for (contract_no, index), row in by_key.items():
        subject = subjects[index]
        fingerprint = entry_fingerprint(row)
        entry = existing.get((contract_no, subject.pk))
        if entry is not None and entry.fingerprint == fingerprint:
            unchanged += 1
            continue
        if entry is None:
            entry = Entry(member_id=batch.member_id, subject=subject, contract_no=contract_no)
            creates.append(entry)
        else:
            updates.append(entry)
        keep_settlement = entry.settled_on
        for field, value in reported_values(row).items():
            setattr(entry, field, value)
        if keep_settlement and not row.settled_on:
            entry.settled_on = keep_settlement
        entry.fingerprint = fingerprint
        entry.source = source
        entry.import_batch_id = batch.pk
        entry.submitted_by_id = batch.uploaded_by_id
        entry.submitted_at = now
        entry.return_reason = ""
        entry.reviewed_by_id = None
        entry.reviewed_at = None
        entry.status = Entry.Status.PENDING_REVIEW
        if auto_approve:
            if entry.settled_on:
                entry.status = Entry.Status.SETTLED
                entry.retention_until = _retention_until(entry.settled_on)
            else:
                entry.status = Entry.Status.ACTIVE
    user = batch.uploaded_by
    if creates:
        bulk_create_with_history(creates, Entry, batch_size=500, default_user=user, default_date=now)
    if updates:
        fields = [*REPORTED_FIELDS, "fingerprint", "source", "import_batch", "submitted_by",
                  "submitted_at", "return_reason", "reviewed_by", "reviewed_at", "status",
                  "retention_until", "updated_at"]
        for e in updates:
            e.updated_at = now
        bulk_update_with_history(updates, Entry, fields, batch_size=500, default_user=user, default_date=now)
    ImportBatch.objects.filter(pk=batch.pk).update(
        processed_rows=processed,
        created_rows=batch.created_rows + len(creates),
        updated_rows=batch.updated_rows + len(updates),
        unchanged_rows=batch.unchanged_rows + unchanged + (len(rows) - len(by_key)),
    )
    batch.created_rows += len(creates)
    batch.updated_rows += len(updates)
    batch.unchanged_rows += unchanged + (len(rows) - len(by_key))
    if creates or updates:
        audit_record(
            actor=user,
            action="import.load_chunk",
            target=batch,
            details={"created": len(creates), "updated": len(updates), "auto_approved": auto_approve},
            now=now,
        )


def _subjects_for(rows: list[ParsedRow]) -> dict[str, Subject]:
    """Subjects for a chunk of rows by blind index: one SELECT, one bulk INSERT."""
    wanted = {id_index_for(r.id_type, r.id_number): r for r in rows}
    # .only(): the loader needs the key and the index, not the (encrypted) identifiers.
    found = {s.id_index: s for s in Subject.objects.filter(id_index__in=wanted).only("id", "id_index")}
    missing = [
        Subject(
            subject_type=r.subject_type,
            id_type=r.id_type,
            id_number=r.id_number,
            id_index=index,
            id_masked=mask_id_number(r.id_number),
            name=r.name,
            name_index=name_index_for(r.name),
            name_masked=mask_name(r.name),
            phone=r.phone,
            phone_masked=mask_phone(r.phone) if r.phone else "",
        )
        for index, r in wanted.items()
        if index not in found
    ]
    if missing:
        # ignore_conflicts: a concurrent upload may create the same subject; re-read after.
        Subject.objects.bulk_create(missing, batch_size=500, ignore_conflicts=True)
        found.update(
            {
                s.id_index: s
                for s in Subject.objects.filter(id_index__in=[m.id_index for m in missing]).only("id", "id_index")
            }
        )
    return found

