from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

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


@transaction.atomic
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
    `transaction.atomic` block, so the event and the change commit or roll back together.
    Appends are serialised: on PostgreSQL with a transaction-scoped advisory lock held until
    commit, so two writers can never both extend the same head.
    """
    if target is not None:
        target_type = target._meta.label_lower
        target_id = target.pk
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if institution is None and actor is not None:
        institution = actor.institution
    clean_details = _clean(details or {})
    _lock_chain()
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    occurred_at = now or timezone.now()
    event = AuditEvent(
        seq=seq,
        occurred_at=occurred_at,
        actor=actor,
        institution=institution,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        ip=client_ip(request),
        details=clean_details,
        prev_hash=prev_hash,
    )
    event.hash = chain_hash(prev_hash, _payload(event))
    event.save(force_insert=True)
    return event


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
