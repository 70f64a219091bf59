"""The audit log explorer (supervision/views_audit.py): filters, pages without COUNT(*), the
streamed CSV export (itself audit-logged), the chain verification on demand, and who may read.

Characters (tests/conftest.py): reggie (regulator) and pat (platform_admin) read the log; alice
(lender_a) and charlie (lender_b, the outsider) may not, nor may rita (review_officer).
"""

import csv
import datetime
import io

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.audit.services import audit_record
from supervision.views_audit import CHAIN_CACHE_KEY

SH = datetime.timezone(datetime.timedelta(hours=8))


def at(y, m, d, hh=12) -> datetime.datetime:
    return datetime.datetime(y, m, d, hh, tzinfo=SH)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def no_cached_chain_report():
    cache.delete(CHAIN_CACHE_KEY)
    yield
    cache.delete(CHAIN_CACHE_KEY)


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def events(lender_staff, other_lender_staff, review_officer, lender_a, lender_b):
    """Five events: who, institution, action, object and time all differ."""
    return {
        "a1": audit_record(actor=lender_staff, action="entry.report", target_type="registry.entry",
                           target_id=11, now=at(2026, 2, 1)),
        "a2": audit_record(actor=lender_staff, action="consent.upload", target_type="billing.consent",
                           target_id=5, now=at(2026, 2, 10)),
        "b1": audit_record(actor=other_lender_staff, action="entry.report", target_type="registry.entry",
                           target_id=12, now=at(2026, 2, 15)),
        "r1": audit_record(actor=review_officer, action="entry.approve", target_type="registry.entry",
                           target_id=11, now=at(2026, 2, 28, 23)),
        "s1": audit_record(actor=None, action="entry.expire", target_type="registry.entry",
                           institution=lender_b, now=at(2026, 3, 1, 1)),
    }


def shown(response) -> list[int]:
    """The seqs on the page, leaving out the reader's own sign-in and the explorer's audit.view
    rows."""
    return [e.seq for e in response.context["page"] if e.action not in ("audit.view", "auth.login")]


def seqs(events, *names) -> list[int]:
    return sorted((events[n].seq for n in names), reverse=True)


@pytest.fixture
def as_regulator(client, login, regulator):
    login(client, regulator)
    return client


def get_log(client, **params):
    return client.get(reverse("supervision:audit_log"), params)


# --- Filters ----------------------------------------------------------------------------------


def test_every_event_newest_first_without_filters(as_regulator, events):
    assert shown(get_log(as_regulator)) == seqs(events, "a1", "a2", "b1", "r1", "s1")


def test_filter_by_actor(as_regulator, events):
    assert shown(get_log(as_regulator, actor="alice")) == seqs(events, "a1", "a2")
    assert shown(get_log(as_regulator, actor="nobody")) == []


def test_filter_by_member_institution(as_regulator, events, lender_b):
    assert shown(get_log(as_regulator, member=lender_b.pk)) == seqs(events, "b1", "s1")


def test_filter_by_action_exact_or_by_prefix(as_regulator, events):
    assert shown(get_log(as_regulator, action="entry.report")) == seqs(events, "a1", "b1")
    assert shown(get_log(as_regulator, action="entry.*")) == seqs(events, "a1", "b1", "r1", "s1")


def test_filter_by_object(as_regulator, events):
    assert shown(get_log(as_regulator, target_type="registry.entry", target_id="11")) == seqs(events, "a1", "r1")
    assert shown(get_log(as_regulator, target_type="billing.consent")) == seqs(events, "a2")


def test_filter_by_time_range_in_beijing_days_inclusive(as_regulator, events):
    # r1 is 28 February 23:00 in Beijing (15:00 UTC); s1 is 1 March 01:00 (28 February in UTC).
    assert shown(get_log(as_regulator, since="2026-02-10", until="2026-02-28")) == seqs(events, "a2", "b1", "r1")
    assert shown(get_log(as_regulator, since="2026-03-01")) == seqs(events, "s1")


def test_filters_combine(as_regulator, events):
    assert shown(get_log(as_regulator, action="entry.report", actor="charlie", until="2026-02-28")) == seqs(events, "b1")


def test_a_reversed_time_range_is_refused(as_regulator, events):
    response = get_log(as_regulator, since="2026-03-01", until="2026-02-01")

    assert response.context["form"].errors
    assert shown(response)  # the unfiltered log, not an error page


def test_pages_are_cut_without_counting_rows(as_regulator, regulator):
    for i in range(55):
        audit_record(actor=regulator, action="test.event", target_id=i)

    with CaptureQueriesContext(connection) as ctx:
        first = get_log(as_regulator, action="test.event")
    second = get_log(as_regulator, action="test.event", page=2)

    assert len(first.context["page"]) == 50 and first.context["page"].has_next
    assert len(second.context["page"]) == 5 and not second.context["page"].has_next
    assert not [q for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
    assert "page=2" in first.content.decode()


def test_reading_the_log_is_itself_logged(as_regulator, regulator, events):
    get_log(as_regulator, action="entry.report")

    view = AuditEvent.objects.filter(action="audit.view").get()
    assert view.actor == regulator
    assert view.details == {"filters": {"action": "entry.report"}, "page": 1}


# --- Export -----------------------------------------------------------------------------------


def export_rows(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_the_export_streams_the_filtered_events_as_csv(as_regulator, events):
    response = as_regulator.get(reverse("supervision:audit_export"), {"actor": "alice"})

    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = export_rows(response)
    assert rows[0] == ["Sequence", "Time", "Actor", "Institution", "Action", "Object type", "Object id",
                       "IP address", "Details", "Hash"]
    assert [r[0] for r in rows[1:]] == [str(s) for s in seqs(events, "a1", "a2")]
    assert rows[1][1:7] == ["2026-02-10T12:00:00+08:00", "alice", "甲小额贷款有限公司", "consent.upload",
                            "billing.consent", "5"]
    assert rows[1][9] == events["a2"].hash


def test_every_export_is_audit_logged(as_regulator, regulator, events, lender_b):
    export_rows(as_regulator.get(reverse("supervision:audit_export"), {"member": lender_b.pk, "action": "entry.*"}))

    logged = AuditEvent.objects.filter(action="audit.export").get()
    assert logged.actor == regulator
    assert logged.details == {"filters": {"member": lender_b.pk, "action": "entry.*"}}


def test_the_export_cannot_smuggle_a_formula(as_regulator, regulator):
    audit_record(actor=regulator, action="test.event", target_type="x", target_id="=1+1")

    rows = export_rows(as_regulator.get(reverse("supervision:audit_export"), {"action": "test.event"}))

    assert rows[1][6] == "'=1+1"


# --- Chain verification -----------------------------------------------------------------------


def test_the_chain_is_verified_on_demand_and_the_result_shown(as_regulator, events):
    before = get_log(as_regulator)
    assert before.context["chain"] is None
    assert "Not verified in the last few minutes." in before.content.decode()

    response = as_regulator.post(reverse("supervision:audit_verify"), follow=True)

    chain = response.context["chain"]
    verified = AuditEvent.objects.filter(action="audit.verify").get()
    head_then = AuditEvent.objects.filter(seq=verified.seq - 1).get()
    assert chain["ok"] is True
    assert chain["count"] == verified.seq - 1
    assert chain["head_hash"] == head_then.hash
    html = response.content.decode()
    assert "Intact" in html
    assert head_then.hash in html
    assert "runs only when you press the button" in html
    assert verified.details == {"ok": True, "count": verified.seq - 1, "broken_at": None}


def test_a_broken_chain_is_shown_with_where_it_breaks(as_regulator, events):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute("UPDATE audit_auditevent SET action = %s WHERE seq = %s", ["entry.forged", events["b1"].seq])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    response = as_regulator.post(reverse("supervision:audit_verify"), follow=True)

    assert response.context["chain"]["ok"] is False
    assert response.context["chain"]["broken_at"] == events["b1"].seq
    assert "Broken" in response.content.decode()


def test_the_current_head_is_always_shown(as_regulator, events):
    response = get_log(as_regulator)

    head = response.context["head"]
    assert head["seq"] == AuditEvent.objects.order_by("-seq").first().seq
    assert head["hash"] in response.content.decode()


# --- Access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["lender_staff", "lender_admin", "other_lender_staff", "review_officer",
                                  "counter_clerk"])
def test_only_regulators_and_platform_admins_read_the_log(client, login, request, role, events):
    login(client, request.getfixturevalue(role))

    assert client.get(reverse("supervision:audit_log")).status_code == 403
    assert client.get(reverse("supervision:audit_export")).status_code == 403
    assert client.post(reverse("supervision:audit_verify")).status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="audit.").exists()


def test_a_platform_admin_reads_the_log(client, login, platform_admin, events):
    login(client, platform_admin)

    assert shown(get_log(client, actor="alice")) == seqs(events, "a1", "a2")
    nav = [i["url"] for i in client.get(reverse("accounts:home"), follow=True).context["nav_items"]]
    assert reverse("supervision:audit_log") in nav
    assert reverse("supervision:dashboard") not in nav
