"""Violations and sanctions (issue 8 item 4): a regulator records a violation (with evidence)
and a sanction — warning, fine (CNY) or suspension of query and/or reporting access from one
Asia/Shanghai date to another, inclusive. A suspension is enforced on every channel (web form,
counter, API, batch screening; reporting form, API, bulk files), lifts by itself the day after
its last day or earlier by a regulator, and the member sees why on its pages."""

import datetime
import hashlib
import html
import json
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation

from billing import batch
from billing import services as billing
from billing.choices import Channel
from billing.models import Consent, Query
from billing.services import QueryRefused, QueryRequest
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.inbox.models import Notification
from blacklist_portal.uploads import check_upload
from registry import bulk
from registry import services as registry
from registry.importing.rows import parse_row
from registry.models import Entry
from supervision import services
from supervision.enforcement import query_suspension, reporting_suspension
from supervision.models import Sanction, Violation, ViolationEvidence

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ZHANG = ("11010519491231002X", "张三")
WANG = ("310101198507150018", "王五")
TODAY = timezone.localdate()
DAY = datetime.timedelta(days=1)
REASON = "未取得授权查询征信（2026第3号处罚决定）"


@pytest.fixture(autouse=True)
def english():
    cache.clear()  # the API's rate limit
    with translation.override("en"):
        yield
    cache.clear()


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def record_violation(regulator, member, type=Violation.Type.NO_CONSENT, **kwargs) -> Violation:  # noqa: A002
    return services.violation_record(actor=regulator, member=member, type=type, description="抽查发现", **kwargs)


def suspend(regulator, member, *, queries=True, reporting=False, starts=None, ends=None, now=None) -> Sanction:
    starts = starts or TODAY
    return services.sanction_impose(
        actor=regulator, violation=record_violation(regulator, member), kind=Sanction.Kind.SUSPENSION,
        reason=REASON, suspends_queries=queries, suspends_reporting=reporting, starts_on=starts,
        ends_on=ends or starts + 9 * DAY, now=now,
    )


def ended_yesterday(regulator, member, **kwargs) -> Sanction:
    """A suspension imposed ten days ago that ended yesterday."""
    ten_days_ago = timezone.now() - 10 * DAY
    return suspend(regulator, member, starts=TODAY - 10 * DAY, ends=TODAY - DAY, now=ten_days_ago, **kwargs)


def consent_for(member, person=ZHANG, purposes=("loan_approval", "post_loan")) -> Consent:
    subject = registry.subject_get_or_create(subject_type="person", id_type="RIC", id_number=person[0], name=person[1])
    return Consent.objects.create(
        member=member, subject=subject, signed_on=TODAY - 5 * DAY, expires_on=TODAY + 100 * DAY,
        covers_loan_approval="loan_approval" in purposes, covers_post_loan="post_loan" in purposes,
        file="consents/t.pdf", kind="pdf", original_name="c.pdf", size=len(PDF),
        sha256=hashlib.sha256(PDF).hexdigest(),
    )


def until_text(sanction) -> str:
    return f"suspended until {sanction.ends_on.isoformat()}: {REASON}"


# --- Recording violations and sanctions -----------------------------------------------------------


def test_a_violation_is_recorded_with_its_evidence(regulator, lender_a):
    f = SimpleUploadedFile("抽查记录.pdf", PDF, content_type="application/pdf")

    violation = record_violation(regulator, lender_a, evidence=[(f, check_upload(f))])

    evidence = ViolationEvidence.objects.get()
    assert (evidence.violation, evidence.kind, evidence.original_name) == (violation, "pdf", "抽查记录.pdf")
    assert evidence.sha256 == hashlib.sha256(PDF).hexdigest()
    assert evidence.file.startswith("violations/")
    event = AuditEvent.objects.get(action="violation.record")
    assert (event.actor, event.institution, event.details["evidence"]) == (regulator, lender_a, [evidence.sha256])


def test_only_regulators_record_violations_and_only_against_members(
    regulator, lender_a, operator, lender_admin, counter_clerk
):
    for actor in (lender_admin, counter_clerk):
        with pytest.raises(PermissionDenied):
            record_violation(actor, lender_a)
    with pytest.raises(ValidationError) as refused:
        record_violation(regulator, operator)
    assert "member" in refused.value.error_dict
    with pytest.raises(ValidationError):
        record_violation(regulator, lender_a, type="rudeness")
    assert not Violation.objects.exists()


def test_a_warning_has_no_terms_and_the_members_admins_are_told(regulator, lender_a, lender_admin, lender_staff):
    violation = record_violation(regulator, lender_a)

    sanction = services.sanction_impose(actor=regulator, violation=violation, kind=Sanction.Kind.WARNING,
                                        reason=REASON)

    assert (sanction.member, sanction.fine_amount, sanction.starts_on) == (lender_a, None, None)
    assert query_suspension(lender_a.pk) is None
    notice = Notification.objects.get(user=lender_admin)
    assert notice.title == "The regulator imposed a sanction on your institution"
    assert notice.body == f"A warning: {REASON}"
    assert notice.link == reverse("supervision:sanction_detail", args=[sanction.pk])
    assert not Notification.objects.filter(user=lender_staff).exists()


def test_a_fine_is_an_exact_amount_in_yuan(regulator, lender_a):
    violation = record_violation(regulator, lender_a)

    sanction = services.sanction_impose(actor=regulator, violation=violation, kind=Sanction.Kind.FINE,
                                        reason=REASON, fine_amount=Decimal("50000.10"))

    sanction.refresh_from_db()
    assert sanction.fine_amount == Decimal("50000.10")
    assert isinstance(sanction.fine_amount, Decimal)
    assert AuditEvent.objects.get(action="sanction.impose").details["fine_amount"] == "50000.10"


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"kind": "fine"}, "fine_amount"),
        ({"kind": "fine", "fine_amount": Decimal("0")}, "fine_amount"),
        ({"kind": "fine", "fine_amount": Decimal("-5")}, "fine_amount"),
        ({"kind": "fine", "fine_amount": Decimal("10.005")}, "fine_amount"),
        ({"kind": "fine", "fine_amount": Decimal("1e13")}, "fine_amount"),
        ({"kind": "warning", "fine_amount": Decimal("10")}, "fine_amount"),
        ({"kind": "suspension", "starts_on": TODAY, "ends_on": TODAY}, "suspends_queries"),
        ({"kind": "suspension", "suspends_queries": True, "ends_on": TODAY}, "starts_on"),
        ({"kind": "suspension", "suspends_queries": True, "starts_on": TODAY}, "ends_on"),
        ({"kind": "suspension", "suspends_queries": True, "starts_on": TODAY, "ends_on": TODAY - DAY}, "ends_on"),
        ({"kind": "suspension", "suspends_queries": True, "starts_on": TODAY - DAY, "ends_on": TODAY}, "starts_on"),
        ({"kind": "ban"}, "kind"),
    ],
)
def test_a_sanction_carries_exactly_the_terms_of_its_kind(regulator, lender_a, terms, field):
    violation = record_violation(regulator, lender_a)

    with pytest.raises(ValidationError) as refused:
        services.sanction_impose(actor=regulator, violation=violation, reason=REASON, **terms)

    assert field in refused.value.error_dict
    assert not Sanction.objects.exists()


def test_a_warning_with_dates_is_refused(regulator, lender_a):
    violation = record_violation(regulator, lender_a)

    with pytest.raises(ValidationError, match="Only a suspension"):
        services.sanction_impose(actor=regulator, violation=violation, kind="warning", reason=REASON,
                                 starts_on=TODAY, ends_on=TODAY)


def test_a_sanction_needs_a_reason_and_a_regulator(regulator, lender_a, platform_admin):
    violation = record_violation(regulator, lender_a)

    with pytest.raises(ValidationError) as refused:
        services.sanction_impose(actor=regulator, violation=violation, kind="warning", reason=" ")
    assert "reason" in refused.value.error_dict
    with pytest.raises(PermissionDenied):
        services.sanction_impose(actor=platform_admin, violation=violation, kind="warning", reason=REASON)


def test_a_one_day_suspension_is_allowed_and_every_user_of_the_member_is_told(
    regulator, lender_a, lender_admin, lender_staff, other_lender_staff
):
    sanction = suspend(regulator, lender_a, queries=True, reporting=True, starts=TODAY, ends=TODAY)

    assert (sanction.suspends_queries, sanction.suspends_reporting) == (True, True)
    body = f"queries and reporting suspended from {TODAY} to {TODAY} inclusive: {REASON}"
    assert Notification.objects.get(user=lender_staff).body == body
    assert Notification.objects.get(user=lender_admin).link == reverse("supervision:sanction_detail", args=[sanction.pk])
    assert not Notification.objects.filter(user=other_lender_staff).exists()


# --- Enforcement: dates -----------------------------------------------------------------------------


def test_a_suspension_is_in_force_from_its_first_to_its_last_day_and_lifts_by_itself(regulator, lender_a):
    start = TODAY + 3 * DAY
    sanction = suspend(regulator, lender_a, starts=start, ends=start + 4 * DAY)

    assert query_suspension(lender_a.pk, today=start - DAY) is None
    assert query_suspension(lender_a.pk, today=start).until == sanction.ends_on
    assert query_suspension(lender_a.pk, today=sanction.ends_on).reason == REASON
    assert query_suspension(lender_a.pk, today=sanction.ends_on + DAY) is None
    assert reporting_suspension(lender_a.pk, today=start) is None


def test_a_suspension_concerns_its_member_only(regulator, lender_a, lender_b):
    suspend(regulator, lender_a, reporting=True)

    assert query_suspension(lender_b.pk) is None
    assert reporting_suspension(lender_b.pk) is None


# --- Enforcement: queries on every channel ------------------------------------------------------------


def test_the_web_query_form_refuses_with_the_reason_and_the_end_date(client, login, regulator, lender_a, lender_staff):
    consent = consent_for(lender_a)
    sanction = suspend(regulator, lender_a)
    login(client, lender_staff)

    page = client.get(reverse("billing:query_create")).content.decode()
    response = client.post(reverse("billing:query_create"), {
        "id_type": "RIC", "id_number": ZHANG[0], "name": ZHANG[1], "purpose": "post_loan", "consent": consent.pk,
    })

    assert f"Your institution's queries are suspended until {sanction.ends_on:%Y-%m-%d} (inclusive)." in page
    assert REASON in page
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert errors == [f"Your institution's query access is {until_text(sanction)}"]
    assert not Query.objects.exists()
    assert AuditEvent.objects.get(action="query.refused").details["reason"] == "member_suspended"


def test_a_suspended_members_representative_is_refused_at_the_counter(
    client, login, regulator, lender_a, counter_clerk
):
    sanction = suspend(regulator, lender_a)
    login(client, counter_clerk)

    response = client.post(reverse("billing:counter_member_query"), {
        "member": lender_a.pk, "representative": "赵六", "id_type": "RIC", "id_number": ZHANG[0],
        "name": ZHANG[1], "purpose": "post_loan",
        "consent_file": SimpleUploadedFile("scan.pdf", PDF, content_type="application/pdf"),
        "consent_signed_on": (TODAY - DAY).isoformat(), "consent_expires_on": (TODAY + 180 * DAY).isoformat(),
    })

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [f"Your institution's query access is {until_text(sanction)}"]
    assert not Query.objects.exists()
    assert not Consent.objects.exists()


@pytest.fixture
def api_key(lender_admin):
    return billing.apikey_create(actor=lender_admin, name="loan system")[1]


def api_query(client, key, consent):
    body = {"id_type": "RIC", "id_number": ZHANG[0], "name": ZHANG[1], "purpose": "post_loan", "consent_id": consent.pk}
    return client.post("/api/v1/queries", data=json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {key}")


def test_the_api_refuses_a_suspended_members_query_with_403_member_suspended(client, regulator, lender_a, api_key):
    consent = consent_for(lender_a)
    sanction = suspend(regulator, lender_a)

    response = api_query(client, api_key, consent)

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "member_suspended"
    assert until_text(sanction) in error["message"]
    assert not Query.objects.exists()


def test_batch_screening_is_refused_during_a_query_suspension(regulator, lender_a):
    consent = consent_for(lender_a)
    suspend(regulator, lender_a)

    with pytest.raises(QueryRefused) as refused:
        batch.batch_screen(member=lender_a, subjects=[
            {"id_type": "RIC", "id_number": ZHANG[0], "name": ZHANG[1], "consent_id": consent.pk}])
    assert refused.value.code == "member_suspended"


def test_queries_run_again_the_day_after_the_last_day(client, login, regulator, lender_a, lender_staff, api_key):
    consent = consent_for(lender_a)
    ended_yesterday(regulator, lender_a)
    login(client, lender_staff)

    page = client.get(reverse("billing:query_create")).content.decode()
    web = client.post(reverse("billing:query_create"), {
        "id_type": "RIC", "id_number": ZHANG[0], "name": ZHANG[1], "purpose": "post_loan", "consent": consent.pk,
    })
    api = api_query(client, api_key, consent)

    assert REASON not in page
    assert web.status_code == 302
    assert api.status_code == 201
    assert Query.objects.count() == 2


def test_queries_run_on_the_day_before_a_suspension_starts(regulator, lender_a, lender_staff):
    consent = consent_for(lender_a)
    suspend(regulator, lender_a, starts=TODAY + DAY)

    query = billing.query_run(member=lender_a, channel=Channel.WEB, user=lender_staff, req=QueryRequest(
        id_type="RIC", id_number=ZHANG[0], name=ZHANG[1], purpose="post_loan", consent_id=consent.pk))

    assert query.pk is not None
    with pytest.raises(QueryRefused):
        billing.query_run(member=lender_a, channel=Channel.WEB, user=lender_staff, now=timezone.now() + DAY,
                          req=QueryRequest(id_type="RIC", id_number=ZHANG[0], name=ZHANG[1], purpose="post_loan",
                                           consent_id=consent.pk))


def test_lifting_early_lets_the_member_query_again_at_once(client, regulator, lender_a, api_key, lender_admin):
    consent = consent_for(lender_a)
    sanction = suspend(regulator, lender_a)
    assert api_query(client, api_key, consent).status_code == 403

    services.sanction_lift(sanction=sanction, actor=regulator, reason="已整改完毕")

    assert api_query(client, api_key, consent).status_code == 201
    sanction.refresh_from_db()
    assert (sanction.lifted_by, sanction.lift_reason) == (regulator, "已整改完毕")
    assert sanction.lifted_at is not None
    assert AuditEvent.objects.get(action="sanction.lift").actor == regulator
    assert Notification.objects.filter(user=lender_admin,
                                       title="The suspension of your institution was lifted").exists()


def test_a_queries_only_suspension_does_not_stop_reporting(regulator, lender_a, lender_staff):
    suspend(regulator, lender_a, queries=True, reporting=False)

    entry, outcome = registry.entry_report(actor=lender_staff, member=lender_a, row=_row(), evidence=_evidence())

    assert (outcome, entry.status) == ("created", Entry.Status.PENDING_REVIEW)


# --- Enforcement: reporting on every channel -----------------------------------------------------------


def _raw(**overrides) -> dict:
    values = {
        "subject_type": "person", "id_type": "RIC", "id_number": WANG[0], "name": WANG[1], "role": "borrower",
        "contract_no": "API-0001", "category": "overdue", "loan_amount": "12345.60", "overdue_amount": "2345.60",
        "delinquent_since": (TODAY - 100 * DAY).isoformat(), "notified_on": (TODAY - 20 * DAY).isoformat(),
        "notice_method": "sms",
    }
    values.update(overrides)
    return values


def _row():
    result = parse_row(_raw(), today=TODAY)
    assert result.ok, result.errors
    return result.data


def _evidence():
    f = SimpleUploadedFile("ledger.pdf", PDF, content_type="application/pdf")
    return [(f, check_upload(f))]


def test_the_reporting_form_refuses_during_a_reporting_suspension(client, login, regulator, lender_a, lender_staff):
    sanction = suspend(regulator, lender_a, queries=False, reporting=True)
    login(client, lender_staff)

    form_page = client.get(reverse("registry:entry_create")).content.decode()
    response = client.post(reverse("registry:entry_create"), {
        **_raw(), "evidence": SimpleUploadedFile("ledger.pdf", PDF, content_type="application/pdf")})

    assert response.status_code == 200
    assert f"Your institution's reporting is suspended until {sanction.ends_on:%Y-%m-%d} (inclusive)." in form_page
    assert f"Your institution's reporting access is {until_text(sanction)}" in html.unescape(response.content.decode())
    assert not Entry.objects.exists()


def test_the_api_refuses_an_entry_during_a_reporting_suspension(client, regulator, lender_a, api_key):
    sanction = suspend(regulator, lender_a, queries=False, reporting=True)

    response = client.post("/api/v1/entries", {**_raw(), "evidence": SimpleUploadedFile("l.pdf", PDF)},
                           HTTP_AUTHORIZATION=f"Bearer {api_key}")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "member_suspended"
    assert until_text(sanction) in response.json()["error"]["message"]
    assert not Entry.objects.exists()


def test_a_bulk_file_is_refused_during_a_reporting_suspension(regulator, lender_a, lender_staff):
    suspend(regulator, lender_a, queries=False, reporting=True)
    f = SimpleUploadedFile("entries.csv", b"subject_type,id_type\n", content_type="text/csv")

    with pytest.raises(ValidationError, match="reporting access is suspended"):
        bulk.batch_create(actor=lender_staff, member=lender_a, f=f,
                          checked=check_upload(f, allowed=frozenset({"csv"})))


def test_reporting_works_again_after_the_suspension_and_when_lifted(regulator, lender_a, lender_staff):
    ended_yesterday(regulator, lender_a, queries=False, reporting=True)
    current = suspend(regulator, lender_a, queries=False, reporting=True)
    with pytest.raises(ValidationError):
        registry.entry_report(actor=lender_staff, member=lender_a, row=_row(), evidence=_evidence())

    services.sanction_lift(sanction=current, actor=regulator, reason="已整改")

    entry, _outcome = registry.entry_report(actor=lender_staff, member=lender_a, row=_row(), evidence=_evidence())
    assert entry.member == lender_a


# --- Lifting ------------------------------------------------------------------------------------------------


def test_only_a_current_or_future_suspension_can_be_lifted_once(regulator, lender_a):
    violation = record_violation(regulator, lender_a)
    warning = services.sanction_impose(actor=regulator, violation=violation, kind="warning", reason=REASON)
    ended = ended_yesterday(regulator, lender_a)
    future = suspend(regulator, lender_a, starts=TODAY + 5 * DAY)

    with pytest.raises(ValidationError, match="Only a suspension"):
        services.sanction_lift(sanction=warning, actor=regulator, reason="x")
    with pytest.raises(ValidationError, match="ended already"):
        services.sanction_lift(sanction=ended, actor=regulator, reason="x")
    services.sanction_lift(sanction=future, actor=regulator, reason="撤销")
    assert query_suspension(lender_a.pk, today=TODAY + 6 * DAY) is None
    with pytest.raises(ValidationError, match="lifted already"):
        services.sanction_lift(sanction=future, actor=regulator, reason="again")
    current = suspend(regulator, lender_a)
    with pytest.raises(ValidationError) as no_reason:
        services.sanction_lift(sanction=current, actor=regulator, reason="")
    assert "reason" in no_reason.value.error_dict
    assert query_suspension(lender_a.pk) is not None


def test_members_cannot_lift_their_own_suspension(regulator, lender_a, lender_admin):
    sanction = suspend(regulator, lender_a)

    with pytest.raises(PermissionDenied):
        services.sanction_lift(sanction=sanction, actor=lender_admin, reason="我们已整改")
    assert query_suspension(lender_a.pk) is not None


# --- The member sees why ------------------------------------------------------------------------------------


def test_the_members_pages_say_what_is_suspended_until_when_and_why(
    client, login, regulator, lender_a, lender_staff, other_lender_staff
):
    sanction = suspend(regulator, lender_a, queries=True, reporting=True)
    login(client, lender_staff)

    home = client.get(reverse("accounts:home"), follow=True).content.decode()

    assert f"Your institution's queries and reporting are suspended until {sanction.ends_on:%Y-%m-%d} (inclusive)." in home
    assert REASON in home
    client.logout()
    login(client, other_lender_staff)
    assert REASON not in client.get(reverse("accounts:home"), follow=True).content.decode()


def test_the_banner_is_chinese_by_default(client, login, regulator, lender_a, lender_staff, zh):
    sanction = suspend(regulator, lender_a, queries=False, reporting=True)
    client.defaults.pop("HTTP_ACCEPT_LANGUAGE")
    login(client, lender_staff)

    page = client.get(reverse("accounts:home"), follow=True).content.decode()

    expected = zh("Your institution's reporting is suspended until %(until)s (inclusive).")
    assert expected % {"until": sanction.ends_on.isoformat()} in page
    assert 'lang="zh-Hans"' in page
