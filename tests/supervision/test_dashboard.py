"""The regulator's market dashboard (supervision/dashboard.py, views_dashboard.py): every
aggregate against numbers worked out by hand on a small register, months in Beijing time, the
nightly pre-aggregation of entries and queries (MarketStat), the CSV of each table, the SVG
charts, who may see it, and a constant number of SQL statements.

Characters (tests/conftest.py): reggie (regulator) reads the dashboard; alice and anna work for
lender_a (北京市), charlie and chris for lender_b (上海市) — none of them may see it.

The register, with "now" at 15 March 2026 12:00 in Shanghai and a 3-month window
(January–March 2026):

entry  member  category            status          submitted (Shanghai)   settled     kept until
e1     a       overdue             active          2026-01-10
e2     a       overdue             settled         2026-01-20             2026-02-05
e3     a       fraud               active          2026-02-01 00:30 (31 Jan in UTC)
e4     a       court_judgment      expired         2025-06-01             2020-01-01  2026-03-01
e5     a       overdue             pending_review  2026-03-02
e6     b       fraud               active          2026-03-10
e7     b       malicious_default   settled         2026-01-01 07:00 (31 Dec in UTC)  2026-03-01
e8     b       overdue             revoked         2026-02-14
"""

import csv
import datetime
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation
from stdnum.cn import ric as stdnum_ric

from billing.models import Query
from disputes.models import Dispute
from registry import services as registry_services
from registry.models import Entry
from supervision import charts, dashboard

SH = datetime.timezone(datetime.timedelta(hours=8))
NOW = datetime.datetime(2026, 3, 15, 12, 0, tzinfo=SH)


def at(y, m, d, hh=12, mm=0) -> datetime.datetime:
    return datetime.datetime(y, m, d, hh, mm, tzinfo=SH)


def subject(n: int = 1):
    body = f"11010519800101{n:03d}"
    return registry_services.subject_get_or_create(
        subject_type="person", id_type="RIC", id_number=body + stdnum_ric.calc_check_digit(body + "0"),
        name="张三",
    )


_counter = iter(range(1, 1_000_000))


def entry(member, reporter, *, category="overdue", status="active", submitted_at, settled_on=None,
          retention_until=None) -> Entry:
    n = next(_counter)
    return Entry.objects.create(
        member=member, subject=subject(n % 7), subject_role="borrower", contract_no=f"HT-{n:05d}",
        category=category, status=status, loan_amount="10000.00", notified_on=datetime.date(2025, 1, 1),
        notice_method="letter", settled_on=settled_on, retention_until=retention_until,
        submitted_by=reporter, submitted_at=submitted_at,
    )


def query(member, *, channel="web", purpose="loan_approval", created_at) -> Query:
    n = next(_counter)
    s = subject(1)
    return Query.objects.create(
        query_no=f"Q{n:08d}", member=member, channel=channel, purpose=purpose, id_type="RIC",
        subject_index=s.id_index, subject=s, id_masked=s.id_masked, name_masked=s.name_masked,
        hit=False, created_at=created_at,
    )


def dispute(entries, *, taker, received_at, decided_at=None, decision="", reconsideration="") -> Dispute:
    n = next(_counter)
    d = Dispute.objects.create(
        receipt_no=f"YY{n:08d}", subject=entries[0].subject, claim_type="other", description="—",
        applicant_name="张三", applicant_name_masked="张*", channel="counter", taken_by=taker,
        status="decided" if decided_at else "assigned", received_at=received_at,
        decision_due_at=received_at + datetime.timedelta(days=20), decided_at=decided_at,
        decision=decision, reconsideration=reconsideration,
    )
    d.entries.set(entries)
    return d


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def register(lender_a, lender_b, lender_staff, other_lender_staff):
    a, b = lender_staff, other_lender_staff
    e = {
        1: entry(lender_a, a, submitted_at=at(2026, 1, 10)),
        2: entry(lender_a, a, status="settled", submitted_at=at(2026, 1, 20),
                 settled_on=datetime.date(2026, 2, 5), retention_until=datetime.date(2031, 2, 5)),
        3: entry(lender_a, a, category="fraud", submitted_at=at(2026, 2, 1, 0, 30)),
        4: entry(lender_a, a, category="court_judgment", status="expired", submitted_at=at(2025, 6, 1),
                 settled_on=datetime.date(2020, 1, 1), retention_until=datetime.date(2026, 3, 1)),
        5: entry(lender_a, a, status="pending_review", submitted_at=at(2026, 3, 2)),
        6: entry(lender_b, b, category="fraud", submitted_at=at(2026, 3, 10)),
        7: entry(lender_b, b, category="malicious_default", status="settled", submitted_at=at(2026, 1, 1, 7),
                 settled_on=datetime.date(2026, 3, 1), retention_until=datetime.date(2031, 3, 1)),
        8: entry(lender_b, b, status="revoked", submitted_at=at(2026, 2, 14)),
    }
    return e


@pytest.fixture
def queries(lender_a, lender_b):
    query(lender_a, channel="web", purpose="loan_approval", created_at=at(2026, 1, 5))
    query(lender_a, channel="api", purpose="post_loan", created_at=at(2026, 3, 1, 1))  # 28 Feb in UTC
    query(lender_b, channel="counter", purpose="guarantor_check", created_at=at(2026, 2, 10))
    query(lender_b, channel="web", purpose="loan_approval", created_at=at(2026, 2, 11))
    query(lender_a, channel="web", purpose="loan_approval", created_at=at(2025, 12, 20))  # before


@pytest.fixture
def disputes(register, counter_clerk):
    """d1 a/Jan on time corrected; d2 a late upheld; d3 b decided exactly at the deadline,
    deleted; d4 b corrected then reconsidered upheld; d5 about a and b, undecided."""
    e, t = register, counter_clerk
    d1 = dispute([e[1]], taker=t, received_at=at(2026, 1, 5), decided_at=at(2026, 1, 20), decision="corrected")
    d2 = dispute([e[2]], taker=t, received_at=at(2026, 1, 10), decided_at=at(2026, 2, 2), decision="upheld")
    d3 = dispute([e[6]], taker=t, received_at=at(2026, 2, 3), decided_at=None)
    Dispute.objects.filter(pk=d3.pk).update(decided_at=d3.decision_due_at, decision="deleted", status="decided")
    d4 = dispute([e[7]], taker=t, received_at=at(2026, 2, 20), decided_at=at(2026, 3, 5), decision="corrected",
                 reconsideration="upheld")
    d5 = dispute([e[1], e[6]], taker=t, received_at=at(2026, 3, 1))
    return d1, d2, d3, d4, d5


def win():
    return dashboard.window(months=3, now=NOW)


def as_dict(table):
    return {row[0]: row[1:] for row in table.rows}


# --- The aggregates ---------------------------------------------------------------------------


def test_the_window_is_calendar_months_in_shanghai():
    w = win()

    assert w.months == [datetime.date(2026, 1, 1), datetime.date(2026, 2, 1), datetime.date(2026, 3, 1)]
    assert w.start == at(2026, 1, 1, 0, 0)
    assert w.end == at(2026, 4, 1, 0, 0)


def test_entries_on_the_register_by_category(register, lender_a):
    dashboard.market_stats_rebuild(now=NOW)

    market = as_dict(dashboard.entries_by_category())
    member = as_dict(dashboard.entries_by_category(member_id=lender_a.pk))

    assert market == {"Overdue": [2], "Loan fraud": [2], "Malicious default": [1],
                      "Guarantor liability": [0], "Unexecuted court judgment": [0]}
    assert member == {"Overdue": [2], "Loan fraud": [1], "Malicious default": [0],
                      "Guarantor liability": [0], "Unexecuted court judgment": [0]}


def test_entries_on_the_register_by_region(register, lender_b):
    dashboard.market_stats_rebuild(now=NOW)

    assert dashboard.entries_by_region().rows == [["北京市", 3], ["上海市", 2]]
    assert dashboard.entries_by_region(member_id=lender_b.pk).rows == [["上海市", 2]]


def test_new_settled_and_expired_entries_per_month(register, lender_a):
    dashboard.market_stats_rebuild(now=NOW)

    table = dashboard.entries_by_month(win=win())

    # New: e1, e2, e7 (1 Jan 07:00 in Shanghai) in January; e3 (1 Feb 00:30) and e8 in
    # February; e5, e6 in March. Settled: e2 in February, e7 in March. Expired: e4 in March.
    assert table.rows == [["2026-01", 3, 0, 0], ["2026-02", 2, 1, 0], ["2026-03", 2, 1, 1]]
    assert dashboard.entries_by_month(win=win(), member_id=lender_a.pk).rows == [
        ["2026-01", 2, 0, 0], ["2026-02", 1, 1, 0], ["2026-03", 1, 0, 1],
    ]


def test_queries_per_month_by_channel(queries, lender_a):
    dashboard.market_stats_rebuild(now=NOW)

    table = dashboard.queries_by_channel(win=win())

    assert table.columns == ["Month", "Web portal", "Offline counter", "API", "Batch screening", "Total"]
    assert table.rows == [["2026-01", 1, 0, 0, 0, 1], ["2026-02", 1, 1, 0, 0, 2], ["2026-03", 0, 0, 1, 0, 1]]
    assert dashboard.queries_by_channel(win=win(), member_id=lender_a.pk).rows == [
        ["2026-01", 1, 0, 0, 0, 1], ["2026-02", 0, 0, 0, 0, 0], ["2026-03", 0, 0, 1, 0, 1],
    ]


def test_queries_per_month_by_purpose(queries):
    dashboard.market_stats_rebuild(now=NOW)

    table = dashboard.queries_by_purpose(win=win())

    assert table.columns == ["Month", "Loan approval", "Post-loan management", "Guarantor check",
                             "Self-query", "Total"]
    assert table.rows == [["2026-01", 1, 0, 0, 0, 1], ["2026-02", 1, 0, 1, 0, 2], ["2026-03", 0, 1, 0, 0, 1]]


def test_dispute_volumes_per_month(disputes):
    dashboard.market_stats_rebuild(now=NOW)

    volumes, _rates = dashboard.dispute_tables(win=win())

    # Received, decided, decided on time, corrected or deleted (after reconsideration).
    assert volumes.rows == [["2026-01", 2, 1, 1, 1], ["2026-02", 2, 2, 1, 1], ["2026-03", 1, 1, 1, 0]]


def test_on_time_rate_and_share_corrected_or_deleted(disputes):
    dashboard.market_stats_rebuild(now=NOW)

    _volumes, rates = dashboard.dispute_tables(win=win())

    # February: d2 late and upheld, d3 decided at the very deadline (on time) and deleted.
    # March: d4 was corrected, but the reconsideration upheld the entry.
    assert rates.rows == [["2026-01", 1, 100, 100], ["2026-02", 2, 50, 50], ["2026-03", 1, 100, 0]]


def test_a_month_without_decisions_has_no_rate(disputes, lender_b):
    dashboard.market_stats_rebuild(now=NOW)

    _volumes, rates = dashboard.dispute_tables(win=win(), member_id=lender_b.pk)

    assert rates.rows == [["2026-01", 0, None, None], ["2026-02", 1, 100, 100], ["2026-03", 1, 100, 0]]


def test_disputes_of_one_member_are_those_about_its_entries(disputes, lender_a):
    dashboard.market_stats_rebuild(now=NOW)

    volumes, _rates = dashboard.dispute_tables(win=win(), member_id=lender_a.pk)

    assert volumes.rows == [["2026-01", 2, 1, 1, 1], ["2026-02", 0, 1, 0, 0], ["2026-03", 1, 0, 0, 0]]


def test_disputes_per_member(disputes, lender_a):
    dashboard.market_stats_rebuild(now=NOW)

    table = dashboard.disputes_by_member(win=win())

    # d5 is about both members, so it counts for each.
    assert as_dict(table) == {"甲小额贷款有限公司": [3, 2, 50, 50], "乙小额贷款有限公司": [3, 2, 100, 50]}
    assert dashboard.disputes_by_member(win=win(), member_id=lender_a.pk).rows == [
        ["甲小额贷款有限公司", 3, 2, 50, 50],
    ]


def test_the_page_shows_every_table_beside_its_chart(client, login, regulator, register, queries, disputes):
    login(client, regulator)

    response = client.get(reverse("supervision:dashboard"))

    assert response.status_code == 200
    keys = [table.key for table, _chart in response.context["blocks"]]
    assert keys == list(dashboard.TABLES)
    html = response.content.decode()
    assert html.count("<svg") == len(dashboard.TABLES)
    for key in dashboard.TABLES:
        assert reverse("supervision:dashboard_csv", args=[key]) in html
    assert "甲小额贷款有限公司" in html
    assert " style=" not in html  # the CSP forbids style attributes


def test_the_member_filter_narrows_every_table(client, login, regulator, register, lender_b):
    login(client, regulator)

    response = client.get(reverse("supervision:dashboard"), {"member": lender_b.pk, "months": 36})

    blocks = {t.key: t for t, _chart in response.context["blocks"]}
    assert response.context["member"] == lender_b
    assert blocks["entries_by_region"].rows == [["上海市", 2]]
    assert len(blocks["entries_by_month"].rows) == 36


def test_an_unknown_member_shows_the_market(client, login, regulator, register):
    login(client, regulator)

    response = client.get(reverse("supervision:dashboard"), {"member": "999999"})

    assert response.status_code == 200
    assert response.context["member"] is None
    assert response.context["form"].errors


# --- CSV --------------------------------------------------------------------------------------


def csv_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_each_table_downloads_as_csv(client, login, regulator, register):
    login(client, regulator)

    response = client.get(reverse("supervision:dashboard_csv", args=["entries_by_category"]))

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="entries_by_category-market-' in response["Content-Disposition"]
    assert csv_rows(response) == [
        ["Category", "Entries"], ["Overdue", "2"], ["Loan fraud", "2"], ["Malicious default", "1"],
        ["Guarantor liability", "0"], ["Unexecuted court judgment", "0"],
    ]


def test_the_csv_follows_the_filters_and_leaves_rates_blank_without_data(
    client, login, regulator, disputes, lender_b
):
    login(client, regulator)

    response = client.get(reverse("supervision:dashboard_csv", args=["dispute_rates_by_month"]),
                          {"member": lender_b.pk, "months": 6})

    rows = csv_rows(response)
    assert rows[0] == ["Month", "Decided", "On-time rate (%)", "Corrected or deleted (%)"]
    assert len(rows) == 1 + 6
    assert f'member-{lender_b.pk}' in response["Content-Disposition"]


def test_the_csv_of_a_member_name_cannot_become_a_formula(client, login, regulator, lender_a, lender_staff, counter_clerk):
    lender_a.name = "=HYPERLINK(\"x\")"
    lender_a.save()
    e = entry(lender_a, lender_staff, submitted_at=at(2026, 1, 10))
    dispute([e], taker=counter_clerk, received_at=dashboard.window().start)
    login(client, regulator)

    rows = csv_rows(client.get(reverse("supervision:dashboard_csv", args=["disputes_by_member"])))

    assert rows[1][0] == "'=HYPERLINK(\"x\")"


def test_an_unknown_table_is_a_404(client, login, regulator):
    login(client, regulator)

    assert client.get(reverse("supervision:dashboard_csv", args=["users"])).status_code == 404


# --- Charts -----------------------------------------------------------------------------------


def test_bar_chart_draws_one_bar_per_nonzero_row_and_escapes_labels():
    svg = charts.bar_chart(["<b>甲</b>", "乙", "丙"], [4, 0, 2], title="T & co")

    assert svg.count("<rect") == 2
    assert "&lt;b&gt;甲&lt;/b&gt;" in svg
    assert "<b>" not in svg
    assert 'aria-label="T &amp; co"' in svg


def test_line_chart_breaks_the_line_where_a_value_is_missing():
    svg = charts.line_chart(["1", "2", "3", "4", "5"], [("rate", [50, 60, None, 70, 80])], title="t", percent=True)

    assert svg.count("<polyline") == 2
    assert svg.count("<circle") == 4
    assert "100%" in svg  # a percentage axis runs to 100


def test_a_chart_without_data_says_so():
    assert "No data" in charts.line_chart(["2026-01"], [("n", [0])], title="t")
    assert "No data" in charts.bar_chart([], [], title="t")


def test_round_axis_maximum():
    assert [charts.nice_max(v) for v in (0, 3, 7, 10, 11, 180, 2400)] == [1, 5, 10, 10, 20, 200, 5000]


# --- Access and cost --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["lender_staff", "lender_admin", "other_lender_staff", "other_lender_admin",
                                  "review_officer", "platform_admin"])
def test_only_regulators_see_the_dashboard(client, login, request, role):
    login(client, request.getfixturevalue(role))

    assert client.get(reverse("supervision:dashboard")).status_code == 403
    assert client.get(reverse("supervision:dashboard_csv", args=["entries_by_region"])).status_code == 403
    assert client.post(reverse("supervision:dashboard_refresh")).status_code == 403


def test_the_regulator_finds_the_dashboard_in_the_navigation(client, login, regulator):
    login(client, regulator)

    home = client.get(reverse("accounts:home"), follow=True)
    nav = [i["url"] for i in home.context["nav_items"]]
    tasks = [t["url"] for t in home.context["tasks"]]

    assert {reverse("supervision:dashboard"), reverse("supervision:audit_log"),
            reverse("supervision:quality_list"), reverse("supervision:sample_list")} <= set(nav)
    assert {reverse("supervision:dashboard"), reverse("supervision:audit_log")} <= set(tasks)


def _statements(client, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("supervision:dashboard"), params).status_code == 200
    return len(ctx.captured_queries)


def test_the_counts_are_as_of_the_last_build(register, lender_a, lender_staff):
    dashboard.market_stats_rebuild(now=NOW)
    entry(lender_a, lender_staff, category="fraud", submitted_at=at(2026, 3, 14))

    before = as_dict(dashboard.entries_by_category())["Loan fraud"]
    dashboard.market_stats_rebuild(now=NOW)

    assert (before, as_dict(dashboard.entries_by_category())["Loan fraud"]) == ([2], [3])
    assert dashboard.market_stats_as_of() == NOW


def test_rebuilding_twice_stores_the_same_counts(register, queries):
    def stored():
        return sorted(dashboard.MarketStat.objects.values_list("metric", "month", "member_id", "key", "count"))

    first = dashboard.market_stats_rebuild(now=NOW)
    rows = stored()
    second = dashboard.market_stats_rebuild(now=NOW)

    assert first == len(rows) > 0
    assert second == len(rows) - 2  # January's two query rows were kept, not recounted
    assert stored() == rows


def test_closed_query_months_are_not_recounted_but_recent_ones_are(queries, lender_a):
    dashboard.market_stats_rebuild(now=NOW)
    # The query log is immutable, so a closed month's count is kept as stored: mark January's
    # to see that the nightly run leaves it alone, and that only a full rebuild recounts it.
    dashboard.MarketStat.objects.filter(metric="queries", month=datetime.date(2026, 1, 1)).update(count=7)
    query(lender_a, channel="batch", purpose="post_loan", created_at=at(2026, 3, 14))

    dashboard.market_stats_rebuild(now=NOW)
    incremental = dashboard.queries_by_channel(win=win()).rows
    dashboard.market_stats_rebuild(now=NOW, full=True)
    full = dashboard.queries_by_channel(win=win()).rows

    assert incremental == [["2026-01", 7, 0, 0, 0, 7], ["2026-02", 1, 1, 0, 0, 2], ["2026-03", 0, 0, 1, 1, 2]]
    assert full[0] == ["2026-01", 1, 0, 0, 0, 1]


def test_a_regulator_asks_for_a_recount(client, login, regulator, register, lender_a, lender_staff,
                                       django_capture_on_commit_callbacks):
    login(client, regulator)
    client.get(reverse("supervision:dashboard"))  # the first visit counts
    entry(lender_a, lender_staff, category="guarantor_default", submitted_at=at(2026, 3, 14))

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("supervision:dashboard_refresh"))
    page = client.get(reverse("supervision:dashboard"))

    assert response["Location"] == reverse("supervision:dashboard")
    blocks = {t.key: t for t, _chart in page.context["blocks"]}
    assert as_dict(blocks["entries_by_category"])["Guarantor liability"] == [1]
    assert "Recount now" in page.content.decode()
    assert page.context["as_of"] is not None


def test_the_nightly_recount_is_scheduled(register):
    from django.conf import settings

    from blacklist_portal.celery import app as celery_app
    from supervision.tasks_dashboard import market_stats

    assert settings.CELERY_BEAT_SCHEDULE["supervision-market-stats"]["task"] == "supervision.market_stats"
    assert "supervision.market_stats" in celery_app.tasks
    assert market_stats.delay().get() > 0
    assert as_dict(dashboard.entries_by_category())["Overdue"] == [2]


def test_the_page_costs_the_same_sql_for_10_and_100_entries(
    client, login, regulator, lender_a, lender_b, lender_staff, counter_clerk
):
    login(client, regulator)

    def add(n):
        for i in range(n):
            e = entry(lender_a if i % 2 else lender_b, lender_staff, category=dashboard.Category.values[i % 5],
                      submitted_at=dashboard.window().start + datetime.timedelta(days=i % 300))
            query(e.member, created_at=e.submitted_at)
            if i % 5 == 0:
                dispute([e], taker=counter_clerk, received_at=e.submitted_at,
                        decided_at=e.submitted_at + datetime.timedelta(days=3), decision="upheld")

    add(10)
    dashboard.market_stats_rebuild()
    small = _statements(client)
    small_member = _statements(client, member=lender_a.pk)
    add(90)
    dashboard.market_stats_rebuild()

    assert Entry.objects.count() == 100
    assert sum(n for _c, n in dashboard.entries_by_category().rows) == 100
    assert _statements(client) == small
    assert _statements(client, member=lender_a.pk) == small_member
