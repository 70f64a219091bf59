"""Consent sampling audit (issue 8, item 7).

A regulator draws a random sample of one member's queries from the last D days and checks the
consent behind each one (the consent file opens through billing's permission-checked,
audit-logged download), recording a finding per query.

Reproducible: the candidates are the member's queries (kind "member") logged in
[drawn_at − D days, drawn_at), ordered by id; the query log is immutable, so that list never
changes. The sample is `random.Random(seed).sample(candidates, N)` with the stored seed, so
anyone can draw it again from (member, drawn_at, period_days, size, seed) and get the same
queries (`sample_redraw`).
"""

from __future__ import annotations

import datetime
import random
import secrets

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Query
from blacklist_portal.accounts.models import Institution, User
from blacklist_portal.audit.services import audit_record

from .models import ConsentSample, SampleItem

MAX_SIZE = 200
MAX_PERIOD_DAYS = 365


def sample_candidates(*, member_id: int, drawn_at: datetime.datetime, period_days: int) -> list[int]:
    return list(
        Query.objects.filter(
            member_id=member_id,
            kind=Query.Kind.MEMBER,
            created_at__gte=drawn_at - datetime.timedelta(days=period_days),
            created_at__lt=drawn_at,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def sample_pick(candidates: list[int], *, size: int, seed: str) -> list[int]:
    # Not for secrecy: a seeded generator is what makes the sample reproducible.
    rng = random.Random(seed)  # noqa: S311
    return sorted(rng.sample(candidates, min(size, len(candidates))))


def sample_redraw(sample: ConsentSample) -> list[int]:
    """The query ids the sample's stored parameters give; equal to its items' queries."""
    candidates = sample_candidates(
        member_id=sample.member_id, drawn_at=sample.drawn_at, period_days=sample.period_days
    )
    return sample_pick(candidates, size=sample.size, seed=sample.seed)


def _check_regulator(actor: User) -> None:
    if not actor.has_perm("accounts.supervise"):
        raise PermissionDenied


@transaction.atomic
def sample_draw(
    *,
    actor: User,
    member: Institution,
    size: int,
    period_days: int,
    seed: str | None = None,
    request=None,
    now: datetime.datetime | None = None,
) -> ConsentSample:
    now = now or timezone.now()
    _check_regulator(actor)
    if member.kind != Institution.Kind.LENDER:
        raise ValidationError({"member": _("Choose a member institution.")})
    if not 1 <= size <= MAX_SIZE:
        raise ValidationError({"size": _("The sample size must be between 1 and %(n)s.") % {"n": MAX_SIZE}})
    if not 1 <= period_days <= MAX_PERIOD_DAYS:
        raise ValidationError(
            {"period_days": _("The period must be between 1 and %(n)s days.") % {"n": MAX_PERIOD_DAYS}}
        )
    seed = seed or secrets.token_hex(16)
    candidates = sample_candidates(member_id=member.pk, drawn_at=now, period_days=period_days)
    if not candidates:
        raise ValidationError(_("This member made no queries in that period."))
    picked = sample_pick(candidates, size=size, seed=seed)
    sample = ConsentSample.objects.create(
        member=member, drawn_by=actor, drawn_at=now, period_days=period_days, size=size, seed=seed
    )
    SampleItem.objects.bulk_create([SampleItem(sample=sample, query_id=pk) for pk in picked])
    audit_record(
        actor=actor, action="consent_sample.draw", target=sample, institution=actor.institution,
        request=request, now=now,
        details={"member": member.pk, "size": size, "period_days": period_days,
                 "candidates": len(candidates), "drawn": len(picked)},
    )
    return sample


@transaction.atomic
def sample_item_record(
    *, actor: User, item: SampleItem, finding: str, note: str = "", request=None,
    now: datetime.datetime | None = None,
) -> SampleItem:
    """Record (or revise) the finding on one sampled query. The regulator's own record: no
    member data changes."""
    now = now or timezone.now()
    _check_regulator(actor)
    if finding not in SampleItem.Finding.values or finding == SampleItem.Finding.PENDING:
        raise ValidationError({"finding": _("Choose a finding.")})
    note = note.strip()
    if finding != SampleItem.Finding.OK and not note:
        raise ValidationError({"note": _("Describe the problem.")})
    item = SampleItem.objects.select_for_update().get(pk=item.pk)
    item.finding = finding
    item.note = note
    item.checked_at = now
    item.save(update_fields=["finding", "note", "checked_at"])
    audit_record(
        actor=actor, action="consent_sample.finding", target=item, request=request, now=now,
        details={"sample": item.sample_id, "query": item.query_id, "finding": finding},
    )
    return item


# --- Reading ----------------------------------------------------------------------------------


def access_sample(user: User, pk: int) -> ConsentSample:
    """Regulators only; anyone else gets a 404 (a sample names a member's queries)."""
    if not user.has_perm("accounts.supervise"):
        raise Http404
    sample = ConsentSample.objects.select_related("member", "drawn_by").filter(pk=pk).first()
    if sample is None:
        raise Http404
    return sample


def sample_summary(sample: ConsentSample) -> list[tuple[str, str, int]]:
    """(finding, label, count) for every finding, pending first."""
    counts = dict(
        SampleItem.objects.filter(sample=sample).order_by().values_list("finding")
        .annotate(n=Count("id"))
    )
    return [(value, str(label), counts.get(value, 0)) for value, label in SampleItem.Finding.choices]


def samples_with_summary(*, limit: int = 100) -> list[tuple[ConsentSample, dict[str, int]]]:
    """The latest samples, each with its counts per finding (two queries in all)."""
    samples = list(
        ConsentSample.objects.select_related("member", "drawn_by").order_by("-drawn_at", "-pk")[:limit]
    )
    counts: dict[int, dict[str, int]] = {s.pk: {} for s in samples}
    for sample_id, finding, n in (
        SampleItem.objects.filter(sample__in=samples).order_by().values_list("sample_id", "finding")
        .annotate(n=Count("id"))
    ):
        counts[sample_id][finding] = n
    return [(s, counts[s.pk]) for s in samples]
