"""Bulk files: upload → validate every row (dry run, error report) → load nothing, or only
the valid rows. Runs in Celery tasks (eager in tests); memory stays flat because rows stream
from the file and are written in chunks."""

import contextlib
import datetime
import io
import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields as dataclass_fields
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from simple_history.utils import bulk_create_with_history, bulk_update_with_history

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.audit.services import audit_record
from blacklist_portal.uploads import CheckedUpload, store_private

from . import crypto
from .choices import Category
from .fields import EncryptedTextField
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
    conflicts with entries already on file (expired, or a settlement date moved later).

    Yields ``(row number, row or None, errors, staged)``: ``staged`` is ``(row, blind index)``
    for a row that parsed and has evidence, so the load can re-check it against the entries on
    file at that time (its only other possible error), or None."""
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
    indexes = [
        id_index_for(o.data.id_type, o.data.id_number) if o.data is not None else None
        for o in outcomes
    ]
    existing = _existing_entries(
        batch.member_id, [(o.data, i) for o, i in zip(outcomes, indexes, strict=True) if i is not None]
    )
    evidence_error = ("category", _("Evidence is required: upload an evidence file with the batch."))
    for o, index in zip(outcomes, indexes, strict=True):
        errors = list(o.errors)
        row = o.data
        staged = None
        if row is not None:
            if not has_batch_evidence and not (
                row.category == Category.COURT_JUDGMENT and row.case_number
            ):
                errors.append(evidence_error)
            else:
                staged = (row, index)
            entry = existing.get((row.contract_no, index))
            refusal = re_report_refusal(entry, row) if entry is not None else None
            if refusal:
                errors.append(refusal)
        yield o.row_number, (row if not errors else None), errors, staged


def _existing_entries(member_id: int, rows: list[tuple[ParsedRow, str]]) -> dict:
    """Entries on file for ``(row, blind index)`` pairs, by (contract, blind index)."""
    # Only the columns the checks need: loading the subject would decrypt its identifiers.
    return entries_by_key(
        member_id,
        {(row.contract_no, index) for row, index in rows},
        only=("contract_no", "status", "settled_on", "retention_until"),
    )


_JIT_OFF = "SET LOCAL jit = off"


def entries_by_key(
    member_id: int, keys: set[tuple[str, str]], *, lock=False, only=None, subjects: dict | None = None
) -> dict:
    """The member's entries for ``(contract number, subject blind index)`` keys, by key; with
    ``lock``, locked for update. ``subjects``: on PostgreSQL, filled with the ids of the keys'
    subjects on file, by blind index (a key's subject not in it had none), as the same
    statement finds them; elsewhere left as it is."""
    if not keys:
        return {}
    qs = Entry.objects.all()
    if connection.vendor == "postgresql":
        # Key by key (LATERAL … LIMIT 1 keeps it a nested loop) through the subject: a subject
        # has few entries. "member_id + 0" keeps the planner off the indexes that begin with the
        # member: without statistics for a member's new rows (a first big file, before the
        # next ANALYZE) it estimated one row per member, took such an index and read every
        # entry of the member for each key — seconds per chunk at 65,000 entries.
        contracts, indexes = zip(*keys, strict=True)
        qn = connection.ops.quote_name
        # Each key's subject, then its entry: LIMIT 1 keeps both lateral subqueries apart (a
        # probe of the unique index per key) rather than merged into a join of whole tables.
        sql = (
            "SELECT k.id_index, s.id, e.id FROM unnest(%s::text[], %s::text[]) AS k(contract_no, id_index) "  # noqa: S608  (table names from the models)
            f"CROSS JOIN LATERAL (SELECT s.id FROM {qn(Subject._meta.db_table)} s "
            "WHERE s.id_index = k.id_index LIMIT 1) s "
            f"LEFT JOIN LATERAL (SELECT e.id FROM {qn(Entry._meta.db_table)} e WHERE e.member_id + 0 = %s "
            "AND e.contract_no = k.contract_no AND e.subject_id = s.id LIMIT 1) e ON true"
        )
        # No JIT for this statement: the planner's estimate for a subject's entries (hundreds,
        # from the statistics of entry_subject_idx) puts a chunk's lookup far above
        # jit_above_cost, and compiling it took ~90 ms, ten times the lookup itself (a few ms:
        # one index probe per key). SET LOCAL lasts until the end of the transaction (opened
        # here if there is none; the caller's otherwise: its chunk of small statements).
        with transaction.atomic(savepoint=False), connection.cursor() as cursor:
            cursor.execute(_JIT_OFF)
            cursor.execute(sql, [list(contracts), list(indexes), member_id])
            found = cursor.fetchall()
        if subjects is not None:
            subjects.update((index, subject_id) for index, subject_id, _entry_id in found)
        index_of = {entry_id: index for index, _subject_id, entry_id in found if entry_id is not None}
        if not index_of:
            return {}
        qs = qs.filter(pk__in=list(index_of))
        if lock:
            qs = qs.select_for_update()
        if only:
            qs = qs.only(*only)
        return {(e.contract_no, index_of[e.pk]): e for e in qs}
    qs = qs.filter(
        member_id=member_id,
        contract_no__in={contract for contract, _index in keys},
        subject__id_index__in={index for _contract, index in keys},
    ).annotate(subject_index=F("subject__id_index"))
    if lock:
        qs = qs.select_for_update(of=("self",))
    if only:
        qs = qs.only(*only)
    return {(e.contract_no, e.subject_index): e for e in qs}


# --- Staged rows -------------------------------------------------------------------------------
#
# The dry run keeps the rows it parsed, so the load does not read and parse the file again. They
# are staged in the private storage next to the upload, one line per chunk of rows, each line an
# AES-256-GCM token (registry.crypto, bound to the batch): identifiers never rest in clear. A
# last line records how many rows were staged and the file's SHA-256; a batch without a complete
# staged file (validated before staging existed, or the file was removed) is loaded from the
# uploaded file, as before.

STAGED_VERSION = 1
_ROW_FIELDS = tuple(f.name for f in dataclass_fields(ParsedRow))
_DECIMAL_FIELDS = frozenset({"loan_amount", "overdue_amount"})
_DATE_FIELDS = frozenset({"delinquent_since", "judgment_date", "notified_on", "settled_on"})


def staged_name(batch: ImportBatch) -> str:
    return f"imports/staged/{batch.pk}.rows"


def _staged_aad(batch: ImportBatch) -> str:
    return f"registry.importbatch.staged.{batch.pk}"


def _encode_value(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _decoder(name: str):
    if name in _DECIMAL_FIELDS:
        return lambda v: None if v is None else Decimal(v)
    if name in _DATE_FIELDS:
        return lambda v: None if v is None else date.fromisoformat(v)
    return None


_DECODERS = tuple(_decoder(name) for name in _ROW_FIELDS)


class StagedRowsWriter:
    """Writes the staged rows of a batch: to a temporary file, renamed into place by
    ``close`` so that a staged file is always complete."""

    def __init__(self, batch: ImportBatch):
        self.batch = batch
        self.aad = _staged_aad(batch)
        self.path = Path(default_storage.path(staged_name(batch)))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(self.path.name + ".tmp")
        self.file = self.tmp.open("w", encoding="ascii")
        self.pending: list = []
        self.count = 0

    def add(self, ordinal: int, row: ParsedRow, index: str) -> None:
        """``ordinal``: the row's position among the file's data rows (for progress)."""
        self.pending.append([ordinal, index, *(_encode_value(getattr(row, f)) for f in _ROW_FIELDS)])
        self.count += 1
        if len(self.pending) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self._write(self.pending)
            self.pending = []

    def _write(self, data) -> None:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        self.file.write(crypto.encrypt(text, aad=self.aad) + "\n")

    def close(self) -> None:
        self._flush()
        self._write({"v": STAGED_VERSION, "rows": self.count, "sha256": self.batch.sha256})
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.file.close()
        self.tmp.unlink(missing_ok=True)


def staged_rows(batch: ImportBatch) -> Iterator[list[tuple[int, ParsedRow, str]]] | None:
    """Chunks of ``(ordinal, row, blind index)`` staged by the dry run, or None when the batch
    has no complete staged file."""
    path = Path(default_storage.path(staged_name(batch)))
    aad = _staged_aad(batch)
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("ascii")
        trailer = json.loads(crypto.decrypt(last, aad=aad))
    except (OSError, ValueError, crypto.CipherError):
        return None
    if not (
        isinstance(trailer, dict)
        and trailer.get("v") == STAGED_VERSION
        and trailer.get("sha256") == batch.sha256
    ):
        return None
    return _read_staged(path, aad, trailer["rows"])


def _read_staged(path: Path, aad: str, expected: int) -> Iterator[list]:
    count = 0
    with path.open(encoding="ascii") as f:
        for line in f:
            data = json.loads(crypto.decrypt(line.rstrip("\n"), aad=aad))
            if isinstance(data, dict):
                break  # the trailer
            chunk = []
            for ordinal, index, *values in data:
                row = ParsedRow(
                    *(v if decode is None else decode(v) for v, decode in zip(values, _DECODERS, strict=True))
                )
                chunk.append((ordinal, row, index))
            count += len(chunk)
            yield chunk
    if count != expected:
        raise RuntimeError(f"staged rows of {path.name}: {count} read, {expected} written")


def staged_delete(batch: ImportBatch) -> None:
    try:
        Path(default_storage.path(staged_name(batch))).unlink(missing_ok=True)
    except OSError:
        log.warning("could not delete the staged rows of batch %s", batch.pk, exc_info=True)


def batch_validate(*, batch_id: int, today: date | None = None) -> ImportBatch:
    """The dry run: every row checked, every error written to a downloadable report; the rows
    that parsed are staged (encrypted) for the load."""
    batch = ImportBatch.objects.get(pk=batch_id)
    if batch.status != ImportBatch.Status.VALIDATING:
        return batch  # already done: running twice changes nothing
    today = today or timezone.localdate()
    counts = {"total": 0, "errors": 0}
    staging = StagedRowsWriter(batch)

    def errors_only():
        for row_number, _row, errors, staged in _row_outcomes(batch, today=today):
            counts["total"] += 1
            if staged is not None:
                staging.add(counts["total"], *staged)
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
        staging.abort()
        problems = getattr(exc, "problems", None) or [exc.message]
        batch.status = ImportBatch.Status.REJECTED
        batch.problem = "\n".join(str(p) for p in problems)
        batch.finished_at = timezone.now()
        batch.save(update_fields=["status", "problem", "finished_at"])
        return batch
    except BaseException:
        staging.abort()
        raise
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
    if batch.status == ImportBatch.Status.VALIDATED and batch.valid_rows:
        staging.close()
    else:
        staging.abort()
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
    transaction.on_commit(lambda: staged_delete(batch))
    return batch


def batch_load(*, batch_id: int, now=None) -> ImportBatch:
    """Load the valid rows, a chunk per transaction. Each row upserts its entry by
    (member, contract, subject); a row whose content is already on file changes nothing, so
    running the load again, or uploading the same file again, is a no-op. The rows are those
    the dry run parsed and staged (or, without staged rows, the file read and checked again:
    the file is the same, so the result is the same as the dry run); each is checked again
    against the entries on file when its chunk is loaded."""
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
    options = {"now": now, "auto_approve": auto_approve, "source": source}
    staged = staged_rows(batch)
    if staged is not None:
        # Reading the staged rows and their fingerprints (CPU) runs in a thread while this one
        # waits for the database on the previous chunk.
        for processed, chunk in _prefetched(staged, _with_fingerprints):
            _load_chunk(batch, chunk, processed=processed, **options)
        processed = batch.total_rows
    else:
        processed = 0
        chunk: list = []
        for _row_number, _row, errors, staged_row in _row_outcomes(batch, today=today):
            processed += 1
            # A row with errors but staged was refused against an entry on file: checked again
            # when its chunk is loaded.
            if errors and staged_row is None:
                continue
            chunk.append(staged_row)
            if len(chunk) >= CHUNK:
                _load_chunk(batch, chunk, processed=processed, **options)
                chunk = []
        _load_chunk(batch, chunk, processed=processed, **options)
    ImportBatch.objects.filter(pk=batch.pk).update(
        status=ImportBatch.Status.LOADED, processed_rows=processed, finished_at=timezone.now()
    )
    staged_delete(batch)
    batch.refresh_from_db()
    return batch


def _with_fingerprints(chunk: list) -> tuple[int, list]:
    """A chunk of staged rows as (the ordinal of its last row, ``(row, blind index,
    fingerprint, subject record)``): on PostgreSQL the record is the subject's columns ready
    to insert (identifiers encrypted) should it be new."""
    postgresql = connection.vendor == "postgresql"
    return chunk[-1][0], [
        (row, index, entry_fingerprint(row), _subject_record(index, row) if postgresql else None)
        for _o, row, index in chunk
    ]


def _prefetched(items: Iterable, prepare: Callable) -> Iterator:
    """``prepare(item)`` for each item, computed one item ahead in a thread (which runs while
    the caller waits for the database). Exceptions are raised in the caller."""
    results: queue.Queue = queue.Queue(maxsize=1)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in items:
                if stop.is_set():
                    return
                results.put((True, prepare(item)))
            results.put((True, done))
        except BaseException as exc:  # handed over to the caller
            results.put((False, exc))

    worker = threading.Thread(target=work, name="bulk-load-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, result = results.get()
            if not ok:
                raise result
            if result is done:
                return
            yield result
    finally:
        stop.set()
        while worker.is_alive():  # unblock a worker waiting to put its next result
            with contextlib.suppress(queue.Empty):
                results.get(timeout=0.05)
        worker.join()


@transaction.atomic
def _load_chunk(batch, rows, *, now, auto_approve, source, processed) -> None:
    """``rows``: ``(row, blind index)`` pairs or ``(row, blind index, fingerprint)`` triples,
    in file order."""
    # The entries on file for these rows, locked: a row they refuse (expired, deleted, a
    # settlement date moved later) is skipped, the others update them.
    # On PostgreSQL the same statement gives the subjects on file of every row (None: not
    # known, looked up by _subjects_for).
    known = {} if connection.vendor == "postgresql" else None
    existing = entries_by_key(
        batch.member_id, {(item[0].contract_no, item[1]) for item in rows}, lock=True, subjects=known
    )
    # Later rows for the same contract and subject win, as if the file were loaded row by row.
    by_key = {}
    fingerprints = {}
    accepted = 0
    for row, index, *prepared in rows:
        key = (row.contract_no, index)
        entry = existing.get(key)
        if entry is not None and re_report_refusal(entry, row):
            continue
        accepted += 1
        by_key[key] = row
        fingerprints[key] = prepared or (None, None)
    subjects = _subjects_for(
        {index: row for (_contract, index), row in by_key.items()},
        {index: fingerprints[contract, index][1] for contract, index in by_key},
        known=known,
    )
    creates, updates, unchanged = [], [], 0
    defaults = _defaults(Entry)
    for (contract_no, index), row in by_key.items():
        fingerprint = fingerprints[contract_no, index][0] or entry_fingerprint(row)
        entry = existing.get((contract_no, index))
        if entry is not None and entry.fingerprint == fingerprint:
            unchanged += 1
            continue
        if entry is None:
            # The values of a new entry (a model instance costs more than the rest of the row).
            entry = SimpleNamespace(**defaults)
            entry.member_id = batch.member_id
            entry.subject_id = subjects[index]
            entry.contract_no = contract_no
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
        entries_create_with_history(creates, user=user, now=now)
    if updates:
        fields = [*REPORTED_FIELDS, "fingerprint", "source", "import_batch", "submitted_by",
                  "submitted_at", "return_reason", "reviewed_by", "reviewed_at", "status",
                  "retention_until", "updated_at"]
        for e in updates:
            e.updated_at = now
        bulk_update_with_history(updates, Entry, fields, batch_size=500, default_user=user, default_date=now)
    skipped = unchanged + (accepted - len(by_key))
    ImportBatch.objects.filter(pk=batch.pk).update(
        processed_rows=processed,
        created_rows=batch.created_rows + len(creates),
        updated_rows=batch.updated_rows + len(updates),
        unchanged_rows=batch.unchanged_rows + skipped,
    )
    batch.created_rows += len(creates)
    batch.updated_rows += len(updates)
    batch.unchanged_rows += skipped
    if creates or updates:
        audit_record(
            actor=user,
            action="import.load_chunk",
            target=batch,
            details={"created": len(creates), "updated": len(updates), "auto_approved": auto_approve},
            now=now,
        )


def _subject_record(index: str, row: ParsedRow) -> dict:
    """A new subject's columns as _pg_insert(prepared=True) takes them."""
    aad = _SUBJECT_AAD
    return {
        "subject_type": row.subject_type,
        "id_type": row.id_type,
        "id_number": crypto.encrypt(row.id_number, aad=aad["id_number"]),
        "id_index": index,
        "id_masked": mask_id_number(row.id_number),
        "name": crypto.encrypt(row.name, aad=aad["name"]),
        "name_index": name_index_for(row.name),
        "name_masked": mask_name(row.name),
        "phone": crypto.encrypt(row.phone, aad=aad["phone"]),
        "phone_masked": mask_phone(row.phone) if row.phone else "",
    }


_SUBJECT_AAD = {name: Subject._meta.get_field(name).aad for name in ("id_number", "name", "phone")}


def _subjects_for(
    wanted: dict[str, ParsedRow], records: dict | None = None, *, known: dict | None = None
) -> dict[str, int]:
    """Subject ids by blind index for ``{blind index: row}``: one SELECT, one bulk INSERT.
    ``records``: the rows' subject records made ahead (``_subject_record``), if any. ``known``:
    the subjects on file of every blind index wanted, looked up already in this transaction
    (an index not in it had no subject): no SELECT then."""
    if known is not None:
        found = {index: known[index] for index in wanted if index in known}
    else:
        # values_list(): the loader needs the key and the index, not the (encrypted) identifiers.
        found = dict(Subject.objects.filter(id_index__in=wanted).values_list("id_index", "id"))
    postgresql = connection.vendor == "postgresql"
    if postgresql and records and all(records.get(index) for index in wanted):
        missing = [records[index] for index in wanted if index not in found]
        if missing:
            found.update(
                _pg_insert(
                    Subject,
                    missing,
                    returning=("id_index", "id"),
                    on_conflict_nothing=True,
                    prepared=True,
                )
            )
            rest = [m["id_index"] for m in missing if m["id_index"] not in found]
            if rest:
                found.update(
                    Subject.objects.filter(id_index__in=rest).values_list("id_index", "id")
                )
        return found
    missing = [
        (SimpleNamespace if postgresql else Subject)(
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
        if postgresql:
            created = _pg_insert(
                Subject, missing, returning=("id_index", "id"), on_conflict_nothing=True
            )
            found.update(created)
            rest = [m.id_index for m in missing if m.id_index not in found]
        else:
            Subject.objects.bulk_create(missing, batch_size=500, ignore_conflicts=True)
            rest = [m.id_index for m in missing]
        if rest:
            found.update(Subject.objects.filter(id_index__in=rest).values_list("id_index", "id"))
    return found


# --- Writing rows on PostgreSQL ----------------------------------------------------------------
#
# Django's bulk_create sends one array per column, which psycopg quotes value by value in
# Python. On PostgreSQL the rows go as one JSON document instead (serialised by the C encoder)
# and are unpacked by the server with jsonb_to_recordset; an entry's history row is written by
# the same statement, from the rows it inserted. Elsewhere: bulk_create_with_history.


def _defaults(model) -> dict:
    """A new instance's field values by attname, before any is set."""
    return {f.attname: f.get_default() for f in model._meta.concrete_fields if not f.primary_key}


def entries_create_with_history(entries: list, *, user: User, now) -> None:
    """Insert new entries (unsaved instances, or objects with their field values as
    attributes) with their "+" history rows (``history_user`` the acting user,
    ``history_date`` ``now``), as simple-history's ``bulk_create_with_history`` does."""
    if connection.vendor != "postgresql":
        entries = [e if isinstance(e, Entry) else Entry(**vars(e)) for e in entries]
        bulk_create_with_history(entries, Entry, batch_size=500, default_user=user, default_date=now)
        return
    history = Entry.history.model
    qn = connection.ops.quote_name
    copied = [qn(f.column) for f in history.tracked_fields]  # the entry's columns, id included
    extra = {
        "history_date": now,
        "history_user_id": user.pk if user is not None else None,
        "history_change_reason": None,
        "history_type": "+",
    }
    then = (
        f"INSERT INTO {qn(history._meta.db_table)} "  # noqa: S608  (names from the models)
        f"({', '.join([*copied, *(qn(c) for c in extra)])}) "
        f"SELECT {', '.join(copied)}, {', '.join(['%s'] * len(extra))} FROM inserted"
    )
    _pg_insert(Entry, entries, then=(then, list(extra.values())))


def _json_value(field):
    """How a field's value goes into the JSON document (None stays null)."""
    if isinstance(field, EncryptedTextField):
        return lambda value: field.get_db_prep_save(value, connection)
    if isinstance(field, models.DecimalField):
        return lambda value: None if value is None else str(value)
    if isinstance(field, models.DateField | models.TimeField):  # DateTimeField included
        return lambda value: None if value is None else value.isoformat()
    return None


def _pg_insert(
    model, objs, *, returning=(), on_conflict_nothing=False, then=None, batch_size=CHUNK, prepared=False
):
    """INSERT new rows, ``batch_size`` per statement, sent as one JSON parameter: ``objs`` are
    unsaved instances or objects with the field values as attributes. Values are prepared as
    bulk_create prepares them (auto_now dates set, encrypted fields encrypted). Returns the
    ``returning`` columns of the inserted rows; with ``then=(sql, params)``, that statement
    runs instead on the inserted rows (a CTE named ``inserted``, every column). With
    ``prepared``, ``objs`` are dicts of the columns' JSON values (encrypted fields encrypted),
    but for the auto_now dates."""
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    qn = connection.ops.quote_name
    now = timezone.now()
    stamped = {
        f.attname for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    }
    plan = [(f.column, f.attname, f.attname in stamped, _json_value(f)) for f in fields]
    columns = ", ".join(qn(f.column) for f in fields)
    record = ", ".join(f"{qn(f.column)} {f.db_type(connection)}" for f in fields)
    insert = (
        f"INSERT INTO {qn(meta.db_table)} ({columns}) "  # noqa: S608  (names from the model)
        f"SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS r({record})"
    )
    if on_conflict_nothing:
        insert += " ON CONFLICT DO NOTHING"
    if then is not None:
        sql = f"WITH inserted AS ({insert} RETURNING *) {then[0]}"
        extra_params = list(then[1])
    else:
        sql = f"{insert} RETURNING {', '.join(qn(c) for c in returning) or qn(meta.pk.column)}"
        extra_params = []
    results = []
    stamps = {column: now.isoformat() for column, _attname, stamp, _convert in plan if stamp}

    def record(obj) -> dict:
        if prepared:
            return {**obj, **stamps}
        values = {}
        for column, attname, stamp, convert in plan:
            if stamp:
                setattr(obj, attname, now)
            value = getattr(obj, attname)
            values[column] = value if convert is None else convert(value)
        return values

    for start in range(0, len(objs), batch_size):
        records = [record(obj) for obj in objs[start : start + batch_size]]
        payload = json.dumps(records, ensure_ascii=False, separators=(",", ":"))
        with connection.cursor() as cursor:
            cursor.execute(sql, [payload, *extra_params])
            if then is None:
                results += cursor.fetchall()
    return results
