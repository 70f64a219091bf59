"""Consents, queries, fees and statements. A query is one transaction: the log row, its fee
line and its audit row commit together or not at all; a refused query writes no log row and
no fee (its refusal is audit-logged)."""

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.audit.services import audit_record
from blacklist_portal.sql import Names, fetch_all, placeholders
from blacklist_portal.uploads import CheckedUpload, store_private
from registry.choices import Category
from registry.identifiers import (
    mask_id_number,
    mask_name,
    subject_type_for,
)
from registry.models import Entry, Subject
from registry.services import id_index_for, name_index_for, subject_get_or_create

from . import risk
from .choices import Channel, Purpose, RefusalReason
from .models import (
    ApiKey,
    Consent,
    FeeLine,
    PriceRule,
    Query,
    Receipt,
    Statement,
)
from .pricing import price_from_rules, rules_in_force, take_sequences

WINDOWS = (7, 30, 90, 180, 365)
SELF_QUERIES_FREE_PER_YEAR = 2
WHO_QUERIED_ME_DAYS = 730


class QueryRefused(Exception):
    """A query that must not run. `code` is a RefusalReason (part of the API contract);
    `field` names the form field the message belongs next to."""

    def __init__(
        self, reason: RefusalReason, *, field: str | None = "consent", status: int = 403, message=None
    ):
        self.code = reason.value
        self.message = message or reason.label
        self.field = field
        self.status = status
        super().__init__(str(self.message))


@dataclass(frozen=True)
class Application:
    amount: Decimal
    loan_type: str
    applied_on: date


@dataclass(frozen=True)
class QueryRequest:
    id_type: str
    id_number: str  # normalised
    name: str  # normalised
    purpose: str
    consent_id: int | None
    application: Application | None = None
    representative: str = ""
    extra: dict = field(default_factory=dict)


def _shanghai_today(now: datetime) -> date:
    return timezone.localdate(now)


def _month_start(day: date) -> date:
    return day.replace(day=1)


_NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 letters: 5 random bits each


def new_numbers(prefix: str, now: datetime, n: int) -> list[str]:
    """n distinct numbers like Q20261204K7M2XQ9A: the Shanghai date and 8 random characters
    (40 bits from the system's CSPRNG: not guessable). Drawn in one go for a batch."""
    day = f"{prefix}{_shanghai_today(now):%Y%m%d}"
    numbers: dict[str, None] = {}
    while len(numbers) < n:
        raw = secrets.token_bytes(5 * (n - len(numbers)))
        for i in range(0, len(raw), 5):
            bits = int.from_bytes(raw[i : i + 5], "big")
            tail = "".join(_NUMBER_ALPHABET[(bits >> shift) & 31] for shift in range(35, -1, -5))
            numbers[day + tail] = None
    return list(numbers)


def new_number(prefix: str, now: datetime) -> str:
    """e.g. Q20261204K7M2XQ9A: the Shanghai date and 8 random characters (no guessing)."""
    return new_numbers(prefix, now, 1)[0]


# --- Consents ---------------------------------------------------------------------------------


@transaction.atomic
def consent_upload(
    *,
    actor: User,
    member: Institution,
    f,
    checked: CheckedUpload,
    id_type: str,
    id_number: str,
    name: str,
    purposes: list[str],
    signed_on: date,
    expires_on: date,
    channel: str = Channel.WEB,
    api_key: ApiKey | None = None,
    request=None,
    now: datetime | None = None,
) -> Consent:
    """Keep a borrower's signed authorisation. Through the API there is no person: pass the
    member's `api_key` (actor None); the audit row names the key."""
    now = now or timezone.now()
    if api_key is not None:
        if api_key.member_id != member.pk or member.kind != Institution.Kind.LENDER or not member.is_active:
            raise PermissionDenied
        actor = None
    elif not actor.has_perm("accounts.upload_consent"):
        raise PermissionDenied
    errors = {}
    if not purposes:
        errors["purposes"] = _("Choose at least one purpose the borrower agreed to.")
    if signed_on > _shanghai_today(now):
        errors["signed_on"] = _("The signing date cannot be in the future.")
    if expires_on < signed_on:
        errors["expires_on"] = _("The consent cannot expire before it was signed.")
    if errors:
        raise ValidationError(errors)
    subject = subject_get_or_create(
        subject_type=subject_type_for(id_type), id_type=id_type, id_number=id_number, name=name
    )
    consent = Consent.objects.create(
        member=member,
        subject=subject,
        signed_on=signed_on,
        expires_on=expires_on,
        covers_loan_approval=Purpose.LOAN_APPROVAL in purposes,
        covers_post_loan=Purpose.POST_LOAN in purposes,
        covers_guarantor_check=Purpose.GUARANTOR_CHECK in purposes,
        file=store_private(f, checked, folder="consents"),
        kind=checked.kind,
        original_name=checked.original_name,
        size=checked.size,
        sha256=checked.sha256,
        channel=channel,
        uploaded_by=actor,
    )
    audit_record(
        actor=actor, institution=member, action="consent.upload", target=consent, request=request,
        details={"sha256": checked.sha256, "purposes": purposes,
                 "api_key_id": api_key.pk if api_key is not None else None}, now=now,
    )
    return consent


def check_member_may_query(member: Institution, *, now: datetime) -> None:
    """A suspended institution, or one under a query suspension (a sanction), cannot query;
    the message says why and until when."""
    if not member.is_active:
        raise QueryRefused(RefusalReason.MEMBER_SUSPENDED, field=None)
    from supervision.enforcement import query_suspension

    suspension = query_suspension(member.pk, today=_shanghai_today(now))
    if suspension is not None:
        raise QueryRefused(
            RefusalReason.MEMBER_SUSPENDED,
            field=None,
            message=_("Your institution's query access is suspended until %(until)s: %(reason)s")
            % {"until": suspension.until.isoformat(), "reason": suspension.reason},
        )


def _check_consent(*, member: Institution, consent_id: int | None, index: str, purpose: str, today: date) -> Consent:
    """The member's consent for this subject and purpose, valid today, with its subject's
    blind indexes as `subject_index` and `subject_name_index`; else QueryRefused."""
    if consent_id is None:
        raise QueryRefused(RefusalReason.NO_CONSENT)
    c, s = Names(Consent), Names(Subject)
    consent = next(iter(Consent.objects.raw(
        f"SELECT {c.columns('c.')}, s.{s('id_index')} AS subject_index, s.{s('name_index')} AS subject_name_index "  # noqa: S608
        f"FROM {c.table} c JOIN {s.table} s ON s.{s('id')} = c.{c('subject')} "
        f"WHERE c.{c('id')} = %s AND c.{c('member')} = %s",
        [consent_id, member.pk],
    )), None)  # fmt: skip
    if consent is None:
        raise QueryRefused(RefusalReason.CONSENT_NOT_FOUND)
    if consent.subject_index != index:
        raise QueryRefused(RefusalReason.CONSENT_OTHER_SUBJECT)
    if consent.signed_on > today:
        raise QueryRefused(RefusalReason.CONSENT_NOT_YET)
    if consent.expires_on < today:
        raise QueryRefused(RefusalReason.CONSENT_EXPIRED)
    if not consent.covers(purpose):
        raise QueryRefused(RefusalReason.CONSENT_PURPOSE, field="purpose")
    return consent


# --- Query result -------------------------------------------------------------------------------


def multi_lending_many(*, subject_indexes, now: datetime) -> dict[str, dict]:
    """For each subject (by blind index): member queries other than post-loan monitoring, and
    how many institutions made them, per window. One statement for all of them, written out:
    ten filtered aggregates are the ORM's most expensive build of the query path
    (blacklist_portal/sql.py says why)."""
    indexes = list(dict.fromkeys(subject_indexes))
    if not indexes:
        return {}
    q = Names(Query)
    since, member, subject = q("created_at"), q("member"), q("subject_index")
    windows = ", ".join(
        f"SUM(CASE WHEN {since} >= %s THEN 1 ELSE 0 END), "
        f"COUNT(DISTINCT CASE WHEN {since} >= %s THEN {member} END)"
        for _days in WINDOWS
    )
    adapt = connection.ops.adapt_datetimefield_value
    params = [adapt(now - timedelta(days=days)) for days in WINDOWS for _twice in (1, 2)]
    params += [*indexes, Query.Kind.MEMBER, adapt(now - timedelta(days=max(WINDOWS))), Purpose.POST_LOAN]
    rows = fetch_all(
        f"SELECT {subject}, {windows} FROM {q.table} "  # noqa: S608 (names from the model)
        f"WHERE {subject} IN ({placeholders(indexes)}) AND {q('kind')} = %s AND {since} >= %s "
        f"AND {q('purpose')} <> %s GROUP BY {subject}",
        params,
    )
    found = {
        row[0]: {
            str(days): {"queries": row[1 + 2 * i] or 0, "institutions": row[2 + 2 * i] or 0}
            for i, days in enumerate(WINDOWS)
        }
        for row in rows
    }
    return {
        index: found.get(index) or {str(days): {"queries": 0, "institutions": 0} for days in WINDOWS}
        for index in indexes
    }


def multi_lending(*, subject_index: str, now: datetime) -> dict:
    """multi_lending_many for one subject."""
    return multi_lending_many(subject_indexes=[subject_index], now=now)[subject_index]


@lru_cache(maxsize=16)
def _labels_in(language: str) -> dict[str, dict[str, str]]:
    with translation.override(language):
        return {
            "category": {value: str(label) for value, label in Category.choices},
            "status": {value: str(label) for value, label in Entry.Status.choices},
        }


def snapshot_labels() -> dict[str, dict[str, str]]:
    """The category and status labels of the active language, for _entry_snapshot (looked up
    once: get_FOO_display costs too much in a batch of ten thousand)."""
    return _labels_in(translation.get_language() or settings.LANGUAGE_CODE)


def _entry_snapshot(entry: Entry, today: date, labels: dict[str, dict[str, str]]) -> dict:
    return {
        "id": entry.pk,
        "member": entry.member_name,
        "role": entry.subject_role,
        "category": entry.category,
        "category_label": labels["category"].get(entry.category, entry.category),
        "status": entry.status,
        "status_label": labels["status"].get(entry.status, entry.status),
        "loan_amount": str(entry.loan_amount),
        "overdue_amount": None if entry.overdue_amount is None else str(entry.overdue_amount),
        "delinquent_since": entry.delinquent_since.isoformat() if entry.delinquent_since else None,
        "dpd_band": entry.dpd_band(today),
        "court_name": entry.court_name,
        "case_number": entry.case_number,
        "judgment_date": entry.judgment_date.isoformat() if entry.judgment_date else None,
        "settled_on": entry.settled_on.isoformat() if entry.settled_on else None,
        "reported_on": timezone.localdate(entry.reviewed_at or entry.submitted_at).isoformat(),
        "disputed": entry.disputed,
        "subject_statement": entry.subject_statement,
    }


def live_entries(subject_ids) -> list[Entry]:
    """The entries a query shows for these subjects (visible ones, newest first), each with its
    reporting member's name as `member_name`. One statement, written out: it runs in every
    query (blacklist_portal/sql.py says why)."""
    ids, statuses = list(subject_ids), list(Entry.VISIBLE)
    if not ids:
        return []
    e, m = Names(Entry), Names(Institution)
    return list(Entry.objects.raw(
        f"SELECT {e.columns('e.')}, m.{m('name')} AS member_name FROM {e.table} e "  # noqa: S608
        f"JOIN {m.table} m ON m.{m('id')} = e.{e('member')} "
        f"WHERE e.{e('subject')} IN ({placeholders(ids)}) AND e.{e('status')} IN ({placeholders(statuses)}) "
        f"ORDER BY e.{e('submitted_at')} DESC",
        ids + statuses,
    ))  # fmt: skip


def _result(*, subject_id: int | None, index: str, name_ok: bool | None, now: datetime) -> dict:
    if name_ok is False:
        # Wrong name for this ID: nothing about the person is shown (not even query activity).
        return {"hit": False, "name_matches": False, "entries": [], "multi_lending": None, "risk": None}
    today = _shanghai_today(now)
    entries = []
    if subject_id is not None:
        labels = snapshot_labels()
        entries = [_entry_snapshot(e, today, labels) for e in live_entries([subject_id])]
    ml = multi_lending(subject_index=index, now=now)
    grade, factors = risk.assess(entries=entries, multi_lending=ml)
    return {
        "hit": bool(entries),
        "name_matches": name_ok,
        "entries": entries,
        "multi_lending": ml,
        "risk": {"grade": grade, "factors": [f.__dict__ for f in factors]},
    }


# --- Billing ----------------------------------------------------------------------------------


def fee_price(
    *, member: Institution, channel: str, purpose: str, hit: bool, now: datetime,
    rules: list[PriceRule] | None = None,
) -> tuple[int, PriceRule | None, Decimal]:
    """(n-th billable query of the member's month, rule, amount) by the schedule in force.
    Takes the month's count, which stays locked until commit: call it just before the writes,
    with the rules fetched beforehand."""
    rules = rules_in_force(now) if rules is None else rules
    sequence = take_sequences(member.pk, _month_start(_shanghai_today(now)))
    rule, amount = price_from_rules(rules, channel=channel, purpose=purpose, hit=hit, sequence=sequence)
    return sequence, rule, amount


def fee_line_create(*, query: Query, sequence: int, rule: PriceRule | None, now: datetime) -> FeeLine:
    return FeeLine.objects.create(
        query=query, member=query.member, month=_month_start(_shanghai_today(now)), sequence=sequence,
        rule=rule, amount=query.fee, created_at=now,
    )


# --- Queries ----------------------------------------------------------------------------------


def query_run(
    *,
    member: Institution,
    channel: str,
    req: QueryRequest,
    user: User | None = None,
    api_key: ApiKey | None = None,
    request=None,
    now: datetime | None = None,
) -> Query:
    """Run a member query: consent checked, result built, logged, billed, audited."""
    now = now or timezone.now()
    actor = user
    if user is not None and not (user.has_perm("accounts.query_register") or user.has_perm("accounts.serve_counter")):
        raise PermissionDenied
    index = id_index_for(req.id_type, req.id_number)
    try:
        check_member_may_query(member, now=now)
        if req.purpose not in (Purpose.LOAN_APPROVAL, Purpose.POST_LOAN, Purpose.GUARANTOR_CHECK):
            raise QueryRefused(RefusalReason.CONSENT_PURPOSE, field="purpose")
        with transaction.atomic():
            consent = _check_consent(
                member=member, consent_id=req.consent_id, index=index, purpose=req.purpose,
                today=_shanghai_today(now),
            )
            name_ok = consent.subject_name_index == name_index_for(req.name)
            result = _result(subject_id=consent.subject_id, index=index, name_ok=name_ok, now=now)
            rules = rules_in_force(now) if name_ok else []
            query = Query(
                query_no=new_number("Q", now),
                kind=Query.Kind.MEMBER,
                member=member,
                user=user,
                api_key=api_key,
                channel=channel,
                purpose=req.purpose,
                consent=consent,
                id_type=req.id_type,
                subject_index=index,
                subject_id=consent.subject_id,
                id_masked=mask_id_number(req.id_number),
                name_masked=mask_name(req.name),
                name_matches=name_ok,
                application_amount=req.application.amount if req.application else None,
                application_loan_type=req.application.loan_type if req.application else "",
                application_date=req.application.applied_on if req.application else None,
                representative=req.representative,
                hit=result["hit"],
                risk_grade=result["risk"]["grade"] if result["risk"] else "",
                result=result,
                created_at=now,
            )
            # A query whose name does not match the ID on file shows nothing and costs nothing.
            if name_ok:
                sequence, rule, query.fee = fee_price(
                    member=member, channel=channel, purpose=req.purpose, hit=query.hit, now=now,
                    rules=rules,
                )
            query.save(force_insert=True)
            if name_ok:
                fee_line_create(query=query, sequence=sequence, rule=rule, now=now)
            audit_record(
                actor=actor, institution=member, action="query.run", target=query, request=request, now=now,
                details={"channel": channel, "purpose": req.purpose, "hit": query.hit,
                         "api_key_id": api_key.pk if api_key else None},
            )
            return query
    except QueryRefused as refused:
        audit_record(
            actor=actor, institution=member, action="query.refused", request=request, now=now,
            details={"reason": refused.code, "channel": channel, "purpose": req.purpose,
                     "api_key_id": api_key.pk if api_key else None},
        )
        raise


def self_query_count_this_year(*, subject_index: str, now: datetime) -> int:
    today = _shanghai_today(now)
    start = datetime(today.year, 1, 1, tzinfo=timezone.get_current_timezone())
    return Query.objects.filter(kind=Query.Kind.SELF, subject_index=subject_index, created_at__gte=start, created_at__lte=now).count()


def who_queried(*, subject_index: str, now: datetime) -> list[dict]:
    """Member queries about the subject in the last two years: when, who, why."""
    rows = (
        Query.objects.filter(
            subject_index=subject_index, kind=Query.Kind.MEMBER,
            created_at__gte=now - timedelta(days=WHO_QUERIED_ME_DAYS),
        )
        .select_related("member")
        .order_by("-created_at")
    )
    return [
        {"at": timezone.localtime(q.created_at).strftime("%Y-%m-%d %H:%M"), "member": q.member.name,
         "purpose": str(q.get_purpose_display()), "channel": str(q.get_channel_display())}
        for q in rows
    ]


def self_query_run(
    *, clerk: User, id_type: str, id_number: str, name: str, identity_check: str, request=None,
    now: datetime | None = None,
) -> Query:
    """A walk-in borrower's own report at the counter, after the clerk checked the ID card in
    person. Two free per calendar year (Asia/Shanghai), then the counter price, paid in cash."""
    now = now or timezone.now()
    if not clerk.has_perm("accounts.serve_counter"):
        raise PermissionDenied
    if not identity_check.strip():
        raise QueryRefused(RefusalReason.ID_NOT_CHECKED, field="identity_check", status=400)
    index = id_index_for(id_type, id_number)
    with transaction.atomic():
        subject = Subject.objects.filter(id_index=index).first()
        if subject is not None:
            # Serialise self-queries about one person so two at once can't both be "free".
            Subject.objects.select_for_update().filter(pk=subject.pk).first()
        name_ok = None if subject is None else subject.name_index == name_index_for(name)
        if name_ok is False:
            raise ValidationError({"name": _("The name does not match the ID number on file. Check the ID card.")})
        used = self_query_count_this_year(subject_index=index, now=now)
        result = _result(subject_id=subject.pk if subject else None, index=index, name_ok=name_ok, now=now)
        result["who_queried"] = who_queried(subject_index=index, now=now)
        result["free_used_before"] = used
        fee = Decimal("0.00")
        if used >= SELF_QUERIES_FREE_PER_YEAR:
            _rule, fee = price_from_rules(
                rules_in_force(now), channel=Channel.COUNTER, purpose=Purpose.SELF, hit=result["hit"], sequence=1
            )
        query = Query(
            query_no=new_number("S", now), kind=Query.Kind.SELF, member=clerk.institution, user=clerk,
            channel=Channel.COUNTER, purpose=Purpose.SELF, id_type=id_type, subject_index=index,
            subject=subject, id_masked=mask_id_number(id_number), name_masked=mask_name(name),
            name_matches=name_ok, identity_check=identity_check.strip()[:200], hit=result["hit"],
            risk_grade=result["risk"]["grade"], result=result, fee=fee, created_at=now,
        )
        query.save(force_insert=True)
        if fee > 0:
            Receipt.objects.create(
                receipt_no=new_number("R", now), query=query, amount=fee,
                payer_masked=mask_name(name), clerk=clerk, created_at=now,
            )
        audit_record(actor=clerk, action="query.self", target=query, request=request, now=now,
                     details={"fee": fee, "free_used_before": used})
        return query


# --- Statements -----------------------------------------------------------------------------


@transaction.atomic
def statement_generate(*, member: Institution, month: date, now: datetime | None = None) -> Statement:
    """The member's statement of a month: every fee line of the month, totalled. Generating it
    again (on demand, or the task running twice) recounts the same lines; a paid statement is
    never changed."""
    now = now or timezone.now()
    month = _month_start(month)
    statement, _created = Statement.objects.select_for_update().get_or_create(
        member=member, month=month, defaults={"generated_at": now}
    )
    if statement.status == Statement.Status.PAID:
        return statement
    lines = FeeLine.objects.filter(member=member, month=month)
    lines.update(statement=statement)
    totals = lines.aggregate(total=Sum("amount"), n=Count("pk"))
    statement.total = totals["total"] or Decimal("0.00")
    statement.line_count = totals["n"]
    statement.generated_at = now
    statement.save()
    audit_record(actor=None, institution=member, action="statement.generate", target=statement, now=now,
                 details={"month": month.isoformat(), "total": statement.total})
    return statement


def statements_generate_for_month(*, month: date, now: datetime | None = None) -> int:
    members = Institution.objects.filter(
        pk__in=FeeLine.objects.filter(month=_month_start(month)).values("member")
    )
    n = 0
    for member in members:
        statement_generate(member=member, month=month, now=now)
        n += 1
    return n


@transaction.atomic
def statement_mark_paid(*, statement: Statement, actor: User, request=None) -> Statement:
    if not actor.has_perm("accounts.manage_prices"):
        raise PermissionDenied
    statement = Statement.objects.select_for_update().get(pk=statement.pk)
    if statement.status == Statement.Status.PAID:
        return statement
    statement.status = Statement.Status.PAID
    statement.paid_at = timezone.now()
    statement.save(update_fields=["status", "paid_at"])
    audit_record(actor=actor, institution=statement.member, action="statement.paid", target=statement, request=request)
    return statement


# --- API keys ---------------------------------------------------------------------------------


def _hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def apikey_create(*, actor: User, name: str, request=None) -> tuple[ApiKey, str]:
    """Returns the key object and the raw key, which is shown once and never stored."""
    if not actor.has_perm("accounts.manage_api_keys"):
        raise PermissionDenied
    prefix = secrets.token_hex(4)
    raw = f"bl_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        member=actor.institution, name=name.strip() or "API", prefix=prefix, key_hash=_hash_key(raw), created_by=actor
    )
    audit_record(actor=actor, action="apikey.create", target=key, request=request)
    return key, raw


@transaction.atomic
def apikey_revoke(*, actor: User, key: ApiKey, request=None) -> ApiKey:
    if not actor.has_perm("accounts.manage_api_keys") or key.member_id != actor.institution_id:
        raise PermissionDenied
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="apikey.revoke", target=key, request=request)
    return key


def apikey_authenticate(raw: str) -> ApiKey | None:
    """The active key for a raw bearer token, or None. Constant-time comparison of hashes."""
    parts = raw.split("_", 2)  # the random tail may itself contain "_"
    if len(parts) != 3 or parts[0] != "bl":
        return None
    key = ApiKey.objects.select_related("member").filter(prefix=parts[1], revoked_at__isnull=True).first()
    if key is None or not secrets.compare_digest(key.key_hash, _hash_key(raw)):
        return None
    return key


