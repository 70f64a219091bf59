"""The hash function of the audit chain, kept free of the database so it can be reasoned about
(and re-implemented by an outside verifier) on its own."""

import hashlib
import json
from datetime import UTC, datetime


def canonical_payload(
    *,
    seq: int,
    occurred_at: datetime,
    actor_id: int | None,
    institution_id: int | None,
    action: str,
    target_type: str,
    target_id: str,
    ip: str | None,
    details: dict,
) -> str:
    return json.dumps(
        {
            "seq": seq,
            "at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor_id,
            "inst": institution_id,
            "action": action,
            "type": target_type,
            "id": target_id,
            "ip": ip,
            "details": details,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )


def chain_hash(prev_hash: str, payload: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{payload}".encode()).hexdigest()
