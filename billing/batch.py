"""Batch screening for post-loan monitoring: up to PORTAL_BATCH_MAX_SUBJECTS subjects in one
request, each checked against its own consent and logged and billed exactly like a single query
(a Query row with channel "batch", a fee line per billable query), but in bulk: a fixed number
of SQL statements whatever the number of subjects.

Per subject the rules are those of `services.query_run`: a missing, foreign, expired, not yet
valid, other person's or post-loan-less consent refuses the subject (no log row, no fee); a name
that does not match the subject on file shows nothing (not even query activity) and costs
nothing. Multi-lending
indicators are computed as for a single query, for all subjects in one GROUP BY.
"""

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from blacklist_portal.accounts.models import Institution
from blacklist_portal.audit.services import audit_record
from blacklist_portal.sql import insert_rows
from registry.identifiers import (
    IdentifierError,
    mask_id_number,
    mask_name,
    normalize_id_number,
    normalize_name,
)
from registry.services import id_index_for, name_index_for

from . import risk
from .choices import Channel, Purpose, RefusalReason
from .models import ApiKey, Consent, FeeLine, Query
from .pricing import price_from_rules, rules_in_force, take_sequences
from .services import (
    _entry_snapshot,
    _result,
    check_member_may_query,
    live_entries,
    multi_lending_many,
    new_numbers,
    snapshot_labels,
)

# Masked names are stored in varchar(100) columns (Subject, Query), and masking keeps the length.
NAME_MAX_LENGTH = Query._meta.get_field("name_masked").max_length
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_ID = 2**63 - 1


class BatchTooLarge(Exception):
    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"more than {limit} subjects")


@dataclass
class SubjectResult:
    index: int
    status: str  # "ok" | "refused" | "invalid"
    row: dict | None = None  # the stored Query's values (attname → value) when "ok"
    code: str = ""
    message: object = ""
    fields: dict = field(default_factory=dict)


@dataclass
class BatchResult:
    results: list[SubjectResult]
    fee: Decimal
    queried_at: datetime

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)


@dataclass
class _Valid:
    index: int
    id_type: str
    id_number: str
    name: str
    consent_id: int | None
    id_index: str = ""


# --- Input -----------------------------------------------------------------------------------


def _text(item: dict, key: str, errors: dict) -> str | None:
    value = item.get(key)
    if value is None or value == "":
        errors[key] = _("A value is required.")
        return None
    if not isinstance(value, str):
        errors[key] = _("Expected text.")
        return None
    if _CONTROL.search(value):
        errors[key] = _("Control characters are not allowed.")
        return None
    return value


def parse_subject(index: int, item) -> _Valid | SubjectResult:
    """A subject of the request, normalised, or an "invalid" result saying what is wrong."""
    if not isinstance(item, dict):
        return SubjectResult(
            index, "invalid", code="invalid", message=_("Each subject must be a JSON object.")
        )
    errors: dict = {}
    id_type = _text(item, "id_type", errors)
    raw_number = _text(item, "id_number", errors)
    raw_name = _text(item, "name", errors)
    id_number = name = None
    if id_type is not None and raw_number is not None:
        try:
            id_number = normalize_id_number(id_type, raw_number)
        except IdentifierError as exc:
            errors["id_type" if exc.code == "unknown_id_type" else "id_number"] = exc.message
    if raw_name is not None:
        try:
            name = normalize_name(raw_name)
        except IdentifierError as exc:
            errors["name"] = exc.message
        else:
            if len(name) > NAME_MAX_LENGTH:
                errors["name"] = format_lazy(
                    _("A name has at most {n} characters."), n=NAME_MAX_LENGTH
                )
    consent_id = item.get("consent_id")
    if consent_id is not None and (
        isinstance(consent_id, bool) or not isinstance(consent_id, int) or not 0 < consent_id <= _MAX_ID
    ):
        errors["consent_id"] = _("Expected the number of a consent.")
    if errors:
        return SubjectResult(
            index, "invalid", code="invalid", message=_("Some fields are not valid."), fields=errors
        )
    return _Valid(index, id_type, id_number, name, consent_id)


# --- Checks in bulk ----------------------------------------------------------------------------


def _refusal(consent: dict | None, subject: _Valid, today: date) -> RefusalReason | None:
    # The order of services._check_consent, so a subject is refused for the same reason as
    # a single query would be.
    if subject.consent_id is None:
        return RefusalReason.NO_CONSENT
    if consent is None:
        return RefusalReason.CONSENT_NOT_FOUND
    if consent["subject__id_index"] != subject.id_index:
        return RefusalReason.CONSENT_OTHER_SUBJECT
    if consent["signed_on"] > today:
        return RefusalReason.CONSENT_NOT_YET
    if consent["expires_on"] < today:
        return RefusalReason.CONSENT_EXPIRED
    if not consent["covers_post_loan"]:
        return RefusalReason.CONSENT_PURPOSE
    return None


# --- Billing in bulk ---------------------------------------------------------------------------


# --- Storing in bulk ---------------------------------------------------------------------------


# --- The batch ---------------------------------------------------------------------------------


def batch_screen(
    *,
    member: Institution,
    subjects: list,
    api_key: ApiKey | None = None,
    request=None,
    now: datetime | None = None,
) -> BatchResult:
    """Screen subjects for post-loan monitoring. Raises BatchTooLarge (nothing stored) or
    QueryRefused for a suspended member; otherwise every subject gets a result."""
    now = now or timezone.now()
    limit = settings.PORTAL_BATCH_MAX_SUBJECTS
    if len(subjects) > limit:
        raise BatchTooLarge(limit)
    check_member_may_query(member, now=now)
    today = timezone.localdate(now)

    results: dict[int, SubjectResult] = {}
    valid: list[_Valid] = []
    first_seen: dict[str, int] = {}
    for index, item in enumerate(subjects):
        parsed = parse_subject(index, item)
        if isinstance(parsed, SubjectResult):
            results[index] = parsed
            continue
        parsed.id_index = id_index_for(parsed.id_type, parsed.id_number)
        if parsed.id_index in first_seen:
            # Screening one person twice in a batch would bill twice for nothing.
            results[index] = SubjectResult(
                index, "invalid", code="duplicate",
                message=format_lazy(
                    _("This subject is already at index {index} of this batch."),
                    index=first_seen[parsed.id_index],
                ),
            )
            continue
        first_seen[parsed.id_index] = index
        valid.append(parsed)

    with transaction.atomic():
        consent_ids = {s.consent_id for s in valid if s.consent_id is not None}
        consents = {
            c["pk"]: c
            for c in Consent.objects.filter(pk__in=consent_ids, member=member).values(
                "pk", "subject_id", "subject__id_index", "subject__name_index",
                "signed_on", "expires_on", "covers_post_loan",
            )
        } if consent_ids else {}

        accepted: list[tuple[_Valid, dict, bool]] = []
        refusals: Counter = Counter()
        for s in valid:
            consent = consents.get(s.consent_id)
            reason = _refusal(consent, s, today)
            if reason is not None:
                refusals[reason.value] += 1
                results[s.index] = SubjectResult(s.index, "refused", code=reason.value, message=reason.label)
                continue
            name_ok = consent["subject__name_index"] == name_index_for(s.name)
            accepted.append((s, consent, name_ok))

        # A name that does not match the subject on file shows nothing (as in query_run).
        shown_subjects = {c["subject_id"] for _s, c, name_ok in accepted if name_ok}
        entries_of: dict[int, list[dict]] = {}
        if shown_subjects:
            labels = snapshot_labels()
            for e in live_entries(shown_subjects):
                entries_of.setdefault(e.subject_id, []).append(_entry_snapshot(e, today, labels))
        ml = multi_lending_many(subject_indexes={s.id_index for s, _c, name_ok in accepted if name_ok}, now=now)

        snapshots = []
        for s, consent, name_ok in accepted:
            if not name_ok:
                # A wrong name for the ID shows nothing about the person, as in query_run.
                snapshots.append(_result(subject_id=None, index=s.id_index, name_ok=False, now=now))
                continue
            entries = entries_of.get(consent["subject_id"], [])
            grade, factors = risk.assess(entries=entries, multi_lending=ml[s.id_index])
            snapshots.append({
                "hit": bool(entries),
                "name_matches": True,
                "entries": entries,
                "multi_lending": ml[s.id_index],
                "risk": {"grade": grade, "factors": [f.__dict__ for f in factors]},
            })

        billable = sum(1 for _s, _c, name_ok in accepted if name_ok)
        month = today.replace(day=1)
        rules = rules_in_force(now) if billable else []
        sequence = take_sequences(member.pk, month, billable) if billable else 0

        numbers = new_numbers("Q", now, len(accepted))
        query_rows, fee_rows = [], []
        for number, (s, consent, name_ok), result in zip(numbers, accepted, snapshots, strict=True):
            rule, fee = None, Decimal("0.00")
            if name_ok:
                rule, fee = price_from_rules(
                    rules, channel=Channel.BATCH, purpose=Purpose.POST_LOAN, hit=result["hit"],
                    sequence=sequence,
                )
                fee_rows.append((len(query_rows), sequence, rule.pk if rule else None, fee))
                sequence += 1
            row = {
                "query_no": number, "kind": Query.Kind.MEMBER, "member_id": member.pk, "user_id": None,
                "api_key_id": api_key.pk if api_key else None, "channel": Channel.BATCH,
                "purpose": Purpose.POST_LOAN, "consent_id": consent["pk"], "id_type": s.id_type,
                "subject_index": s.id_index, "subject_id": consent["subject_id"],
                "id_masked": mask_id_number(s.id_number), "name_masked": mask_name(s.name),
                "name_matches": name_ok, "hit": result["hit"],
                "risk_grade": result["risk"]["grade"] if result["risk"] else "",
                "result": result, "fee": fee, "created_at": now,
                "application_amount": None, "application_loan_type": "", "application_date": None,
                "identity_check": "", "representative": "",
            }
            query_rows.append(row)
            results[s.index] = SubjectResult(s.index, "ok", row=row)

        columns = list(query_rows[0]) if query_rows else []
        ids = insert_rows(Query, columns, [tuple(r.values()) for r in query_rows], returning_ids=True)
        insert_rows(
            FeeLine, ["query_id", "member_id", "month", "sequence", "rule_id", "amount", "statement_id", "created_at"],
            [(ids[i], member.pk, month, seq, rule_id, amount, None, now) for i, seq, rule_id, amount in fee_rows],
        )  # fmt: skip

        fee = sum((row["fee"] for row in query_rows), Decimal("0.00"))
        ordered = [results[i] for i in range(len(subjects))]
        batch = BatchResult(results=ordered, fee=fee, queried_at=now)
        audit_record(
            actor=None, institution=member, action="query.batch", request=request, now=now,
            details={
                "api_key_id": api_key.pk if api_key else None,
                "total": len(subjects),
                "ok": batch.count("ok"),
                "refused": dict(refusals),
                "invalid": batch.count("invalid"),
                "billed": len(fee_rows),
                "fee": fee,
                "query_nos": [query_rows[0]["query_no"], query_rows[-1]["query_no"]] if query_rows else [],
            },
        )
    return batch
