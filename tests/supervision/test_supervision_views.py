"""The supervision pages: complaint intake at the counter and the regulators' queue, violations
and sanctions, query alerts, a member's own sanctions and complaints. Members never see another
member's complaints or sanctions (404); regulators read everything, every reading of personal
data is logged, and no supervision page changes a member's entries, queries or consents — nor
can a regulator change them elsewhere. Every form control is labelled."""

import datetime
import hashlib
import html
import re
from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone, translation

from billing.models import Consent, Query, Statement
from blacklist_portal.accounts.roles import HOME_TASKS, Role
from blacklist_portal.audit.models import AuditEvent
from registry import services as registry
from registry.importing.rows import parse_row
from registry.models import Entry
from supervision import services
from supervision.models import Complaint, QueryAlert, Sanction, Violation, ViolationEvidence

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
TODAY = timezone.localdate()
DAY = datetime.timedelta(days=1)
NAME, CONTACT = "王小明", "北京市朝阳区建国路1号 13912345678"


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def receive(actor, member, **overrides) -> Complaint:
    values = {"complainant_name": NAME, "complainant_contact": CONTACT, "channel": "counter",
              "summary": "夜间催收电话", "description": "晚上十一点以后多次打电话。"}
    values.update(overrides)
    return services.complaint_receive(actor=actor, member=member, **values)


@pytest.fixture
def complaint(counter_clerk, lender_a) -> Complaint:
    return receive(counter_clerk, lender_a)


@pytest.fixture
def others_complaint(counter_clerk, lender_b) -> Complaint:
    return receive(counter_clerk, lender_b, summary="乙公司的投诉")


def violation_of(regulator, member) -> Violation:
    return services.violation_record(actor=regulator, member=member, type="misuse", description="超范围查询")


def sanction_on(regulator, member, reason="违规查询") -> Sanction:
    return services.sanction_impose(
        actor=regulator, violation=violation_of(regulator, member), kind="suspension", reason=reason,
        suspends_queries=True, starts_on=TODAY, ends_on=TODAY + 9 * DAY,
    )


def url(name: str, *args) -> str:
    return reverse(f"supervision:{name}", args=args)


# --- Labelled controls ------------------------------------------------------------------------------


class _Controls(HTMLParser):
    """Form controls and the labels that point at them, inside <main>."""

    def __init__(self):
        super().__init__()
        self.in_main = False
        self.controls: list[dict] = []
        self.label_for: set[str] = set()
        self.submits: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "main":
            self.in_main = True
        if not self.in_main:
            return
        if tag == "label" and attrs.get("for"):
            self.label_for.add(attrs["for"])
        elif tag in ("select", "textarea") or (
            tag == "input" and attrs.get("type") not in ("hidden", "submit", "button")
        ):
            self.controls.append({"tag": tag, **attrs})
        elif tag == "button" and attrs.get("type", "submit") == "submit":
            self.submits.append(attrs)

    def handle_endtag(self, tag):
        if tag == "main":
            self.in_main = False


def controls(response) -> _Controls:
    assert response.status_code == 200
    parser = _Controls()
    parser.feed(response.content.decode())
    return parser


def unlabelled(parser: _Controls) -> list:
    return [c.get("name") for c in parser.controls if not c.get("id") or c["id"] not in parser.label_for]


@pytest.fixture
def everything(counter_clerk, regulator, lender_a, complaint):
    """A complaint assigned to the regulator, a violation with a suspension, an open alert."""
    services.complaint_assign(complaint=complaint, actor=regulator, assignee=regulator)
    sanction = sanction_on(regulator, lender_a)
    alert = QueryAlert.objects.create(rule="night", member=lender_a, day=TODAY - DAY, created_at=timezone.now(),
                                      details={"count": 5})
    return {"complaint": complaint, "sanction": sanction, "violation": sanction.violation, "alert": alert}


def test_every_control_on_the_regulators_pages_is_labelled(client, login, regulator, everything):
    login(client, regulator)
    pages = [
        url("complaint_list"), url("complaint_intake"), url("complaint_detail", everything["complaint"].pk),
        url("violation_create"), url("violation_detail", everything["violation"].pk),
        url("sanction_detail", everything["sanction"].pk), url("alert_list"),
        url("alert_detail", everything["alert"].pk),
    ]
    counted = 0
    for page in pages:
        parser = controls(client.get(page))
        assert unlabelled(parser) == [], page
        counted += len(parser.controls)
    assert counted >= 25


def test_the_counter_intake_form_is_labelled_and_submits_by_access_key(client, login, counter_clerk):
    login(client, counter_clerk)

    parser = controls(client.get(url("complaint_intake")))

    assert {c.get("name") for c in parser.controls} == {
        "member", "complainant_name", "complainant_contact", "channel", "summary", "description"}
    assert unlabelled(parser) == []
    assert [s.get("accesskey") for s in parser.submits] == ["s"]


# --- Complaint intake at the counter -------------------------------------------------------------------


def test_a_counter_clerk_takes_a_complaint_and_prints_the_receipt(client, login, counter_clerk, lender_a, regulator):
    login(client, counter_clerk)

    response = client.post(url("complaint_intake"), {
        "member": lender_a.pk, "complainant_name": NAME, "complainant_contact": CONTACT, "channel": "letter",
        "summary": "暴力催收", "description": "多次上门。",
    }, follow=True)

    complaint = Complaint.objects.get()
    assert response.redirect_chain[-1][0] == url("complaint_receipt", complaint.pk)
    receipt = page_text(response)
    assert complaint.receipt_no in receipt
    assert "王**" in receipt and NAME not in receipt and "13912345678" not in receipt
    assert f"{timezone.localtime(complaint.due_at):%Y-%m-%d}" in receipt
    assert (complaint.channel, complaint.taken_by) == ("letter", counter_clerk)
    assert AuditEvent.objects.filter(action="complaint.receipt", actor=counter_clerk).exists()
    assert complaint.receipt_no in page_text(client.get(url("complaints_taken")))


def test_the_intake_form_says_what_is_missing(client, login, counter_clerk):
    login(client, counter_clerk)

    response = client.post(url("complaint_intake"), {"complainant_name": NAME})

    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"member", "complainant_contact", "channel", "summary", "description"}
    assert not Complaint.objects.exists()


def test_members_and_review_officers_cannot_take_complaints(client, login, lender_staff, review_officer):
    for user in (lender_staff, review_officer):
        client.logout()
        login(client, user)
        assert client.get(url("complaint_intake")).status_code == 403


def test_the_intake_offers_only_member_institutions(client, login, counter_clerk, lender_a, lender_b, operator):
    login(client, counter_clerk)

    choices = set(client.get(url("complaint_intake")).context["form"].fields["member"].queryset)

    assert choices == {lender_a, lender_b}


# --- The regulators' complaint queue -------------------------------------------------------------------


def test_the_queue_lists_open_complaints_earliest_due_first_with_the_time_left(
    client, login, counter_clerk, regulator, lender_a, lender_b
):
    now = timezone.now()
    later = receive(counter_clerk, lender_a, now=now - 2 * DAY)
    sooner = receive(counter_clerk, lender_b, now=now - 29 * DAY)
    overdue = receive(counter_clerk, lender_a, now=now - 35 * DAY)
    answered = receive(counter_clerk, lender_a, now=now - 40 * DAY)
    services.complaint_assign(complaint=answered, actor=regulator, assignee=regulator)
    services.complaint_reply(complaint=answered, actor=regulator, reply="答复")
    login(client, regulator)

    response = client.get(url("complaint_list"))

    listed = list(response.context["page"])
    assert listed == [overdue, sooner, later]
    text = page_text(response)
    assert "1 day left" in text and "28 days left" in text and "5 days overdue" in text
    everything = list(client.get(url("complaint_list"), {"status": ""}).context["page"])
    assert everything[0] == answered
    assert list(client.get(url("complaint_list"), {"status": "", "member": lender_b.pk}).context["page"]) == [sooner]


def test_the_queue_is_for_regulators_only(client, login, complaint, lender_admin, counter_clerk, review_officer):
    for user in (lender_admin, counter_clerk, review_officer):
        client.logout()
        login(client, user)
        assert client.get(url("complaint_list")).status_code == 403


def test_the_regulator_reads_a_complaint_masked_and_the_reading_is_logged(client, login, regulator, complaint):
    login(client, regulator)

    text = page_text(client.get(url("complaint_detail", complaint.pk)))

    assert complaint.description in text and "王**" in text
    assert NAME not in text and "13912345678" not in text
    assert AuditEvent.objects.filter(action="complaint.view", actor=regulator, target_id=str(complaint.pk)).exists()


def test_revealing_the_complainant_is_a_logged_post(client, login, regulator, complaint):
    login(client, regulator)

    assert client.get(url("complaint_reveal", complaint.pk)).status_code == 405
    text = page_text(client.post(url("complaint_reveal", complaint.pk)))

    assert NAME in text and CONTACT in text
    event = AuditEvent.objects.get(action="complaint.reveal")
    assert (event.actor, event.target_id, event.institution) == (regulator, str(complaint.pk), complaint.member)


def test_the_clerk_who_took_a_complaint_reads_it_but_cannot_reveal_or_handle_it(
    client, login, counter_clerk, complaint, regulator
):
    login(client, counter_clerk)

    assert client.get(url("complaint_detail", complaint.pk)).status_code == 200
    assert client.post(url("complaint_reveal", complaint.pk)).status_code == 403
    assert client.post(url("complaint_assign", complaint.pk), {"assign-assignee": regulator.pk}).status_code == 403
    assert Complaint.objects.get().assignee is None
    assert not AuditEvent.objects.filter(action="complaint.reveal").exists()


def test_another_clerk_does_not_see_a_complaint_they_did_not_take(client, login, complaint, operator, user_factory):
    login(client, user_factory("colin", Role.COUNTER_CLERK, institution=operator))

    assert client.get(url("complaint_detail", complaint.pk)).status_code == 404
    assert client.get(url("complaint_receipt", complaint.pk)).status_code == 404


def test_assign_reply_letter_and_close_through_the_pages(client, login, regulator, complaint):
    login(client, regulator)

    client.post(url("complaint_assign", complaint.pk), {"assign-assignee": regulator.pk})
    client.post(url("complaint_reply", complaint.pk), {"reply-reply": "经核查，已责令该机构整改。"})
    letter = client.get(url("complaint_letter", complaint.pk))
    client.post(url("complaint_close", complaint.pk))

    complaint.refresh_from_db()
    assert complaint.status == Complaint.Status.CLOSED
    assert complaint.reply == "经核查，已责令该机构整改。"
    letter_text = page_text(letter)
    assert NAME in letter_text and CONTACT in letter_text and complaint.reply in letter_text
    assert AuditEvent.objects.filter(action="complaint.letter", actor=regulator).exists()


def test_an_empty_reply_is_refused_next_to_the_field(client, login, regulator, complaint):
    services.complaint_assign(complaint=complaint, actor=regulator, assignee=regulator)
    login(client, regulator)

    response = client.post(url("complaint_reply", complaint.pk), {"reply-reply": ""})

    assert response.status_code == 200
    assert "reply" in response.context["reply_form"].errors
    assert Complaint.objects.get().status == Complaint.Status.ASSIGNED


def test_closing_before_replying_is_refused_with_a_message(client, login, regulator, complaint):
    login(client, regulator)

    response = client.post(url("complaint_close", complaint.pk), follow=True)

    assert "Only a complaint that has been replied to can be closed." in page_text(response)
    assert Complaint.objects.get().status == Complaint.Status.RECEIVED


# --- Isolation: members see their own complaints and sanctions only ----------------------------------------


def test_a_members_admin_sees_its_own_complaints_and_sanctions_but_not_the_complainant(
    client, login, lender_admin, complaint, regulator, lender_a
):
    sanction = sanction_on(regulator, lender_a, reason="超范围查询，暂停查询")
    login(client, lender_admin)

    overview = page_text(client.get(url("own_supervision")))
    detail = page_text(client.get(url("complaint_detail", complaint.pk)))

    assert complaint.receipt_no in overview and "超范围查询，暂停查询" in overview
    assert complaint.summary in detail
    assert "王**" not in detail and complaint.description not in detail
    assert client.get(url("sanction_detail", sanction.pk)).status_code == 200
    assert client.post(url("complaint_reveal", complaint.pk)).status_code == 403
    assert client.get(url("complaint_receipt", complaint.pk)).status_code == 403


def test_it_checks_ownership(
    client, login, other_lender_admin, other_lender_staff, complaint, regulator, lender_a, lender_b, others_complaint
):
    sanction = sanction_on(regulator, lender_a, reason="甲公司被暂停")
    for user in (other_lender_admin, other_lender_staff):
        client.logout()
        login(client, user)
        assert client.get(url("complaint_detail", complaint.pk)).status_code == 404
        assert client.get(url("complaint_receipt", complaint.pk)).status_code == 404
        assert client.post(url("complaint_reveal", complaint.pk)).status_code == 404
        assert client.get(url("sanction_detail", sanction.pk)).status_code == 404
        assert client.post(url("sanction_lift", sanction.pk), {"lift-reason": "x"}).status_code == 404
        assert client.get(url("violation_detail", sanction.violation_id)).status_code == 404
    client.logout()
    login(client, other_lender_admin)
    overview = page_text(client.get(url("own_supervision")))
    assert others_complaint.receipt_no in overview
    assert complaint.receipt_no not in overview and "甲公司被暂停" not in overview


def test_a_members_staff_without_the_admin_role_see_no_complaint(client, login, lender_staff, complaint):
    login(client, lender_staff)

    assert client.get(url("complaint_detail", complaint.pk)).status_code == 404
    assert client.get(url("own_supervision")).status_code == 403


def test_a_missing_complaint_is_a_404_like_anothers(client, login, lender_admin, regulator):
    for user in (lender_admin, regulator):
        client.logout()
        login(client, user)
        assert client.get(url("complaint_detail", 99999)).status_code == 404
        assert client.get(url("sanction_detail", 99999)).status_code == 404


# --- Violations and sanctions through the pages -----------------------------------------------------------


def test_a_regulator_records_a_violation_with_evidence_and_downloads_it_logged(client, login, regulator, lender_a):
    login(client, regulator)

    response = client.post(url("violation_create"), {
        "member": lender_a.pk, "type": "no_consent", "description": "抽查10笔，3笔无授权书",
        "evidence": [SimpleUploadedFile("抽查.pdf", PDF, content_type="application/pdf")],
    })

    violation = Violation.objects.get()
    assert response["Location"] == url("violation_detail", violation.pk)
    evidence = ViolationEvidence.objects.get()
    download = client.get(url("evidence_download", evidence.pk))
    assert download.status_code == 200
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == evidence.sha256
    assert AuditEvent.objects.filter(action="violation.evidence_download", actor=regulator).exists()


def test_evidence_is_checked_like_every_upload(client, login, regulator, lender_a):
    login(client, regulator)

    response = client.post(url("violation_create"), {
        "member": lender_a.pk, "type": "misuse", "description": "x",
        "evidence": [SimpleUploadedFile("a.pdf", b"<html><script>alert(1)</script></html>")],
    })

    assert response.status_code == 200
    assert "evidence" in response.context["form"].errors
    assert not Violation.objects.exists()


def test_members_never_reach_violations_or_evidence(client, login, regulator, lender_a, lender_admin):
    violation = violation_of(regulator, lender_a)
    f = SimpleUploadedFile("e.pdf", PDF)
    from blacklist_portal.uploads import check_upload

    services.violation_record(actor=regulator, member=lender_a, type="misuse", description="x",
                              evidence=[(f, check_upload(f))])
    login(client, lender_admin)

    assert client.get(url("violation_detail", violation.pk)).status_code == 404
    assert client.get(url("evidence_download", ViolationEvidence.objects.get().pk)).status_code == 404
    assert client.get(url("violation_list")).status_code == 403
    assert client.get(url("sanction_list")).status_code == 403


def test_a_suspension_with_its_last_day_before_its_first_is_refused_next_to_the_field(
    client, login, regulator, lender_a
):
    violation = violation_of(regulator, lender_a)
    login(client, regulator)

    response = client.post(url("sanction_create", violation.pk), {
        "sanction-kind": "suspension", "sanction-suspends_queries": "on", "sanction-starts_on": TODAY.isoformat(),
        "sanction-ends_on": (TODAY - DAY).isoformat(), "sanction-reason": "违规",
    })

    assert response.status_code == 200
    assert response.context["sanction_form"].errors["ends_on"] == ["The last day cannot be before the first day."]
    assert not Sanction.objects.exists()


def test_a_fine_imposed_through_the_page_ignores_the_fields_of_other_kinds(client, login, regulator, lender_a):
    violation = violation_of(regulator, lender_a)
    login(client, regulator)

    response = client.post(url("sanction_create", violation.pk), {
        "sanction-kind": "fine", "sanction-fine_amount": "20000.50", "sanction-starts_on": TODAY.isoformat(),
        "sanction-suspends_queries": "on", "sanction-reason": "罚款",
    })

    sanction = Sanction.objects.get()
    assert response["Location"] == url("sanction_detail", sanction.pk)
    assert (str(sanction.fine_amount), sanction.starts_on, sanction.suspends_queries) == ("20000.50", None, False)


def test_a_regulator_lifts_a_suspension_from_its_page(client, login, regulator, lender_a):
    sanction = sanction_on(regulator, lender_a)
    login(client, regulator)

    response = client.post(url("sanction_lift", sanction.pk), {"lift-reason": "已整改"}, follow=True)

    sanction.refresh_from_db()
    assert sanction.lifted_at is not None
    assert "Lifted early" in page_text(response)
    assert response.context["lift_form"] is None


def test_the_sanction_list_shows_what_is_in_force(client, login, regulator, lender_a, lender_b):
    current = sanction_on(regulator, lender_a)
    future = services.sanction_impose(actor=regulator, violation=violation_of(regulator, lender_b), kind="suspension",
                                      reason="x", suspends_reporting=True, starts_on=TODAY + 3 * DAY,
                                      ends_on=TODAY + 5 * DAY)
    login(client, regulator)

    in_force = list(client.get(url("sanction_list"), {"show": "in_force"}).context["page"])
    all_rows = {s.pk: s.state_label for s in client.get(url("sanction_list")).context["page"]}

    assert in_force == [current]
    assert all_rows == {current.pk: "In force", future.pk: "Not started yet"}


# --- Alerts through the pages ----------------------------------------------------------------------------


def _query(member, moment, subject="S-1") -> Query:
    return Query.objects.create(
        query_no=f"QV{moment:%H%M%S%f}{subject}", member=member, channel="api", purpose="post_loan", id_type="RIC",
        subject_index=subject, id_masked="110105********002X", name_masked="张*", hit=False, created_at=moment,
    )


def test_a_regulator_checks_a_day_reads_the_alert_with_its_queries_logged_and_escalates_it(
    client, login, regulator, lender_a
):
    day = TODAY - 3 * DAY
    night = datetime.datetime.combine(day, datetime.time(23), tzinfo=timezone.get_default_timezone())
    queries = [_query(lender_a, night + datetime.timedelta(minutes=i), subject=f"S-{i}") for i in range(5)]
    login(client, regulator)

    client.post(url("alert_evaluate"), {"evaluate-day": day.isoformat()})
    alerts = {a.rule: a for a in QueryAlert.objects.all()}
    assert set(alerts) == {"night", "post_loan_only"}
    night_alert = alerts["night"]
    listed = client.get(url("alert_list"), {"status": "open", "rule": "night"}).context["page"]
    detail = client.get(url("alert_detail", night_alert.pk))
    escalated = client.post(url("alert_escalate", night_alert.pk),
                            {"escalate-type": "misuse", "escalate-description": "夜间批量查询"})

    assert list(listed) == [night_alert]
    assert [q.pk for q in detail.context["queries"]] == [q.pk for q in queries]
    assert queries[0].query_no in page_text(detail)
    assert detail.context["escalate_form"].initial["type"] == "misuse"
    view = AuditEvent.objects.get(action="alert.view")
    assert (view.actor, view.details["queries_shown"]) == (regulator, 5)
    violation = Violation.objects.get()
    assert escalated["Location"] == url("violation_detail", violation.pk)
    assert (violation.alert, violation.type) == (night_alert, "misuse")


def test_a_regulator_acknowledges_an_alert_from_its_page(client, login, regulator, lender_a):
    alert = QueryAlert.objects.create(rule="volume_spike", member=lender_a, day=TODAY - DAY, created_at=timezone.now())
    login(client, regulator)

    empty = client.post(url("alert_acknowledge", alert.pk), {"ack-note": ""})
    client.post(url("alert_acknowledge", alert.pk), {"ack-note": "月初批量贷后监测"})

    assert "note" in empty.context["ack_form"].errors
    alert.refresh_from_db()
    assert (alert.status, alert.note) == (QueryAlert.Status.ACKNOWLEDGED, "月初批量贷后监测")


def test_alerts_are_for_regulators_only(client, login, lender_a, lender_admin, lender_staff, counter_clerk):
    alert = QueryAlert.objects.create(rule="night", member=lender_a, day=TODAY - DAY, created_at=timezone.now())
    for user in (lender_admin, lender_staff, counter_clerk):
        client.logout()
        login(client, user)
        assert client.get(url("alert_list")).status_code == 403
        assert client.get(url("alert_detail", alert.pk)).status_code == 404
        assert client.post(url("alert_acknowledge", alert.pk), {"ack-note": "x"}).status_code == 404
        assert client.post(url("alert_evaluate"), {"evaluate-day": TODAY.isoformat()}).status_code == 403
    assert QueryAlert.objects.get().status == QueryAlert.Status.OPEN


# --- Regulators read, and change no member data -------------------------------------------------------------


@pytest.fixture
def member_data(lender_staff, lender_a, review_officer):
    values = {
        "subject_type": "person", "id_type": "RIC", "id_number": "11010519491231002X", "name": "张三",
        "role": "borrower", "contract_no": "HT-1", "category": "court_judgment", "loan_amount": "8000.00",
        "court_name": "北京市朝阳区人民法院", "case_number": "(2023)京0105执1号",
        "judgment_date": (TODAY - 300 * DAY).isoformat(), "notified_on": (TODAY - 200 * DAY).isoformat(),
        "notice_method": "letter",
    }
    entry, _ = registry.entry_report(actor=lender_staff, member=lender_a, row=parse_row(values, today=TODAY).data)
    entry = registry.entry_approve(entry=entry, actor=review_officer)
    statement = Statement.objects.create(member=lender_a, month=TODAY.replace(day=1), generated_at=timezone.now())
    return entry, statement


def test_a_regulator_cannot_change_member_data_anywhere(client, login, regulator, member_data):
    entry, statement = member_data
    login(client, regulator)

    refused = {
        reverse("registry:entry_edit", args=[entry.pk]): {},
        reverse("registry:entry_settle", args=[entry.pk]): {"settled_on": TODAY.isoformat()},
        reverse("registry:entry_revoke", args=[entry.pk]): {"reason": "x"},
        reverse("registry:entry_approve", args=[entry.pk]): {},
        reverse("registry:entry_create"): {},
        reverse("registry:batch_upload"): {},
        reverse("billing:consent_upload"): {},
        reverse("billing:query_create"): {},
        reverse("billing:counter_member_query"): {},
        reverse("billing:statement_mark_paid", args=[statement.pk]): {},
    }
    statuses = {path: client.post(path, data).status_code for path, data in refused.items()}

    assert set(statuses.values()) <= {403, 404}, statuses
    entry.refresh_from_db()
    statement.refresh_from_db()
    assert (entry.status, entry.settled_on) == (Entry.Status.ACTIVE, None)
    assert statement.status == Statement.Status.UNPAID
    assert not Consent.objects.exists() and not Query.objects.exists()


def test_no_supervision_page_offers_a_change_to_member_data(client, login, regulator, everything, member_data):
    login(client, regulator)
    pages = [url("complaint_list"), url("complaint_detail", everything["complaint"].pk), url("violation_list"),
             url("violation_detail", everything["violation"].pk), url("sanction_list"),
             url("sanction_detail", everything["sanction"].pk), url("alert_list"),
             url("alert_detail", everything["alert"].pk)]

    actions = set()
    for page in pages:
        actions |= set(re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"', client.get(page).content.decode()))

    assert actions
    assert all(a.startswith("/supervision/") for a in actions), actions


# --- Navigation -----------------------------------------------------------------------------------------------


def _nav(client) -> set[str]:
    return {item["url"] for item in client.get(reverse("accounts:home"), follow=True).context["nav_items"]}


def test_each_role_finds_its_supervision_pages_in_the_navigation(
    client, login, regulator, counter_clerk, lender_admin, lender_staff
):
    expected = {
        regulator: {url("complaint_list"), url("alert_list"), url("sanction_list"), url("complaint_intake")},
        counter_clerk: {url("complaint_intake")},
        lender_admin: {url("own_supervision")},
    }
    for user, urls in expected.items():
        client.logout()
        login(client, user)
        assert urls <= _nav(client), user
    client.logout()
    login(client, lender_staff)
    assert not {u for u in _nav(client) if u.startswith("/supervision/complaints") or "sanctions" in u}


@pytest.mark.parametrize("role", [Role.REGULATOR, Role.COUNTER_CLERK, Role.LENDER_ADMIN, Role.PLATFORM_ADMIN])
def test_the_home_pages_supervision_tasks_are_links(db, client, login, request, role):
    user = request.getfixturevalue(role.value)
    login(client, user)

    tasks = client.get(reverse("accounts:role_home", args=[role.value])).context["tasks"]

    ours = [name for _t, _d, name in HOME_TASKS[role] if name and name.startswith("supervision:")]
    assert ours
    linked = {t["url"] for t in tasks if t["url"]}
    assert {reverse(name) for name in ours} <= linked


def test_the_pages_speak_chinese_by_default(client, login, regulator, everything, zh):
    client.defaults.pop("HTTP_ACCEPT_LANGUAGE")
    services.complaint_reply(complaint=everything["complaint"], actor=regulator, reply="答复")
    login(client, regulator)
    pages = {
        url("complaint_list"): "Complaints", url("complaint_detail", everything["complaint"].pk): "Written reply",
        url("complaint_receipt", everything["complaint"].pk): "Complaint receipt",
        url("complaint_letter", everything["complaint"].pk): "Reply to a complaint",
        url("violation_list"): "Violations", url("violation_detail", everything["violation"].pk): "Impose a sanction",
        url("sanction_list"): "Suspensions in force",
        url("sanction_detail", everything["sanction"].pk): "Lift the suspension early",
        url("alert_list"): "Check a day now", url("alert_detail", everything["alert"].pk): "Escalate into a violation",
    }
    for page, phrase in pages.items():
        text = page_text(client.get(page))
        assert zh(phrase) != phrase, phrase
        assert zh(phrase) in text, page


def test_platform_admins_see_supervision_records_read_only_without_the_complainant(
    client, login, platform_admin, everything
):
    complaint = everything["complaint"]
    login(client, platform_admin)

    pages = [f"/admin/supervision/{model}/" for model in ("complaint", "violation", "sanction", "queryalert")]
    change = client.get(f"/admin/supervision/complaint/{complaint.pk}/change/")

    assert [client.get(p).status_code for p in pages] == [200] * 4
    text = page_text(change)
    assert change.status_code == 200
    assert complaint.receipt_no in text and "王**" in text
    assert NAME not in text and "13912345678" not in text
    assert not change.context["has_change_permission"]
    assert client.post(f"/admin/supervision/complaint/{complaint.pk}/delete/").status_code == 403


def test_the_queues_keep_their_default_filter_on_later_pages(client, login, counter_clerk, regulator, lender_a):
    answered = receive(counter_clerk, lender_a)
    services.complaint_assign(complaint=answered, actor=regulator, assignee=regulator)
    services.complaint_reply(complaint=answered, actor=regulator, reply="答复")
    QueryAlert.objects.create(rule="night", member=lender_a, day=TODAY - DAY, created_at=timezone.now(),
                              status=QueryAlert.Status.ACKNOWLEDGED)
    login(client, regulator)

    assert list(client.get(url("complaint_list"), {"page": "1"}).context["page"]) == []
    assert list(client.get(url("alert_list"), {"page": "1"}).context["page"]) == []
    assert list(client.get(url("alert_list"), {"status": ""}).context["page"]) != []
