"""Billing of member queries: the schedule in force at the query's time, the most specific rule,
volume tiers by the n-th billable query of the member's month (Asia/Shanghai), a fee line in
the query's own transaction, and never a fee for a refused query."""

import datetime
import hashlib
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from billing import services
from billing.choices import Channel
from billing.demo import DEMO_PRICES
from billing.models import Consent, FeeLine, MonthlyVolume, PriceRule, PriceSchedule, Query
from billing.services import Application, QueryRefused, QueryRequest
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.uploads import check_upload
from registry import services as registry
from registry.importing.rows import parse_row

SHANGHAI = ZoneInfo("Asia/Shanghai")
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ZHANG = ("11010519491231002X", "张三")  # has a live entry in tests that need a hit
LI = ("110101199003077571", "李四")  # never on the register
TODAY = timezone.localdate()


def sh(*args) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=SHANGHAI)


def schedule(rules, *, effective_from=None, name="价目") -> PriceSchedule:
    s = PriceSchedule.objects.create(name=name, effective_from=effective_from or sh(2020, 1, 1))
    for channel, purpose, hit, tier_from, price in rules:
        PriceRule.objects.create(
            schedule=s,
            channel=channel,
            purpose=purpose,
            hit=hit,
            tier_from=tier_from,
            price=Decimal(price),
        )
    return s


def consent_for(member, person) -> Consent:
    subject = registry.subject_get_or_create(
        subject_type="person", id_type="RIC", id_number=person[0], name=person[1]
    )
    return Consent.objects.create(
        member=member,
        subject=subject,
        signed_on=datetime.date(2025, 6, 1),
        expires_on=datetime.date(2099, 12, 31),
        covers_loan_approval=True,
        covers_post_loan=True,
        covers_guarantor_check=True,
        file="consents/test.pdf",
        kind="pdf",
        original_name="c.pdf",
        size=len(PDF),
        sha256=hashlib.sha256(PDF).hexdigest(),
    )


def ask(
    member, person=LI, purpose="post_loan", *, now, channel=Channel.WEB, name=None, consent=...
) -> Query:
    if consent is ...:
        consent = Consent.objects.filter(
            member=member, subject__id_index=registry.id_index_for("RIC", person[0])
        ).first()
        consent = consent or consent_for(member, person)
    application = None
    if purpose == "loan_approval":
        application = Application(
            amount=Decimal("3000"), loan_type="consumer", applied_on=now.date()
        )
    return services.query_run(
        member=member,
        channel=channel,
        now=now,
        req=QueryRequest(
            id_type="RIC",
            id_number=person[0],
            name=name or person[1],
            purpose=purpose,
            consent_id=consent.pk if consent else None,
            application=application,
        ),
    )


@pytest.fixture
def zhang_on_register(lender_staff, lender_a, review_officer):
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": ZHANG[0],
        "name": ZHANG[1],
        "role": "borrower",
        "contract_no": "HT-1",
        "category": "fraud",
        "loan_amount": "5000",
        "notified_on": (TODAY - datetime.timedelta(days=30)).isoformat(),
        "notice_method": "sms",
    }
    f = SimpleUploadedFile("e.pdf", PDF)
    entry, _ = registry.entry_report(
        actor=lender_staff,
        member=lender_a,
        row=parse_row(values, today=TODAY).data,
        evidence=[(f, check_upload(f))],
    )
    return registry.entry_approve(entry=entry, actor=review_officer)


@pytest.fixture
def tiers(db) -> PriceSchedule:
    return schedule([("", "", None, 1, "10.00"), ("", "", None, 3, "8.00")])


def lines(member) -> list[tuple[int, Decimal]]:
    return list(
        FeeLine.objects.filter(member=member)
        .order_by("created_at", "sequence")
        .values_list("sequence", "amount")
    )


# --- Which rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "purpose", "person", "expected"),
    [
        (Channel.WEB, "loan_approval", ZHANG, "12.00"),  # channel + purpose + hit
        (Channel.API, "loan_approval", ZHANG, "9.00"),  # purpose + hit beats the API channel alone
        (Channel.WEB, "loan_approval", LI, "7.00"),  # purpose only (the hit rule does not match)
        (Channel.API, "post_loan", LI, "6.00"),  # channel only
        (Channel.WEB, "guarantor_check", LI, "5.00"),  # the catch-all
    ],
    ids=["web-la-hit", "api-la-hit", "web-la-nohit", "api-postloan", "web-guarantor"],
)
def test_most_specific_matching_rule_wins(
    channel, purpose, person, expected, lender_a, zhang_on_register
):
    schedule(
        [
            ("", "", None, 1, "5.00"),
            ("", "loan_approval", None, 1, "7.00"),
            ("", "loan_approval", True, 1, "9.00"),
            (Channel.WEB, "loan_approval", True, 1, "12.00"),
            (Channel.API, "", None, 1, "6.00"),
        ]
    )

    query = ask(lender_a, person, purpose, channel=channel, now=sh(2026, 3, 10, 12))

    line = FeeLine.objects.get(query=query)
    assert query.fee == line.amount == Decimal(expected)
    assert line.rule.price == Decimal(expected)
    assert (line.member, line.month, line.sequence) == (lender_a, datetime.date(2026, 3, 1), 1)


def test_demo_price_list_prices_hits_no_hits_and_batch(lender_a, zhang_on_register):
    schedule(DEMO_PRICES)
    now = sh(2026, 3, 10, 12)

    hit = ask(lender_a, ZHANG, "loan_approval", now=now)
    no_hit = ask(lender_a, LI, "loan_approval", now=now)
    post_loan = ask(lender_a, LI, "post_loan", now=now)
    batch = ask(lender_a, LI, "post_loan", channel=Channel.BATCH, now=now)

    assert [q.fee for q in (hit, no_hit, post_loan, batch)] == [
        Decimal("10.00"),
        Decimal("5.00"),
        Decimal("5.00"),
        Decimal("1.00"),
    ]


def test_without_a_schedule_in_force_the_query_is_logged_with_a_zero_fee_line(lender_a):
    schedule([("", "", None, 1, "10.00")], effective_from=sh(2030, 1, 1))

    query = ask(lender_a, now=sh(2026, 3, 10, 12))

    assert query.fee == Decimal("0.00")
    assert FeeLine.objects.get(query=query).amount == Decimal("0.00")


# --- Tiers ---------------------------------------------------------------------------------------


def test_tiers_follow_the_members_monthly_sequence(lender_a, tiers):
    fees = [ask(lender_a, now=sh(2026, 3, 10, 9, minute)).fee for minute in range(4)]

    assert fees == [Decimal("10.00"), Decimal("10.00"), Decimal("8.00"), Decimal("8.00")]
    assert lines(lender_a) == [
        (1, Decimal("10.00")),
        (2, Decimal("10.00")),
        (3, Decimal("8.00")),
        (4, Decimal("8.00")),
    ]
    assert MonthlyVolume.objects.get(member=lender_a, month=datetime.date(2026, 3, 1)).count == 4


def test_demo_volume_tier_starts_at_the_1001st_billable_query(lender_a, zhang_on_register):
    schedule(DEMO_PRICES)
    MonthlyVolume.objects.create(member=lender_a, month=datetime.date(2026, 3, 1), count=999)

    fees = [ask(lender_a, ZHANG, "loan_approval", now=sh(2026, 3, 10, 12, m)).fee for m in range(2)]

    assert fees == [Decimal("10.00"), Decimal("8.00")]
    assert [s for s, _ in lines(lender_a)] == [1000, 1001]


def test_each_member_counts_its_own_month(lender_a, lender_b, tiers):
    for minute in range(3):
        ask(lender_a, now=sh(2026, 3, 10, 9, minute))

    theirs = ask(lender_b, now=sh(2026, 3, 10, 9, 5))

    assert theirs.fee == Decimal("10.00")
    assert lines(lender_b) == [(1, Decimal("10.00"))]


def test_the_month_boundary_in_shanghai_resets_the_sequence(lender_a, tiers):
    january = [
        ask(lender_a, now=sh(2026, 1, 31, hour, minute))
        for hour, minute in ((10, 0), (20, 0), (23, 30))
    ]
    # 00:10 on 1 February in Shanghai is still 31 January in UTC (16:10).
    february = ask(lender_a, now=sh(2026, 2, 1, 0, 10))

    assert [q.fee for q in january] == [Decimal("10.00"), Decimal("10.00"), Decimal("8.00")]
    assert february.fee == Decimal("10.00")
    line = FeeLine.objects.get(query=february)
    assert (line.month, line.sequence) == (datetime.date(2026, 2, 1), 1)
    assert FeeLine.objects.get(query=january[-1]).month == datetime.date(2026, 1, 1)


# --- Schedules over time ----------------------------------------------------------------------------


def test_a_new_schedule_applies_from_its_effective_time(lender_a):
    old = schedule([("", "", None, 1, "10.00")], name="2026 上半年")
    new = schedule([("", "", None, 1, "12.50")], effective_from=sh(2026, 6, 1), name="2026 下半年")

    before = ask(lender_a, now=sh(2026, 5, 31, 23, 59))
    after = ask(lender_a, now=sh(2026, 6, 1, 0, 0))
    later = ask(lender_a, now=sh(2026, 9, 1, 8, 0))

    assert [before.fee, after.fee, later.fee] == [
        Decimal("10.00"),
        Decimal("12.50"),
        Decimal("12.50"),
    ]
    assert FeeLine.objects.get(query=before).rule.schedule == old
    assert FeeLine.objects.get(query=after).rule.schedule == new
    # The old list is history, unchanged.
    assert list(old.rules.values_list("price", flat=True)) == [Decimal("10.00")]


# --- What is never billed ----------------------------------------------------------------------------


def test_refused_queries_are_never_billed_and_take_no_sequence_number(lender_a, lender_b, tiers):
    now = sh(2026, 3, 10, 12)
    first = ask(lender_a, now=now)
    with pytest.raises(QueryRefused):
        ask(lender_a, now=now, consent=None)
    with pytest.raises(QueryRefused):
        ask(lender_a, now=now, consent=consent_for(lender_b, LI))
    with pytest.raises(QueryRefused):
        ask(lender_a, ZHANG, now=now, consent=Consent.objects.get(member=lender_a))
    last = ask(lender_a, now=now)

    assert Query.objects.count() == 2
    assert lines(lender_a) == [(1, Decimal("10.00")), (2, Decimal("10.00"))]
    assert {line.query for line in FeeLine.objects.all()} == {first, last}
    assert AuditEvent.objects.filter(action="query.refused").count() == 3


def test_name_mismatch_is_not_billed_and_takes_no_sequence_number(lender_a, tiers):
    now = sh(2026, 3, 10, 12)
    ask(lender_a, now=now)
    mismatch = ask(lender_a, name="李五", now=now)
    ask(lender_a, now=now)

    assert mismatch.fee == Decimal("0.00")
    assert not FeeLine.objects.filter(query=mismatch).exists()
    assert lines(lender_a) == [(1, Decimal("10.00")), (2, Decimal("10.00"))]


def test_fee_line_is_written_in_the_querys_transaction(lender_a, tiers, monkeypatch):
    """If anything after billing fails (here the audit row), the query, its fee line and its
    volume number all roll back together."""
    real = services.audit_record

    def failing(**kwargs):
        if kwargs["action"] == "query.run":
            raise RuntimeError("audit store down")
        return real(**kwargs)

    monkeypatch.setattr(services, "audit_record", failing)
    with pytest.raises(RuntimeError):
        ask(lender_a, now=sh(2026, 3, 10, 12))
    monkeypatch.undo()

    assert Query.objects.count() == FeeLine.objects.count() == 0
    assert not MonthlyVolume.objects.filter(count__gt=0).exists()
    assert ask(lender_a, now=sh(2026, 3, 10, 12, 1)).fee_line.sequence == 1
