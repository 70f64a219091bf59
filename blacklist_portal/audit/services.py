from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

from blacklist_portal.sql import Names, fetch_one, insert_rows

from .chain import canonical_payload, chain_hash
from .models import GENESIS_HASH, AuditEvent

# Arbitrary constant: the key of the PostgreSQL advisory lock that serialises appends.
_CHAIN_LOCK_KEY = 0x41554454  # "AUDT"

# Keys that would put raw personal data into the log. Details carry ids and masked values only.
_FORBIDDEN_DETAIL_KEYS = frozenset(
    {"id_number", "id_no", "phone", "password", "secret", "token", "api_key", "full_name"}
)


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    from django.conf import settings

    if settings.PORTAL_BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            return forwarded.split(",")[-1].strip() or None
    return request.META.get("REMOTE_ADDR") or None


def _clean(value):
    if isinstance(value, dict):
        bad = _FORBIDDEN_DETAIL_KEYS.intersection(value)
        if bad:
            raise ValueError(f"audit details must not carry personal data: {sorted(bad)}")
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        # Floats do not round-trip exactly through every database's JSON type.
        return repr(value)
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _lock_chain() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])
    # SQLite: the transaction began IMMEDIATE (settings), so it already holds the write lock.


def _chain_head() -> tuple[int, str]:
    """(seq, hash) of the last event, (0, genesis) for an empty log; read under the chain lock.
    Written out: it runs in every audited request (blacklist_portal/sql.py says why)."""
    n = Names(AuditEvent)
    row = fetch_one(f"SELECT {n('seq')}, {n('hash')} FROM {n.table} ORDER BY {n('seq')} DESC LIMIT 1", [])  # noqa: S608
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def audit_record(
    *,
    actor,
    action: str,
    target: Model | None = None,
    target_type: str = "",
    target_id: str | int = "",
    institution=None,
    request: HttpRequest | None = None,
    details: dict | None = None,
    now=None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    Call it from the service that makes the change (or the read), within the same
    `transaction.atomic` block, so the event and the change commit or roll back together (no
    savepoint of its own: an append that fails fails the caller's transaction).
    Appends are serialised: on PostgreSQL with a transaction-scoped advisory lock held until
    commit, so two writers can never both extend the same head.
    """
    # Checked before the transaction: a refused event must not spoil the caller's transaction.
    event = _prepare(
        actor=actor, action=action, target=target, target_type=target_type, target_id=target_id,
        institution=institution, request=request, details=details, now=now,
    )  # fmt: skip
    with transaction.atomic(savepoint=False):
        _lock_chain()
        (row,) = _chained([event])
        event = AuditEvent(**dict(zip(_ROW_FIELDS, row, strict=True)))
        event.save(force_insert=True)
        return event


def audit_record_many(events: list[dict]) -> int:
    """Append several events to the chain in one go, inside the caller's transaction; returns
    how many.

    Each item holds audit_record's keyword arguments. The result is exactly the chain that
    calling audit_record once per item, in order, would write (same seq, times, hashes), but
    the chain lock is taken and the head read once, and the rows are inserted in bulk (on
    PostgreSQL one COPY). Like audit_record it has no savepoint of its own, and every event is
    checked before the transaction: a refused batch writes nothing and leaves the caller's
    transaction usable.
    """
    if not events:
        return 0
    prepared = []
    for kwargs in events:
        try:
            prepared.append(_prepare(**kwargs))
        except TypeError as exc:
            raise TypeError(f"audit_record_many: bad arguments {sorted(kwargs)}") from exc
    with transaction.atomic(savepoint=False):
        _lock_chain()
        rows = _chained(prepared)
        insert_rows(AuditEvent, list(_ROW_FIELDS), rows)  # on PostgreSQL one COPY
    return len(rows)


def _prepare(
    *, actor, action: str, target=None, target_type="", target_id="", institution=None, request=None,
    details=None, now=None,
) -> tuple:
    """An event's fields before it joins the chain: (occurred_at or None, actor_id,
    institution_id, action, target_type, target_id, ip, details). Refuses personal data."""
    if target is not None:
        target_type = target._meta.label_lower
        target_id = target.pk
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if institution is None and actor is not None:
        institution = actor.institution
    return (
        now,  # None: the time of the append
        None if actor is None else actor.pk,
        None if institution is None else institution.pk,
        action,
        target_type,
        str(target_id),
        client_ip(request),
        _clean(details or {}),
    )


def _chained(prepared: list[tuple]) -> list[tuple]:
    """The rows (_ROW_FIELDS order) that extend the chain's head with these events, in order.
    Call it holding the chain lock."""
    seq, prev_hash = _chain_head()
    rows = []
    for occurred_at, actor_id, institution_id, action, target_type, target_id, ip, details in prepared:
        seq += 1
        occurred_at = occurred_at or timezone.now()
        payload = canonical_payload(
            seq=seq, occurred_at=occurred_at, actor_id=actor_id, institution_id=institution_id,
            action=action, target_type=target_type, target_id=target_id, ip=ip, details=details,
        )  # fmt: skip
        event_hash = chain_hash(prev_hash, payload)
        rows.append((seq, occurred_at, actor_id, institution_id, action, target_type, target_id, ip, details,
                     prev_hash, event_hash))  # fmt: skip
        prev_hash = event_hash
    return rows


_ROW_FIELDS = (
    "seq", "occurred_at", "actor_id", "institution_id", "action", "target_type", "target_id", "ip",
    "details", "prev_hash", "hash",
)  # fmt: skip


def _payload(event: AuditEvent) -> str:
    return canonical_payload(
        seq=event.seq,
        occurred_at=event.occurred_at,
        actor_id=event.actor_id,
        institution_id=event.institution_id,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        ip=event.ip,
        details=event.details,
    )


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    head_hash: str
    broken_at: int | None = None
    reason: str = ""


def audit_verify_chain(*, chunk_size: int = 5000) -> ChainReport:
    """Walk the chain in sequence order and report the first row that does not fit."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    count = 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=chunk_size):
        if event.seq != expected_seq:
            return ChainReport(False, count, prev_hash, expected_seq, "missing or reordered row")
        if event.prev_hash != prev_hash:
            return ChainReport(False, count, prev_hash, event.seq, "previous hash does not match")
        if chain_hash(prev_hash, _payload(event)) != event.hash:
            return ChainReport(False, count, prev_hash, event.seq, "content does not match its hash")
        prev_hash = event.hash
        expected_seq += 1
        count += 1
    return ChainReport(True, count, prev_hash)
