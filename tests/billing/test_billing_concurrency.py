"""Exactly-once billing under concurrency (PostgreSQL): simultaneous queries of one member take
consecutive monthly sequence numbers (no gap, no repeat, the right tier for each), and one query
can never get two fee lines."""

import datetime
import hashlib
import threading
import time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import IntegrityError, connection, connections, transaction

from billing import services
from billing.choices import Channel
from billing.models import Consent, FeeLine, MonthlyVolume, PriceRule, PriceSchedule, Query
from billing.services import QueryRequest
from blacklist_portal.accounts.models import Institution
from registry import services as registry

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL: SQLite serialises every writer, so there is no concurrency to test",
    ),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=SHANGHAI)
MARCH = datetime.date(2026, 3, 1)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ZHANG = ("11010519491231002X", "张三")
THREADS = 8
TIERS = {1: Decimal("10.00"), 3: Decimal("8.00"), 6: Decimal("5.00")}


def expected_price(sequence: int) -> Decimal:
    return TIERS[max(t for t in TIERS if t <= sequence)]


@pytest.fixture
def setup():
    member = Institution.objects.create(
        name="甲小额贷款有限公司", kind="lender", region="北京市", uscc="91110105MA0TESTA1X"
    )
    schedule = PriceSchedule.objects.create(
        name="价目", effective_from=datetime.datetime(2020, 1, 1, tzinfo=SHANGHAI)
    )
    for tier_from, price in TIERS.items():
        PriceRule.objects.create(schedule=schedule, tier_from=tier_from, price=price)
    subject = registry.subject_get_or_create(
        subject_type="person", id_type="RIC", id_number=ZHANG[0], name=ZHANG[1]
    )
    consent = Consent.objects.create(
        member=member,
        subject=subject,
        signed_on=datetime.date(2026, 1, 1),
        expires_on=datetime.date(2027, 1, 1),
        covers_post_loan=True,
        file="consents/t.pdf",
        kind="pdf",
        original_name="c.pdf",
        size=len(PDF),
        sha256=hashlib.sha256(PDF).hexdigest(),
    )
    return member, consent


def in_threads(n: int, work) -> list[Exception]:
    """Run work(i) in n threads released at once; each thread closes its own connection."""
    start = threading.Barrier(n)
    errors: list[Exception] = []

    def target(i):
        try:
            start.wait(timeout=10)
            work(i)
        except Exception as exc:  # collected and checked in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    return errors


def test_simultaneous_queries_take_consecutive_sequences_with_the_right_tier_prices(setup):
    member, consent = setup
    req = QueryRequest(
        id_type="RIC", id_number=ZHANG[0], name=ZHANG[1], purpose="post_loan", consent_id=consent.pk
    )

    errors = in_threads(
        THREADS, lambda i: services.query_run(member=member, channel=Channel.API, req=req, now=NOW)
    )

    assert errors == []
    assert Query.objects.count() == THREADS
    lines = list(FeeLine.objects.filter(member=member, month=MARCH).order_by("sequence"))
    assert len(lines) == THREADS
    assert [line.sequence for line in lines] == list(range(1, THREADS + 1))
    assert [line.amount for line in lines] == [expected_price(s) for s in range(1, THREADS + 1)]
    assert all(line.query.fee == line.amount for line in lines)
    assert len({line.query_id for line in lines}) == THREADS
    assert MonthlyVolume.objects.get(member=member, month=MARCH).count == THREADS
    # 10 + 10 + 8 + 8 + 8 + 5 + 5 + 5
    assert sum(line.amount for line in lines) == Decimal("59.00")


def test_two_threads_billing_the_same_query_create_one_fee_line(setup):
    member, consent = setup
    # A name mismatch is logged without a fee line: a query still to be billed.
    query = services.query_run(
        member=member,
        channel=Channel.API,
        now=NOW,
        req=QueryRequest(
            id_type="RIC",
            id_number=ZHANG[0],
            name="张四",
            purpose="post_loan",
            consent_id=consent.pk,
        ),
    )
    assert not FeeLine.objects.filter(query=query).exists()

    def bill(i):
        with transaction.atomic():
            sequence, rule, _amount = services.fee_price(
                member=member, channel=Channel.API, purpose="post_loan", hit=False, now=NOW
            )
            services.fee_line_create(query=query, sequence=sequence, rule=rule, now=NOW)

    errors = in_threads(2, bill)

    assert FeeLine.objects.filter(query=query).count() == 1
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
    # The loser's transaction rolled back whole: its sequence number was not used up.
    assert FeeLine.objects.get(query=query).sequence == 1
    assert MonthlyVolume.objects.get(member=member, month=MARCH).count == 1


def test_the_one_to_one_key_alone_stops_a_second_fee_line_for_a_query(setup):
    """Even without the volume lock in between: two inserts for one query at the same time,
    with different sequence numbers; the second waits for the first to commit, then fails."""
    member, consent = setup
    query = services.query_run(
        member=member,
        channel=Channel.API,
        now=NOW,
        req=QueryRequest(
            id_type="RIC",
            id_number=ZHANG[0],
            name="张四",
            purpose="post_loan",
            consent_id=consent.pk,
        ),
    )

    def insert(i):
        with transaction.atomic():
            FeeLine.objects.create(
                query=query,
                member=member,
                month=MARCH,
                sequence=100 + i,
                amount=Decimal("1.00"),
                created_at=NOW,
            )
            time.sleep(0.3)  # hold the row uncommitted while the other thread inserts

    errors = in_threads(2, insert)

    assert FeeLine.objects.filter(query=query).count() == 1
    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
