"""The JSON API (docs/api.md): bearer keys, rate limit, consents, queries, entries, the
OpenAPI schema, and errors that are always JSON 4xx and never store or bill anything.

alice (lender_staff) and anna (lender_admin) work for lender_a, whose key the tests use;
chris (other_lender_admin) holds lender_b's key."""

import datetime
import json
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from stdnum.cn import ric as stdnum_ric

from billing import services
from billing.api import auth as api_auth
from billing.models import ApiKey, Consent, FeeLine, PriceRule, PriceSchedule, Query
from blacklist_portal.accounts.models import Institution
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.uploads import check_upload
from registry import services as registry_services
from registry.importing.rows import parse_row
from registry.models import Entry

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
HTML_AS_PDF = b"<!DOCTYPE html><html><body>signed</body></html>"
ZHANG = ("11010519491231002X", "张三")
LI = ("110101199003077571", "李四")
WANG = ("310101198507150018", "王五")
TODAY = timezone.localdate()
DAY = datetime.timedelta(days=1)


def ric(n: int, born: str = "19800101") -> str:
    body = f"110105{born}{n:03d}"
    return body + stdnum_ric.calc_check_digit(body + "0")


# --- Fixtures and helpers ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def make_key(admin) -> tuple[ApiKey, str]:
    return services.apikey_create(actor=admin, name="loan system")


@pytest.fixture
def key(lender_admin):
    return make_key(lender_admin)


@pytest.fixture
def raw(key):
    return key[1]


@pytest.fixture
def other_raw(other_lender_admin):
    return make_key(other_lender_admin)[1]


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def post_json(client, path: str, data, raw: str, **extra):
    body = data if isinstance(data, bytes | str) else json.dumps(data)
    return client.post(path, data=body, content_type="application/json", **bearer(raw), **extra)


def consent(
    staff, *, subject=ZHANG, purposes=("loan_approval", "post_loan"), signed_on=None,
    expires_on=None,
) -> Consent:
    f = SimpleUploadedFile("授权书.pdf", PDF, content_type="application/pdf")
    return services.consent_upload(
        actor=staff, member=staff.institution, f=f, checked=check_upload(f), id_type="RIC",
        id_number=subject[0], name=subject[1], purposes=list(purposes),
        signed_on=signed_on or TODAY - 3 * DAY, expires_on=expires_on or TODAY + 180 * DAY,
    )


def live_entry(staff, officer, *, subject=ZHANG, contract_no="HT-1", approve=True) -> Entry:
    """A court-judgment entry (the case number is its evidence), approved by the officer."""
    values = {
        "subject_type": "person", "id_type": "RIC", "id_number": subject[0], "name": subject[1],
        "role": "borrower", "contract_no": contract_no, "category": "court_judgment",
        "loan_amount": "20000.00", "court_name": "北京市朝阳区人民法院",
        "case_number": "(2023)京0105执1234号", "judgment_date": "2023-05-06",
        "notified_on": (TODAY - 30 * DAY).isoformat(), "notice_method": "letter",
    }
    parsed = parse_row(values, today=TODAY)
    assert parsed.ok, parsed.errors
    entry, _outcome = registry_services.entry_report(
        actor=staff, member=staff.institution, row=parsed.data
    )
    if approve:
        entry = registry_services.entry_approve(entry=entry, actor=officer)
    return entry


def past_queries(n: int, *, subject_index: str, members: list[Institution]) -> None:
    now = timezone.now()
    Query.objects.bulk_create(
        Query(
            query_no=services.new_number("Q", now), member=members[i % len(members)],
            channel="web", purpose="loan_approval", id_type="RIC", subject_index=subject_index,
            id_masked="x", name_masked="x", hit=False, created_at=now - (i + 1) * DAY,
        )
        for i in range(n)
    )


def query_body(c: Consent | None, *, subject=ZHANG, purpose="post_loan", **overrides) -> dict:
    body = {
        "id_type": "RIC", "id_number": subject[0], "name": subject[1], "purpose": purpose,
        "consent_id": c.pk if c else None,
    }
    body.update(overrides)
    return body


def stored() -> tuple[int, int, int, int]:
    return Query.objects.count(), FeeLine.objects.count(), Consent.objects.count(), Entry.objects.count()


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "fields"}
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.fixture
def prices():
    schedule = PriceSchedule.objects.create(name="2026", effective_from=timezone.now() - 30 * DAY)
    PriceRule.objects.create(schedule=schedule, hit=True, price=Decimal("5.00"))
    PriceRule.objects.create(schedule=schedule, hit=False, price=Decimal("2.00"))
    return schedule


# --- Keys ---------------------------------------------------------------------------------------


def test_a_new_key_works_and_its_use_is_recorded(client, key):
    api_key, raw = key
    assert api_key.last_used_at is None

    response = client.get("/api/v1/entries", **bearer(raw))

    assert response.status_code == 200
    assert response.json()["results"] == []
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


def test_a_revoked_key_is_refused(client, key, lender_admin):
    api_key, raw = key
    services.apikey_revoke(actor=lender_admin, key=api_key)

    assert_error(client.get("/api/v1/entries", **bearer(raw)), 401, "invalid_key")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic YWxpY2U6c2VjcmV0",
        "Bearer bl_nope_nope",
        "Bearer bl_\x00_x",
        "Bearer 密钥",
        "Bearer " + "a" * 5000,
    ],
)
def test_a_missing_or_wrong_key_is_401_json(client, db, header):
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}

    response = client.get("/api/v1/entries", **extra)

    assert_error(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_errors_are_chinese_by_default_and_english_on_request(client, db):
    chinese = assert_error(client.get("/api/v1/entries"), 401)
    english = assert_error(client.get("/api/v1/entries", HTTP_ACCEPT_LANGUAGE="en"), 401)

    assert chinese["message"] == "请按以下格式发送 API 密钥：Authorization: Bearer <key>。"
    assert english["message"] == "Send your API key as: Authorization: Bearer <key>."


def test_a_key_with_a_wrong_secret_is_refused(client, raw):
    forged = raw[:-4] + ("AAAA" if not raw.endswith("AAAA") else "BBBB")

    assert_error(client.get("/api/v1/entries", **bearer(forged)), 401, "invalid_key")


def test_a_suspended_institutions_key_is_refused(client, raw, lender_a):
    lender_a.status = Institution.Status.SUSPENDED
    lender_a.save()

    error = assert_error(client.get("/api/v1/entries", **bearer(raw)), 403, "member_suspended")
    assert error["message"] == "本机构已被暂停，不能查询。"


def test_every_issued_key_authenticates(lender_admin):
    # About half of the random tails contain "_", the separator of the key's parts.
    keys = [services.apikey_create(actor=lender_admin, name=f"k{i}") for i in range(20)]

    assert all(services.apikey_authenticate(raw) == key for key, raw in keys)


@override_settings(PORTAL_API_RATE_LIMIT=3)
def test_the_fourth_request_in_a_minute_is_rate_limited(client, raw, other_raw, monkeypatch):
    start = datetime.datetime(2026, 12, 4, 10, 0, 15, tzinfo=datetime.UTC)
    monkeypatch.setattr(api_auth, "_now", lambda: start)

    statuses = [client.get("/api/v1/entries", **bearer(raw)).status_code for _ in range(3)]
    limited = client.get("/api/v1/entries", **bearer(raw))

    assert statuses == [200, 200, 200]
    assert_error(limited, 429, "rate_limited")
    assert limited["Retry-After"] == "45"
    # Per key: the other institution's key is not affected.
    assert client.get("/api/v1/entries", **bearer(other_raw)).status_code == 200
    # The next minute is a new window.
    monkeypatch.setattr(api_auth, "_now", lambda: start + datetime.timedelta(seconds=45))
    assert client.get("/api/v1/entries", **bearer(raw)).status_code == 200


def test_last_use_is_written_at_most_once_a_minute(client, key, monkeypatch):
    api_key, raw = key
    start = timezone.now()
    monkeypatch.setattr(api_auth, "_now", lambda: start)
    client.get("/api/v1/entries", **bearer(raw))

    monkeypatch.setattr(api_auth, "_now", lambda: start + datetime.timedelta(seconds=30))
    with CaptureQueriesContext(connection) as within_a_minute:
        client.get("/api/v1/entries", **bearer(raw))
    monkeypatch.setattr(api_auth, "_now", lambda: start + datetime.timedelta(seconds=61))
    client.get("/api/v1/entries", **bearer(raw))

    assert not [q for q in within_a_minute if "UPDATE" in q["sql"] and "last_used_at" in q["sql"]]
    api_key.refresh_from_db()
    assert api_key.last_used_at == start + datetime.timedelta(seconds=61)


# --- Consents -----------------------------------------------------------------------------------


def consent_form(**overrides) -> dict:
    data = {
        "id_type": "RIC", "id_number": ZHANG[0], "name": ZHANG[1],
        "purposes": ["loan_approval", "post_loan"],
        "signed_on": (TODAY - 3 * DAY).isoformat(), "expires_on": (TODAY + 180 * DAY).isoformat(),
        "file": SimpleUploadedFile("授权书.pdf", PDF, content_type="application/pdf"),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_a_consent_upload_returns_its_id(client, raw, lender_a):
    response = client.post("/api/v1/consents", consent_form(purposes="post_loan,loan_approval"), **bearer(raw))

    assert response.status_code == 201, response.content
    body = response.json()
    stored_consent = Consent.objects.get(pk=body["id"])
    assert stored_consent.member == lender_a
    assert stored_consent.channel == "api"
    assert body["purposes"] == ["loan_approval", "post_loan"]
    assert body["expires_on"] == (TODAY + 180 * DAY).isoformat()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id_number": ZHANG[0][:-1] + "3"}, "id_number"),
        ({"id_type": "DRIVING"}, "id_type"),
        ({"name": "  "}, "name"),
        ({"purposes": "post_loan,holiday"}, "purposes"),
        ({"signed_on": "2024-02-30"}, "signed_on"),
        ({"expires_on": "next year"}, "expires_on"),
        ({"file": None}, "file"),
        ({"file": SimpleUploadedFile("c.pdf", HTML_AS_PDF)}, "file"),
        ({"name": "张\x00三"}, "name"),
    ],
)
def test_a_bad_consent_upload_is_400_with_the_field_and_stores_nothing(client, raw, overrides, field):
    before = stored()

    error = assert_error(client.post("/api/v1/consents", consent_form(**overrides), **bearer(raw)), 400, "invalid")

    assert field in error["fields"]
    assert stored() == before


def test_a_bad_id_number_is_explained_in_the_requests_language(client, raw):
    form = consent_form(id_number=ZHANG[0][:-1] + "3")

    chinese = assert_error(client.post("/api/v1/consents", form, **bearer(raw)), 400)
    form = consent_form(id_number=ZHANG[0][:-1] + "3")
    english = assert_error(
        client.post("/api/v1/consents", form, HTTP_ACCEPT_LANGUAGE="en", **bearer(raw)), 400
    )

    assert chinese["fields"]["id_number"] == "校验码应为 X，而不是 3。"
    assert english["fields"]["id_number"] == "The check character should be X, not 3."


@override_settings(PORTAL_UPLOAD_MAX_BYTES=20)
def test_an_oversized_consent_file_is_413(client, raw):
    before = stored()

    error = assert_error(client.post("/api/v1/consents", consent_form(), **bearer(raw)), 413, "too_large")

    assert "file" in error["fields"]
    assert stored() == before


# --- Queries ------------------------------------------------------------------------------------


def test_a_no_hit_query_returns_its_result_and_is_billed_once(client, raw, lender_staff, prices, key):
    c = consent(lender_staff)

    response = post_json(client, "/api/v1/queries", query_body(c), raw)

    assert response.status_code == 201, response.content
    body = response.json()
    query = Query.objects.get(query_no=body["query_no"])
    assert (query.channel, query.purpose, query.api_key, query.consent) == ("api", "post_loan", key[0], c)
    assert body["hit"] is False
    assert body["name_matches"] is True
    assert body["entries"] == []
    assert body["multi_lending"] == {
        d: {"queries": 0, "institutions": 0} for d in ("7", "30", "90", "180", "365")
    }
    assert body["risk_grade"] == "A"
    assert body["risk_factors"] == []
    assert body["fee"] == "2.00"
    assert datetime.datetime.fromisoformat(body["queried_at"]) == query.created_at
    assert FeeLine.objects.get().query == query


def test_a_hit_query_shows_the_live_entries_of_every_member(
    client, raw, lender_staff, other_lender_staff, review_officer, prices
):
    live_entry(other_lender_staff, review_officer, contract_no="B-1")
    live_entry(other_lender_staff, review_officer, contract_no="B-2", approve=False)  # pending
    c = consent(lender_staff)

    response = post_json(client, "/api/v1/queries", query_body(c), raw)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["hit"] is True
    assert [(e["category"], e["member"], e["status"]) for e in body["entries"]] == [
        ("court_judgment", "乙小额贷款有限公司", "active")
    ]
    assert body["entries"][0]["case_number"] == "(2023)京0105执1234号"
    assert body["risk_grade"] in {"C", "D", "E"}
    assert body["risk_factors"][0]["code"] == "entry"
    assert body["fee"] == "5.00"


def test_multi_lending_counts_other_members_loan_queries(client, raw, lender_staff, lender_a, lender_b):
    c = consent(lender_staff)
    past_queries(4, subject_index=c.subject.id_index, members=[lender_a, lender_b])

    body = post_json(client, "/api/v1/queries", query_body(c), raw).json()

    assert body["multi_lending"]["7"] == {"queries": 4, "institutions": 2}
    assert body["multi_lending"]["365"] == {"queries": 4, "institutions": 2}


def test_a_loan_approval_query_records_the_application(client, raw, lender_staff):
    c = consent(lender_staff)
    application = {"amount": "50,000.5", "loan_type": "consumer", "applied_on": TODAY.isoformat()}

    response = post_json(client, "/api/v1/queries", query_body(c, purpose="loan_approval", application=application), raw)
    by_number = post_json(
        client, "/api/v1/queries",
        query_body(c, purpose="loan_approval", application={**application, "amount": 1200}), raw,
    )

    assert response.status_code == 201, response.content
    query = Query.objects.get(query_no=response.json()["query_no"])
    assert query.application_amount == Decimal("50000.50")
    assert (query.application_loan_type, query.application_date) == ("consumer", TODAY)
    assert Query.objects.get(query_no=by_number.json()["query_no"]).application_amount == Decimal("1200.00")


@pytest.mark.parametrize(
    "application",
    [
        None,
        [],
        {"amount": "0", "loan_type": "consumer", "applied_on": TODAY.isoformat()},
        {"amount": "-5", "loan_type": "consumer", "applied_on": TODAY.isoformat()},
        {"amount": "1.001", "loan_type": "consumer", "applied_on": TODAY.isoformat()},
        {"amount": 1e300, "loan_type": "consumer", "applied_on": TODAY.isoformat()},
        {"amount": True, "loan_type": "consumer", "applied_on": TODAY.isoformat()},
        {"amount": "1000000000000", "loan_type": "consumer", "applied_on": TODAY.isoformat()},
        {"amount": "100", "loan_type": "yacht", "applied_on": TODAY.isoformat()},
        {"amount": "100", "loan_type": "consumer", "applied_on": "2024/03/05"},
        {"amount": "100", "loan_type": "consumer", "applied_on": (TODAY + 2 * DAY).isoformat()},
    ],
)
def test_a_loan_approval_query_needs_a_valid_application(client, raw, lender_staff, application):
    c = consent(lender_staff)
    before = stored()

    error = assert_error(
        post_json(client, "/api/v1/queries", query_body(c, purpose="loan_approval", application=application), raw),
        400, "invalid",
    )

    assert any(f.startswith("application") for f in error["fields"])
    assert stored() == before


@pytest.fixture
def refusal_cases(lender_staff, other_lender_staff):
    """Each refusal reason: (request body, code, field)."""
    return {
        "missing": (query_body(None), "consent_missing", "consent"),
        "another member's": (query_body(consent(other_lender_staff)), "consent_not_found", "consent"),
        "unknown": (query_body(None, consent_id=987654), "consent_not_found", "consent"),
        "expired": (
            query_body(consent(lender_staff, signed_on=TODAY - 400 * DAY, expires_on=TODAY - DAY)),
            "consent_expired", "consent",
        ),
        "other subject": (query_body(consent(lender_staff, subject=LI)), "consent_other_subject", "consent"),
        "purpose": (
            query_body(consent(lender_staff, purposes=["post_loan"]), purpose="guarantor_check"),
            "consent_purpose", "purpose",
        ),
    }


@pytest.mark.parametrize(
    "case", ["missing", "another member's", "unknown", "expired", "other subject", "purpose"]
)
def test_each_refusal_is_403_with_its_code_and_stores_and_bills_nothing(client, raw, refusal_cases, case, prices):
    body, code, field = refusal_cases[case]
    before = stored()

    error = assert_error(post_json(client, "/api/v1/queries", body, raw), 403, code)

    assert list(error["fields"]) == [field]
    assert error["fields"][field] == error["message"]
    assert stored() == before
    assert AuditEvent.objects.filter(action="query.refused", details__reason=code).exists()


def test_a_consent_signed_in_the_future_is_not_yet_valid(client, raw, lender_staff, monkeypatch):
    c = consent(lender_staff, signed_on=TODAY, expires_on=TODAY + 9 * DAY)
    Consent.objects.filter(pk=c.pk).update(signed_on=TODAY + DAY)  # the service refuses future signing dates
    before = stored()

    error = assert_error(post_json(client, "/api/v1/queries", query_body(c), raw), 403, "consent_not_yet_valid")

    assert "consent" in error["fields"]
    assert stored() == before


def test_refusals_are_chinese_by_default_and_english_on_request(client, raw, other_lender_staff):
    body = query_body(consent(other_lender_staff))

    chinese = assert_error(post_json(client, "/api/v1/queries", body, raw), 403)
    english = assert_error(post_json(client, "/api/v1/queries", body, raw, HTTP_ACCEPT_LANGUAGE="en"), 403)

    assert chinese["message"] == "授权书不存在或属于其他机构。"
    assert english["message"] == "The consent does not exist or belongs to another institution."


def test_a_name_that_does_not_match_shows_nothing_and_costs_nothing(
    client, raw, lender_staff, other_lender_staff, review_officer, prices
):
    live_entry(other_lender_staff, review_officer)
    c = consent(lender_staff)

    body = post_json(client, "/api/v1/queries", query_body(c, name="李四"), raw).json()

    assert (body["name_matches"], body["hit"], body["entries"], body["fee"]) == (False, False, [], "0.00")
    # Not even the query activity about the person is shown.
    assert (body["multi_lending"], body["risk_grade"], body["risk_factors"]) == (None, "", [])
    assert FeeLine.objects.count() == 0


def test_a_suspended_member_cannot_query(client, raw, lender_staff, lender_a):
    c = consent(lender_staff)
    lender_a.status = Institution.Status.SUSPENDED
    lender_a.save()
    before = stored()

    assert_error(post_json(client, "/api/v1/queries", query_body(c), raw), 403, "member_suspended")
    assert stored() == before


def test_malformed_json_is_400(client, raw):
    error = assert_error(post_json(client, "/api/v1/queries", b'{"id_type": "RIC",', raw), 400, "malformed_json")

    assert error["fields"] == {}


def test_wrong_types_are_400_with_a_message_per_field(client, raw):
    body = {"id_type": 7, "id_number": ["x"], "name": {"a": 1}, "purpose": None, "consent_id": "12"}

    error = assert_error(post_json(client, "/api/v1/queries", body, raw), 400, "invalid")

    assert set(error["fields"]) == {"id_type", "id_number", "name", "purpose", "consent_id"}


def test_a_name_longer_than_the_register_holds_is_400(client, raw, lender_staff):
    c = consent(lender_staff)
    before = stored()

    error = assert_error(post_json(client, "/api/v1/queries", query_body(c, name="张" * 101), raw), 400, "invalid")

    assert list(error["fields"]) == ["name"]
    assert stored() == before


def test_an_invalid_id_number_is_400_with_the_identifier_message(client, raw, lender_staff):
    c = consent(lender_staff)

    error = assert_error(
        post_json(client, "/api/v1/queries", query_body(c, id_number=ZHANG[0][:-1] + "3"), raw,
                  HTTP_ACCEPT_LANGUAGE="en"),
        400, "invalid",
    )

    assert error["fields"] == {"id_number": "The check character should be X, not 3."}


def test_a_past_query_is_shown_to_its_own_institution_only(client, raw, other_raw, lender_staff, prices):
    created = post_json(client, "/api/v1/queries", query_body(consent(lender_staff)), raw).json()

    own = client.get(f"/api/v1/queries/{created['query_no']}", **bearer(raw))
    other = client.get(f"/api/v1/queries/{created['query_no']}", **bearer(other_raw))

    assert own.status_code == 200
    assert own.json() == created
    assert_error(other, 404, "not_found")


@pytest.mark.parametrize("query_no", ["Q20260101AAAAAAAA", "x" * 300, "%00", "..%2F..%2Fetc"])
def test_an_unknown_query_number_is_404(client, raw, query_no):
    assert_error(client.get(f"/api/v1/queries/{query_no}", **bearer(raw)), 404)


def _seed(n: int, *, c: Consent, subject, staff, officer, members) -> None:
    for i in range(n):
        live_entry(staff, officer, subject=subject, contract_no=f"N{n}-{i}")
    past_queries(n, subject_index=c.subject.id_index, members=members)


def test_one_query_costs_the_same_few_statements_however_many_entries_and_queries(
    client, raw, lender_staff, other_lender_staff, review_officer, lender_a, lender_b, prices,
    django_assert_max_num_queries,
):
    few, many = consent(lender_staff, subject=ZHANG), consent(lender_staff, subject=LI)
    _seed(3, c=few, subject=ZHANG, staff=other_lender_staff, officer=review_officer, members=[lender_a, lender_b])
    _seed(30, c=many, subject=LI, staff=other_lender_staff, officer=review_officer, members=[lender_a, lender_b])
    post_json(client, "/api/v1/queries", query_body(few), raw)  # warm-up: last_used_at, volume row

    with CaptureQueriesContext(connection) as with_few:
        few_body = post_json(client, "/api/v1/queries", query_body(few), raw).json()
    with django_assert_max_num_queries(20), CaptureQueriesContext(connection) as with_many:
        many_body = post_json(client, "/api/v1/queries", query_body(many, subject=LI), raw).json()

    assert (len(few_body["entries"]), len(many_body["entries"])) == (3, 30)
    assert many_body["multi_lending"]["365"]["queries"] == 30
    assert len(with_few) == len(with_many)


# --- Entries ------------------------------------------------------------------------------------


def entry_form(**overrides) -> dict:
    data = {
        "subject_type": "个人", "id_type": "RIC", "id_number": WANG[0], "name": WANG[1],
        "phone": "+86 138 1234 5678", "role": "borrower", "contract_no": "API-0001",
        "category": "overdue", "loan_amount": "¥12,345.60", "overdue_amount": "2345.60",
        "delinquent_since": (TODAY - 100 * DAY).isoformat(), "notified_on": (TODAY - 20 * DAY).isoformat(),
        "notice_method": "sms",
        "evidence": SimpleUploadedFile("ledger.pdf", PDF, content_type="application/pdf"),
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_an_entry_reported_through_the_api_waits_for_review(client, raw, lender_a, lender_admin):
    response = client.post("/api/v1/entries", entry_form(), **bearer(raw))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending_review"
    assert body["outcome"] == "created"
    entry = Entry.objects.get(pk=body["id"])
    assert (entry.member, entry.submitted_by, entry.loan_amount) == (lender_a, lender_admin, Decimal("12345.60"))
    assert entry.evidence.count() == 1


def test_reporting_the_same_contract_again_changes_nothing_or_updates(client, raw):
    first = client.post("/api/v1/entries", entry_form(evidence=None, category="court_judgment",
                        overdue_amount="", delinquent_since="", court_name="北京市朝阳区人民法院",
                        case_number="（2023）京0105执1234号", judgment_date="2023-05-06"), **bearer(raw))
    same = dict(evidence=None, category="court_judgment", overdue_amount="", delinquent_since="",
                court_name="北京市朝阳区人民法院", case_number="(2023)京0105执1234号",
                judgment_date="2023-05-06")
    again = client.post("/api/v1/entries", entry_form(**same), **bearer(raw))
    changed = client.post("/api/v1/entries", entry_form(**{**same, "loan_amount": "99.00"}), **bearer(raw))

    assert [r.status_code for r in (first, again, changed)] == [201, 201, 201]
    assert [r.json()["outcome"] for r in (first, again, changed)] == ["created", "unchanged", "updated"]
    assert Entry.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        ({"id_number": WANG[0][:-1] + "9"}, {"id_number"}),
        ({"category": "late", "loan_amount": "-1"}, {"category", "loan_amount"}),
        ({"notified_on": None, "contract_no": ""}, {"notified_on", "contract_no"}),
        ({"colour": "red"}, {"colour"}),
        ({"remarks": "a\x00b"}, {"remarks"}),
        ({"name": "王" * 101}, {"name"}),
        ({"loan_amount": "1,000,000,000,000.00"}, {"loan_amount"}),
        ({"category": "court_judgment", "overdue_amount": "", "delinquent_since": "",
          "court_name": "法" * 201, "case_number": "(2023)京0105执1234号", "judgment_date": "2023-05-06"},
         {"court_name"}),
        ({"evidence": SimpleUploadedFile("ledger.pdf", HTML_AS_PDF)}, {"evidence"}),
    ],
)
def test_a_bad_entry_is_400_keyed_by_the_column_alias_and_stores_nothing(client, raw, overrides, fields):
    before = stored()

    error = assert_error(client.post("/api/v1/entries", entry_form(**overrides), **bearer(raw)), 400, "invalid")

    assert set(error["fields"]) == fields
    assert stored() == before


def test_an_entry_without_evidence_is_400(client, raw):
    before = stored()

    response = client.post("/api/v1/entries", entry_form(evidence=None), HTTP_ACCEPT_LANGUAGE="en", **bearer(raw))

    error = assert_error(response, 400, "invalid")
    assert error["message"] == (
        "Evidence is required: attach a file (or give the court case number for a judgment)."
    )
    assert stored() == before


def make_entries(n: int, *, member, staff, prefix: str) -> None:
    subject = registry_services.subject_get_or_create(
        subject_type="person", id_type="RIC", id_number=ric(n % 900, born="19900101"), name="赵六"
    )
    now = timezone.now()
    Entry.objects.bulk_create(
        Entry(
            member=member, subject=subject, subject_role="borrower", contract_no=f"{prefix}-{i:03d}",
            category="fraud", loan_amount=Decimal("1000.00"), notified_on=TODAY, notice_method="sms",
            submitted_by=staff, submitted_at=now - i * datetime.timedelta(minutes=1),
        )
        for i in range(n)
    )


def test_the_entry_list_shows_own_entries_masked_in_pages_without_counting(
    client, raw, lender_a, lender_b, lender_staff, other_lender_staff
):
    make_entries(51, member=lender_a, staff=lender_staff, prefix="A")
    make_entries(2, member=lender_b, staff=other_lender_staff, prefix="B")

    with CaptureQueriesContext(connection) as statements:
        first = client.get("/api/v1/entries", **bearer(raw)).json()
    second = client.get(first["next"], **bearer(raw)).json()
    one = client.get("/api/v1/entries?contract_no=A-007", **bearer(raw)).json()

    assert (len(first["results"]), first["has_next"]) == (50, True)
    assert (len(second["results"]), second["has_next"], second["next"]) == (1, False, None)
    contracts = {e["contract_no"] for e in first["results"] + second["results"]}
    assert contracts == {f"A-{i:03d}" for i in range(51)}
    assert [e["contract_no"] for e in one["results"]] == ["A-007"]
    shown = json.dumps(first, ensure_ascii=False)
    assert "*" in first["results"][0]["id_number_masked"]
    assert ric(51, born="19900101") not in shown and "赵六" not in shown
    assert not [q for q in statements if "COUNT(" in q["sql"].upper()]


def test_the_entry_list_of_another_member_is_not_visible(client, other_raw, lender_a, lender_staff):
    make_entries(3, member=lender_a, staff=lender_staff, prefix="A")

    body = client.get("/api/v1/entries?contract_no=A-001", **bearer(other_raw)).json()

    assert body["results"] == []


@pytest.mark.parametrize("page", ["0", "-3", "abc", "99999999999999999999", "1e3", ""])
def test_a_strange_page_number_is_not_an_error(client, raw, page):
    assert client.get(f"/api/v1/entries?page={page}", **bearer(raw)).status_code == 200


# --- Schema and unknown paths ---------------------------------------------------------------------


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_the_schema_is_a_public_openapi_3_document_of_every_endpoint(client, db):
    response = client.get("/api/v1/schema")

    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.0.")
    assert schema["servers"] == [{"url": "/api/v1"}]
    assert schema["paths"].keys() >= {
        "/consents", "/queries", "/queries/{query_no}", "/batch-screenings", "/entries", "/schema"
    }
    assert set(schema["paths"]["/entries"]) == {"get", "post"}
    assert schema["components"]["securitySchemes"]["bearerKey"] == {
        **schema["components"]["securitySchemes"]["bearerKey"], "type": "http", "scheme": "bearer"
    }
    assert schema["security"] == [{"bearerKey": []}]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (path, method)
            if path != "/schema":
                assert "401" in operation["responses"], (path, method)
    error = schema["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["code", "message", "fields"]
    for ref in _refs(schema):
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in schema["components"][section], ref


def test_an_unknown_api_path_or_method_is_a_json_error(client, raw):
    assert_error(client.get("/api/v1/nothing/here", **bearer(raw)), 404, "not_found")
    assert_error(client.get("/api/v1/queries", **bearer(raw)), 405, "method_not_allowed")
    assert_error(client.delete("/api/v1/entries", **bearer(raw)), 405)
    assert_error(client.post("/api/v1/schema"), 405)


# --- Garbage never gives a 500 -------------------------------------------------------------------

GARBAGE_BODIES = [
    b"",
    b"not json",
    b"\xff\xfe\x00garbage",
    b"[]",
    b"[1, 2, 3]",
    b"null",
    b"42",
    b'"a string"',
    b"{",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"consent_id": ' + b"9" * 5000 + b"}",
    b'{"consent_id": NaN}',
    b'{"consent_id": Infinity}',
    b'{"consent_id": 1e400}',
    json.dumps({}).encode(),
    json.dumps({"id_type": "XX", "id_number": "1", "name": "x", "purpose": "post_loan", "consent_id": 1}).encode(),
    json.dumps({"id_type": "RIC", "id_number": ZHANG[0], "name": "张三", "purpose": "post_loan", "consent_id": 10**30}).encode(),
    json.dumps({"id_type": "RIC", "id_number": ZHANG[0], "name": "张三", "purpose": "post_loan", "consent_id": -1}).encode(),
    json.dumps({"id_type": "RIC", "id_number": ZHANG[0], "name": "\x00", "purpose": "post_loan", "consent_id": 1}).encode(),
    json.dumps({"id_type": None, "id_number": None, "name": None, "purpose": None, "consent_id": None}).encode(),
    json.dumps({"id_type": "RIC", "id_number": ZHANG[0], "name": "张三", "purpose": "loan_approval", "consent_id": 1, "application": {"amount": "9" * 400}}).encode(),
    json.dumps({"purpose": "post_loan", "subjects": "all"}).encode(),
    json.dumps({"purpose": "post_loan", "subjects": []}).encode(),
    json.dumps({"purpose": "loan_approval", "subjects": [{}]}).encode(),
    json.dumps({"purpose": ["post_loan"], "subjects": {"0": {}}}).encode(),
]
JSON_ENDPOINTS = ["/api/v1/queries", "/api/v1/batch-screenings"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("body", GARBAGE_BODIES, ids=lambda b: repr(b[:30]))
def test_garbage_json_is_a_4xx_json_error_and_stores_nothing(client, raw, path, body):
    before = stored()

    response = post_json(client, path, body, raw)

    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    assert stored() == before


MULTIPART_GARBAGE = [
    {},
    {"id_type": "RIC"},
    {"file": "not a file", "evidence": "not a file"},
    {"purposes": ["", ",", "post_loan,,"], "signed_on": "0000-00-00", "expires_on": "9999-99-99"},
    {"id_number": "１１０１０５１９４９１２３１００２ｘ", "name": "张" * 10_000},
    {"loan_amount": "1" * 5000, "notified_on": "2024年13月5日", "phone": "+1 555"},
    {"subject_type": "企业", "id_type": "USCC", "id_number": "91110105MA0TESTA1X"},
]


@pytest.mark.parametrize("path", ["/api/v1/consents", "/api/v1/entries"])
@pytest.mark.parametrize("form", MULTIPART_GARBAGE)
def test_garbage_forms_are_a_400_json_error_and_store_nothing(client, raw, path, form):
    before = stored()

    assert_error(client.post(path, form, **bearer(raw)), 400)
    assert stored() == before


@pytest.mark.parametrize("path", ["/api/v1/consents", "/api/v1/entries"])
def test_a_broken_multipart_body_is_a_400_json_error(client, raw, path):
    response = client.post(
        path, data=b"--xx\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n",
        content_type="multipart/form-data; boundary=xx", **bearer(raw),
    )

    assert_error(response, 400)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
QUERY_KEYS = ["id_type", "id_number", "name", "purpose", "consent_id", "application"]
APPLICATION = st.fixed_dictionaries(
    {}, optional={"amount": JSON_VALUES, "loan_type": JSON_VALUES, "applied_on": JSON_VALUES}
)
QUERY_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id_type": st.sampled_from(["RIC", "USCC", "PASSPORT", "HKMO", "TW", "FPR", "ric", ""]) | JSON_VALUES,
        "id_number": st.sampled_from([ZHANG[0], LI[0], "H12345678"]) | JSON_VALUES,
        "name": st.sampled_from(["张三", "李四"]) | JSON_VALUES,
        "purpose": st.sampled_from(["loan_approval", "post_loan", "guarantor_check", "self"]) | JSON_VALUES,
        "consent_id": st.integers() | JSON_VALUES,
        "application": APPLICATION | JSON_VALUES,
    },
)
BATCH_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "purpose": st.sampled_from(["loan_approval", "guarantor_check", ""]) | JSON_VALUES,
        "subjects": st.lists(QUERY_LIKE, max_size=3) | JSON_VALUES,
    },
)
FUZZ = hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(body=st.one_of(QUERY_LIKE, JSON_VALUES, st.binary(max_size=64)))
def test_fuzzed_queries_are_4xx_json_errors_that_store_nothing(client, raw, body):
    """Without a consent of lender_a on file, no query can run: everything is a 4xx."""
    before = stored()

    response = post_json(client, "/api/v1/queries", body if isinstance(body, bytes) else json.dumps(body), raw)

    assert 400 <= response.status_code < 500, response.content
    assert_error(response, response.status_code)
    assert stored() == before


@FUZZ
@given(body=st.one_of(BATCH_LIKE, JSON_VALUES, st.binary(max_size=64)))
def test_fuzzed_batches_never_fail_and_store_nothing_without_consents(client, raw, body):
    """A well-formed batch of bad subjects is a 201 listing each as invalid or refused;
    anything else is a 4xx. With no consent on file nothing is ever stored."""
    before = stored()

    response = post_json(client, "/api/v1/batch-screenings", body if isinstance(body, bytes) else json.dumps(body), raw)

    assert response.status_code < 500, response.content
    if response.status_code == 201:
        assert {r["status"] for r in response.json()["results"]} <= {"invalid", "refused"}
    else:
        assert_error(response, response.status_code)
    assert stored() == before


FORM_VALUES = st.text(max_size=30) | st.sampled_from(["RIC", ZHANG[0], "post_loan", "2024-01-01", "overdue", "个人"])


@FUZZ
@given(
    path=st.sampled_from(["/api/v1/consents", "/api/v1/entries"]),
    form=st.dictionaries(
        st.sampled_from(["id_type", "id_number", "name", "purposes", "signed_on", "expires_on",
                         "subject_type", "role", "contract_no", "category", "loan_amount",
                         "notified_on", "notice_method", "remarks", "x"]),
        FORM_VALUES, max_size=8,
    ),
)
def test_fuzzed_forms_are_4xx_json_errors_that_store_nothing(client, raw, path, form):
    """No form without a valid file (consents) or evidence and every column (entries) is
    accepted, so every one of these is a 4xx."""
    before = stored()

    response = client.post(path, form, **bearer(raw))

    assert 400 <= response.status_code < 500, response.content
    assert_error(response, response.status_code)
    assert stored() == before
