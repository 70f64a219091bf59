"""The query service: consent checks and refusals, the result (visible entries only, 存在异议,
the subject's statement, days-past-due band), multi-lending indicators, the risk grade, the
immutable log and a fixed number of SQL statements per query."""

import datetime
import hashlib
import itertools
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from stdnum.cn import ric as stdnum_ric

from billing import services
from billing.choices import Channel, Purpose, RefusalReason
from billing.models import Consent, FeeLine, MonthlyVolume, PriceRule, PriceSchedule, Query
from billing.services import Application, QueryRefused, QueryRequest
from blacklist_portal.accounts.models import Institution
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.uploads import check_upload
from registry import services as registry
from registry.importing.rows import parse_row
from registry.models import Entry
from registry.services import id_index_for

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ZHANG = ("11010519491231002X", "张三")
LI = ("110101199003077571", "李四")
WANG = ("310101198507150018", "王五")
NOW = timezone.now()
TODAY = timezone.localdate(NOW)


def days(n: int) -> datetime.timedelta:
    return datetime.timedelta(days=n)


def ric(n: int) -> str:
    body = f"11010519800101{n:03d}"
    return body + stdnum_ric.calc_check_digit(body + "0")


def consent_for(
    member,
    person=ZHANG,
    purposes=("loan_approval", "post_loan", "guarantor_check"),
    signed_on=None,
    expires_on=None,
) -> Consent:
    """A consent row as the upload service would leave it (the upload itself is tested in
    test_consents.py); dates default to valid for a year around today."""
    subject = registry.subject_get_or_create(
        subject_type="person", id_type="RIC", id_number=person[0], name=person[1]
    )
    return Consent.objects.create(
        member=member,
        subject=subject,
        signed_on=signed_on or TODAY - days(10),
        expires_on=expires_on or TODAY + days(355),
        covers_loan_approval="loan_approval" in purposes,
        covers_post_loan="post_loan" in purposes,
        covers_guarantor_check="guarantor_check" in purposes,
        file="consents/test.pdf",
        kind="pdf",
        original_name="c.pdf",
        size=len(PDF),
        sha256=hashlib.sha256(PDF).hexdigest(),
    )


def ask(
    member,
    consent,
    person=ZHANG,
    purpose="post_loan",
    *,
    user=None,
    now=None,
    channel=Channel.WEB,
    consent_id="same",
) -> Query:
    application = None
    if purpose == Purpose.LOAN_APPROVAL:
        application = Application(amount=Decimal("5000.00"), loan_type="consumer", applied_on=TODAY)
    req = QueryRequest(
        id_type="RIC",
        id_number=person[0],
        name=person[1],
        purpose=purpose,
        consent_id=(consent.pk if consent else None) if consent_id == "same" else consent_id,
        application=application,
    )
    return services.query_run(member=member, channel=channel, req=req, user=user, now=now or NOW)


def report(actor, member, person=ZHANG, contract="HT-1", category="overdue", **overrides) -> Entry:
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": person[0],
        "name": person[1],
        "role": "borrower",
        "contract_no": contract,
        "category": category,
        "loan_amount": "10000.00",
        "notified_on": (TODAY - days(300)).isoformat(),
        "notice_method": "letter",
    }
    if category in ("overdue", "malicious_default", "guarantor_default"):
        values["overdue_amount"] = "2000.00"
    if category in ("overdue", "malicious_default"):
        values["delinquent_since"] = (TODAY - days(400)).isoformat()
    if category == "court_judgment":
        values.update(
            court_name="北京市东城区人民法院",
            case_number="(2025)京0101民初1234号",
            judgment_date=(TODAY - days(200)).isoformat(),
        )
    values.update(overrides)
    parsed = parse_row(values, today=TODAY)
    assert parsed.ok, parsed.errors
    f = SimpleUploadedFile("evidence.pdf", PDF)
    entry, _ = registry.entry_report(
        actor=actor, member=member, row=parsed.data, evidence=[(f, check_upload(f))]
    )
    return entry


def live(actor, member, officer, **kwargs) -> Entry:
    return registry.entry_approve(entry=report(actor, member, **kwargs), actor=officer)


_numbers = itertools.count(1)


def past_query(
    member,
    person=ZHANG,
    *,
    ago: datetime.timedelta,
    purpose="loan_approval",
    kind=Query.Kind.MEMBER,
) -> Query:
    """A log row made earlier (created directly: the log is insert-only)."""
    return Query.objects.create(
        query_no=f"QTEST{next(_numbers):010d}",
        kind=kind,
        member=member,
        channel=Channel.WEB,
        purpose=purpose,
        id_type="RIC",
        subject_index=id_index_for("RIC", person[0]),
        id_masked="x",
        name_masked="x",
        hit=False,
        created_at=NOW - ago,
    )


@pytest.fixture
def prices(db):
    schedule = PriceSchedule.objects.create(
        name="test", effective_from=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    )
    PriceRule.objects.create(schedule=schedule, tier_from=1, price=Decimal("10.00"))
    return schedule


def refusals(member):
    return AuditEvent.objects.filter(action="query.refused", institution=member)


# --- Refusals -------------------------------------------------------------------------------------


def _no_consent(a, b):
    return None, "post_loan", {}


def _other_members_consent(a, b):
    return consent_for(b), "post_loan", {}


def _expired(a, b):
    return consent_for(a, signed_on=TODAY - days(400), expires_on=TODAY - days(1)), "post_loan", {}


def _not_yet_valid(a, b):
    return consent_for(a, signed_on=TODAY + days(1), expires_on=TODAY + days(300)), "post_loan", {}


def _other_subject(a, b):
    return consent_for(a, person=LI), "post_loan", {}


def _purpose_not_covered(a, b):
    return consent_for(a, purposes=("post_loan",)), "loan_approval", {}


def _suspended(a, b):
    consent = consent_for(a)
    Institution.objects.filter(pk=a.pk).update(status=Institution.Status.SUSPENDED)
    a.refresh_from_db()
    return consent, "post_loan", {}


REFUSALS = [
    (_no_consent, RefusalReason.NO_CONSENT, "consent"),
    (_other_members_consent, RefusalReason.CONSENT_NOT_FOUND, "consent"),
    (_expired, RefusalReason.CONSENT_EXPIRED, "consent"),
    (_not_yet_valid, RefusalReason.CONSENT_NOT_YET, "consent"),
    (_other_subject, RefusalReason.CONSENT_OTHER_SUBJECT, "consent"),
    (_purpose_not_covered, RefusalReason.CONSENT_PURPOSE, "purpose"),
    (_suspended, RefusalReason.MEMBER_SUSPENDED, None),
]


@pytest.mark.parametrize(
    ("setup", "reason", "field"), REFUSALS, ids=[r.value for _, r, _ in REFUSALS]
)
def test_refused_query_is_not_logged_not_billed_and_its_reason_is_audited(
    setup, reason, field, lender_staff, lender_a, lender_b, prices
):
    consent, purpose, _ = setup(lender_a, lender_b)

    with pytest.raises(QueryRefused) as refused:
        ask(lender_a, consent, purpose=purpose, user=lender_staff)

    assert (refused.value.code, refused.value.field) == (reason.value, field)
    assert str(refused.value.message) == str(reason.label)
    assert Query.objects.count() == 0
    assert FeeLine.objects.count() == 0
    # Not even a volume number is taken: the next billable query is still the 1st of the month.
    assert not MonthlyVolume.objects.filter(count__gt=0).exists()
    event = refusals(lender_a).get()
    assert event.actor == lender_staff
    assert event.details["reason"] == reason.value
    assert event.details["purpose"] == purpose


def test_refusal_through_the_api_names_the_key_in_the_audit_row(lender_a, lender_admin):
    key, _raw = services.apikey_create(actor=lender_admin, name="LOS")

    with pytest.raises(QueryRefused):
        services.query_run(
            member=lender_a,
            channel=Channel.API,
            api_key=key,
            req=QueryRequest(
                id_type="RIC",
                id_number=ZHANG[0],
                name=ZHANG[1],
                purpose="post_loan",
                consent_id=None,
            ),
        )

    event = refusals(lender_a).get()
    assert (event.details["reason"], event.details["channel"], event.details["api_key_id"]) == (
        "consent_missing",
        "api",
        key.pk,
    )


def test_self_query_is_not_a_member_purpose(lender_a, prices):
    consent = consent_for(lender_a)

    with pytest.raises(QueryRefused) as refused:
        ask(lender_a, consent, purpose=Purpose.SELF)

    assert refused.value.code == RefusalReason.CONSENT_PURPOSE.value
    assert Query.objects.count() == FeeLine.objects.count() == 0


def test_consent_is_valid_on_its_signing_day_and_on_its_expiry_day(lender_a, prices):
    consent = consent_for(lender_a, signed_on=TODAY, expires_on=TODAY)

    query = ask(lender_a, consent)

    assert query.consent == consent


def test_consent_is_reused_by_the_same_member_for_each_purpose_it_covers(
    lender_a, lender_staff, prices
):
    consent = consent_for(lender_a, purposes=("loan_approval", "guarantor_check"))

    first = ask(lender_a, consent, purpose="loan_approval", user=lender_staff)
    second = ask(lender_a, consent, purpose="guarantor_check", user=lender_staff)

    assert first.consent == second.consent == consent
    assert FeeLine.objects.count() == 2


# --- What the log records -----------------------------------------------------------------------


def test_query_log_row_records_who_how_why_and_what_was_returned(lender_a, lender_staff, prices):
    consent = consent_for(lender_a)

    query = ask(lender_a, consent, purpose="loan_approval", user=lender_staff)

    query.refresh_from_db()
    assert query.query_no.startswith(f"Q{TODAY:%Y%m%d}") and len(query.query_no) == 17
    assert (query.member, query.user, query.channel, query.purpose, query.consent) == (
        lender_a,
        lender_staff,
        "web",
        "loan_approval",
        consent,
    )
    assert (query.application_amount, query.application_loan_type, query.application_date) == (
        Decimal("5000.00"),
        "consumer",
        TODAY,
    )
    assert query.created_at == NOW
    assert query.result["hit"] is False and query.hit is False
    assert query.fee == Decimal("10.00")
    # Identifiers are kept only as the blind index and masked copies.
    row = Query.objects.filter(pk=query.pk).values().get()
    assert not any(ZHANG[0] in str(v) or ZHANG[1] in str(v) for v in row.values())
    assert query.subject_index == id_index_for("RIC", ZHANG[0])
    event = AuditEvent.objects.get(action="query.run")
    assert (event.actor, event.institution, event.target_id) == (
        lender_staff,
        lender_a,
        str(query.pk),
    )


def test_name_mismatch_shows_nothing_and_costs_nothing(
    lender_a, lender_staff, review_officer, prices
):
    live(lender_staff, lender_a, review_officer)
    consent = consent_for(lender_a)

    query = ask(lender_a, consent, person=(ZHANG[0], "张四"))

    assert query.name_matches is False
    assert query.result["name_matches"] is False
    assert query.result["entries"] == []
    assert query.hit is False
    assert query.fee == Decimal("0.00")
    assert not FeeLine.objects.exists()
    # The query is still logged (someone looked), but it took no billing number.
    assert Query.objects.get() == query
    assert not MonthlyVolume.objects.filter(count__gt=0).exists()


# --- The result ---------------------------------------------------------------------------------


def test_hit_lists_only_visible_entries_with_dispute_flag_statement_and_dpd_band(
    lender_staff, lender_a, review_officer, counter_clerk, prices
):
    active = live(lender_staff, lender_a, review_officer, contract="HT-ACTIVE")
    recent = live(
        lender_staff,
        lender_a,
        review_officer,
        contract="HT-RECENT",
        delinquent_since=(TODAY - days(45)).isoformat(),
    )
    settled = registry.entry_settle(
        entry=live(lender_staff, lender_a, review_officer, contract="HT-SETTLED"),
        actor=lender_staff,
        settled_on=TODAY - days(10),
    )
    report(lender_staff, lender_a, contract="HT-PENDING")
    registry.entry_return(
        entry=report(lender_staff, lender_a, contract="HT-RETURNED"),
        actor=review_officer,
        reason="缺少证据",
    )
    registry.entry_revoke(
        entry=live(lender_staff, lender_a, review_officer, contract="HT-REVOKED"),
        actor=lender_staff,
        reason="误报",
    )
    expired = live(lender_staff, lender_a, review_officer, contract="HT-EXPIRED")
    Entry.objects.filter(pk=expired.pk).update(status=Entry.Status.EXPIRED)
    Entry.objects.filter(pk=active.pk).update(disputed=True)
    registry.entry_set_statement(
        entry=active, actor=counter_clerk, statement="该笔借款已与贷款人协商分期偿还"
    )
    live(lender_staff, lender_a, review_officer, person=LI, contract="HT-OTHER-PERSON")

    query = ask(lender_a, consent_for(lender_a))

    shown = {e["id"]: e for e in query.result["entries"]}
    assert set(shown) == {active.pk, recent.pk, settled.pk}
    assert query.hit is True and query.result["hit"] is True
    assert shown[active.pk]["disputed"] is True
    assert shown[recent.pk]["disputed"] is False and shown[settled.pk]["disputed"] is False
    assert shown[active.pk]["subject_statement"] == "该笔借款已与贷款人协商分期偿还"
    assert shown[recent.pk]["subject_statement"] == ""
    assert shown[active.pk]["dpd_band"] == "180+"
    assert shown[recent.pk]["dpd_band"] == "31–60"
    # Settled 10 days ago after 400 days overdue: 390 days past due.
    assert shown[settled.pk]["dpd_band"] == "180+"
    assert shown[settled.pk]["status"] == "settled"
    assert shown[settled.pk]["settled_on"] == (TODAY - days(10)).isoformat()
    assert shown[active.pk]["category"] == "overdue"
    assert (shown[active.pk]["loan_amount"], shown[active.pk]["overdue_amount"]) == (
        "10000.00",
        "2000.00",
    )
    assert shown[active.pk]["delinquent_since"] == (TODAY - days(400)).isoformat()
    assert shown[active.pk]["member"] == lender_a.name
    # Hand-computed grade: 25 (180+) + 10 (31–60) + round(25 × 0.5) = 12 → 47 → D.
    assert sorted(f["points"] for f in query.result["risk"]["factors"]) == [10, 12, 25]
    assert query.risk_grade == query.result["risk"]["grade"] == "D"


def test_no_hit_for_a_subject_with_only_pending_entries(lender_staff, lender_a, prices):
    report(lender_staff, lender_a)

    query = ask(lender_a, consent_for(lender_a))

    assert query.hit is False
    assert query.result["entries"] == []
    assert query.result["risk"] == {"grade": "A", "factors": []}


# --- Multi-lending indicators ---------------------------------------------------------------------


def test_multi_lending_counts_past_member_queries_per_window(lender_a, lender_b, prices):
    lender_c = Institution.objects.create(
        name="丙小贷", kind=Institution.Kind.LENDER, region="天津市", uscc="91120000MA0TESTC3X"
    )
    past_query(lender_a, ago=days(1))
    past_query(lender_b, ago=days(7) - datetime.timedelta(seconds=1), purpose="guarantor_check")
    past_query(lender_b, ago=days(10))
    past_query(lender_a, ago=days(40))
    past_query(lender_c, ago=days(100))
    past_query(lender_b, ago=days(200))
    past_query(lender_c, ago=days(364))
    # Not counted: too old, post-loan monitoring, self-queries, another person.
    past_query(lender_c, ago=days(366))
    past_query(lender_c, ago=days(2), purpose="post_loan")
    past_query(lender_a, ago=days(3), purpose="self", kind=Query.Kind.SELF)
    past_query(lender_c, person=LI, ago=days(1))

    query = ask(lender_a, consent_for(lender_a))

    assert query.result["multi_lending"] == {
        "7": {"queries": 2, "institutions": 2},
        "30": {"queries": 3, "institutions": 2},
        "90": {"queries": 4, "institutions": 2},
        "180": {"queries": 5, "institutions": 3},
        "365": {"queries": 7, "institutions": 3},
    }


def test_multi_lending_does_not_count_the_query_itself(lender_a, prices):
    consent = consent_for(lender_a)

    first = ask(lender_a, consent, purpose="loan_approval")
    second = ask(
        lender_a, consent, purpose="loan_approval", now=NOW + datetime.timedelta(minutes=1)
    )

    assert first.result["multi_lending"]["7"] == {"queries": 0, "institutions": 0}
    assert second.result["multi_lending"]["7"] == {"queries": 1, "institutions": 1}


# --- Risk grade ---------------------------------------------------------------------------------


def factors(query):
    return [(f["code"], f["points"]) for f in query.result["risk"]["factors"]]


def test_nothing_on_file_is_grade_a(lender_a, prices):
    query = ask(lender_a, consent_for(lender_a))

    assert (query.risk_grade, factors(query)) == ("A", [])


def test_one_fraud_entry_is_40_points_grade_d(lender_staff, lender_a, review_officer, prices):
    live(lender_staff, lender_a, review_officer, category="fraud")

    query = ask(lender_a, consent_for(lender_a))

    assert (query.risk_grade, factors(query)) == ("D", [("entry", 40)])
    assert query.result["risk"]["factors"][0]["text"].startswith(
        str(Entry(category="fraud").get_category_display())
    )


def test_fraud_and_court_judgment_is_75_points_grade_e(
    lender_staff, lender_a, review_officer, prices
):
    live(lender_staff, lender_a, review_officer, category="fraud")
    # A court judgment's case number is its evidence (no file needed).
    other = registry.entry_report(
        actor=lender_staff,
        member=lender_a,
        row=parse_row(
            {
                "subject_type": "person",
                "id_type": "RIC",
                "id_number": ZHANG[0],
                "name": ZHANG[1],
                "role": "borrower",
                "contract_no": "HT-COURT",
                "category": "court_judgment",
                "loan_amount": "3000",
                "court_name": "北京市东城区人民法院",
                "case_number": "(2025)京0101民初1234号",
                "judgment_date": (TODAY - days(200)).isoformat(),
                "notified_on": (TODAY - days(190)).isoformat(),
                "notice_method": "letter",
            },
            today=TODAY,
        ).data,
    )[0]
    registry.entry_approve(entry=other, actor=review_officer)

    query = ask(lender_a, consent_for(lender_a))

    assert query.risk_grade == "E"
    assert sorted(factors(query)) == [("entry", 35), ("entry", 40)]


def test_settled_fraud_weighs_half(lender_staff, lender_a, review_officer, prices):
    entry = live(lender_staff, lender_a, review_officer, category="fraud")
    registry.entry_settle(entry=entry, actor=lender_staff, settled_on=TODAY - days(5))

    query = ask(lender_a, consent_for(lender_a))

    assert (query.risk_grade, factors(query)) == ("C", [("entry", 20)])


def test_many_lenders_and_a_query_burst_raise_the_grade_without_entries(lender_a, lender_b, prices):
    lender_c = Institution.objects.create(
        name="丙小贷", kind=Institution.Kind.LENDER, region="天津市", uscc="91120000MA0TESTC3X"
    )
    # 3 institutions in 30 days (+10), 5 queries in 7 days (+10): 20 points → C.
    for member, ago in ((lender_a, 1), (lender_b, 2), (lender_c, 3), (lender_b, 4), (lender_c, 5)):
        past_query(member, ago=days(ago))

    query = ask(lender_a, consent_for(lender_a))

    assert query.hit is False
    assert (query.risk_grade, factors(query)) == ("C", [("multi_lending", 10), ("query_burst", 10)])


# --- Immutable log ------------------------------------------------------------------------------


def test_logged_query_cannot_be_changed_or_deleted_through_the_model(lender_a, prices):
    query = ask(lender_a, consent_for(lender_a))
    query.fee = Decimal("0.00")

    with pytest.raises(RuntimeError):
        query.save()
    with pytest.raises(RuntimeError):
        query.delete()

    assert Query.objects.get(pk=query.pk).fee == Decimal("10.00")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the immutable-log trigger exists on PostgreSQL only"
)
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE billing_query SET purpose = 'post_loan' WHERE id = %s",
        "DELETE FROM billing_query WHERE id = %s",
    ],
    ids=["update", "delete"],
)
def test_database_refuses_raw_update_and_delete_of_the_query_log(lender_a, sql):
    query = past_query(lender_a, ago=days(1))

    with (
        pytest.raises(DatabaseError, match="immutable"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [query.pk])
    with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
        Query.objects.filter(pk=query.pk).update(purpose="post_loan")

    assert Query.objects.get(pk=query.pk).purpose == "loan_approval"


# --- A fixed number of SQL statements ---------------------------------------------------------------


def test_one_query_costs_the_same_few_sql_statements_however_much_data_exists(
    lender_staff, lender_a, lender_b, prices
):
    def add_entries(person, n):
        subject = registry.subject_get_or_create(
            subject_type="person", id_type="RIC", id_number=person[0], name=person[1]
        )
        Entry.objects.bulk_create(
            Entry(
                member=member,
                subject=subject,
                subject_role="borrower",
                contract_no=f"HT-{i}",
                category="overdue",
                status=Entry.Status.ACTIVE,
                loan_amount=Decimal("1000"),
                overdue_amount=Decimal("100"),
                delinquent_since=TODAY - days(100 + i),
                notified_on=TODAY - days(90),
                notice_method="sms",
                submitted_by=lender_staff,
                submitted_at=NOW - days(80),
                disputed=i % 2 == 0,
                subject_statement="声明" if i % 3 else "",
            )
            for i in range(n)
            for member in [(lender_a, lender_b)[i % 2]]
        )

    def add_queries(person, n):
        index = id_index_for("RIC", person[0])
        Query.objects.bulk_create(
            Query(
                query_no=f"QBULK{person[0][-4:]}{i:06d}",
                member=(lender_a, lender_b)[i % 2],
                channel="web",
                purpose="loan_approval",
                id_type="RIC",
                subject_index=index,
                id_masked="x",
                name_masked="x",
                hit=True,
                created_at=NOW - days(i % 360 + 1),
            )
            for i in range(n)
        )

    add_entries(ZHANG, 2)
    add_queries(ZHANG, 5)
    add_entries(LI, 40)
    add_queries(LI, 200)
    small, big = consent_for(lender_a, ZHANG), consent_for(lender_a, LI)
    ask(lender_a, consent_for(lender_a, WANG), WANG)  # the month's volume row now exists

    with CaptureQueriesContext(connection) as few:
        q_small = ask(lender_a, small, ZHANG)
    with CaptureQueriesContext(connection) as many:
        q_big = ask(lender_a, big, LI)

    assert (len(q_small.result["entries"]), q_small.result["multi_lending"]["365"]["queries"]) == (
        2,
        5,
    )
    assert (len(q_big.result["entries"]), q_big.result["multi_lending"]["365"]["queries"]) == (
        40,
        200,
    )
    assert len(few) == len(many)
    # Suspension check, consent, entries, multi-lending, prices, the month's counter (one
    # upsert), query, fee line, audit head and row: 10, and the advisory lock on PostgreSQL.
    # (The savepoint pair is the test's own transaction around query_run's.)
    statements = [q["sql"] for q in many.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) <= 11, "\n".join(statements)
