"""Abnormal-query alerts (issue 8 item 5) against hand-built query logs: queries at night
(22:00–06:00 Asia/Shanghai), a member's daily volume far above its own baseline, many queries
on one subject by one member, post-loan queries on subjects never queried for approval. Each
alert links the queries behind it; evaluating a day again raises nothing twice; a regulator
acknowledges an alert or escalates it into a violation."""

import datetime
import itertools
import threading

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections
from django.utils import timezone, translation

from billing.models import Query
from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.celery import app as celery_app
from blacklist_portal.inbox.models import Notification
from supervision import alerts, services, tasks
from supervision.models import QueryAlert, Violation

SHANGHAI = timezone.get_default_timezone()
DAY = datetime.timedelta(days=1)
D = timezone.localdate() - 40 * DAY  # the day evaluated, with room for a 28-day baseline
NIGHT, SPIKE, REPEAT, POST_LOAN_ONLY = (
    QueryAlert.Rule.NIGHT, QueryAlert.Rule.VOLUME_SPIKE, QueryAlert.Rule.SUBJECT_REPEAT,
    QueryAlert.Rule.POST_LOAN_WITHOUT_APPROVAL,
)
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def at(day: datetime.date, hour: int = 10, minute: int = 0) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=SHANGHAI)


def build(member, moment, *, subject="S-zhang", purpose="loan_approval", kind=Query.Kind.MEMBER) -> Query:
    return Query(
        query_no=f"QT{next(_numbers):012d}", kind=kind, member=member, channel="web", purpose=purpose,
        id_type="RIC", subject_index=subject, id_masked="110105********002X", name_masked="张*", hit=False,
        created_at=moment,
    )


def log(member, *moments, **kwargs) -> list[Query]:
    return Query.objects.bulk_create([build(member, m, **kwargs) for m in moments])


def night_burst(member, day, n: int = 5) -> list[Query]:
    """n queries at 23:00 on n different subjects (a night alert and nothing else)."""
    return Query.objects.bulk_create([build(member, at(day, 23), subject=f"S-night-{i}") for i in range(n)])


def raised(rule=None) -> list[tuple]:
    qs = QueryAlert.objects.order_by("rule", "member_id", "key")
    if rule:
        qs = qs.filter(rule=rule)
    return [(a.rule, a.member_id, a.day, a.key) for a in qs]


def linked(alert) -> set[int]:
    return set(alert.queries.values_list("pk", flat=True))


# --- Night ----------------------------------------------------------------------------------------


def test_five_queries_between_22_and_06_shanghai_raise_a_night_alert_with_those_queries(lender_a):
    night = log(lender_a, at(D, 0, 0), at(D, 3, 15), at(D, 5, 59), at(D, 22, 0), at(D, 23, 59))
    log(lender_a, at(D, 6, 0), at(D, 12), at(D, 21, 59))  # daytime
    log(lender_a, at(D - DAY, 23, 30), at(D + DAY, 1, 0))  # other days

    findings = alerts.night_queries(D)

    assert [(f.rule, f.member_id, f.key) for f in findings] == [(NIGHT, lender_a.pk, "")]
    assert set(findings[0].query_ids) == {q.pk for q in night}
    assert findings[0].details == {"count": 5, "threshold": 5}


def test_four_night_queries_are_below_the_threshold_and_the_threshold_is_a_setting(lender_a, settings):
    log(lender_a, at(D, 1), at(D, 2), at(D, 23), at(D, 23, 30))

    assert alerts.night_queries(D) == []
    settings.PORTAL_ALERT_NIGHT_MIN_QUERIES = 4
    assert len(alerts.night_queries(D)) == 1


def test_night_queries_are_counted_per_member_and_self_queries_do_not_count(lender_a, lender_b):
    log(lender_a, at(D, 1), at(D, 2), at(D, 3))
    log(lender_b, at(D, 1), at(D, 2))
    log(lender_a, at(D, 4), at(D, 5), kind=Query.Kind.SELF, purpose="self")

    assert alerts.night_queries(D) == []


def test_the_night_is_read_in_shanghai_time_not_utc(lender_a):
    # 22:30 Shanghai is 14:30 UTC; 07:00 Shanghai is 23:00 UTC the day before.
    log(lender_a, *[at(D, 22, 30)] * 5)
    log(lender_a, *[at(D + DAY, 7)] * 5)

    assert [f.member_id for f in alerts.night_queries(D)] == [lender_a.pk]
    assert alerts.night_queries(D + DAY) == []


# --- Volume spike -----------------------------------------------------------------------------------


def baseline(member, per_day: int, days: int = 28) -> None:
    log(member, *[at(D - k * DAY, 11) for k in range(1, days + 1) for _ in range(per_day)])


def test_a_day_above_three_times_the_28_day_median_and_at_least_50_is_a_spike(lender_a):
    baseline(lender_a, 10)
    today = log(lender_a, *[at(D, 14)] * 50)

    findings = alerts.volume_spike(D)

    assert [(f.rule, f.member_id) for f in findings] == [(SPIKE, lender_a.pk)]
    assert findings[0].details == {"count": 50, "baseline_median": 10, "factor": 3, "baseline_days": 28}
    assert set(findings[0].query_ids) == {q.pk for q in today}


def test_exactly_three_times_the_median_is_not_a_spike(lender_a):
    baseline(lender_a, 20)
    log(lender_a, *[at(D, 14)] * 60)

    assert alerts.volume_spike(D) == []


def test_fewer_than_50_queries_are_never_a_spike(lender_a):
    baseline(lender_a, 1)
    log(lender_a, *[at(D, 14)] * 49)

    assert alerts.volume_spike(D) == []


def test_days_without_queries_count_as_zero_in_the_baseline(lender_a):
    # 100 queries on 13 of the 28 days: the median of the 28 daily counts is 0.
    log(lender_a, *[at(D - k * DAY, 11) for k in range(1, 14) for _ in range(100)])
    log(lender_a, *[at(D, 14)] * 50)

    findings = alerts.volume_spike(D)

    assert findings[0].details["baseline_median"] == 0


def test_the_median_resists_one_busy_day_and_queries_older_than_28_days_do_not_count(lender_a, lender_b):
    baseline(lender_a, 20)
    log(lender_a, *[at(D - 3 * DAY, 12)] * 500)  # one busy day does not move the median
    log(lender_a, *[at(D - 29 * DAY, 12)] * 500)  # outside the baseline
    log(lender_a, *[at(D, 14)] * 61)
    log(lender_b, *[at(D, 14)] * 61)  # no history at all: its median is 0

    findings = alerts.volume_spike(D)

    assert [(f.member_id, f.details["baseline_median"]) for f in findings] == [(lender_a.pk, 20), (lender_b.pk, 0)]


# --- Many queries on one subject ---------------------------------------------------------------------


def test_five_queries_on_one_subject_within_7_days_raise_one_alert_keyed_by_the_subject(lender_a, lender_b):
    window = log(lender_a, at(D - 6 * DAY), at(D - 3 * DAY), at(D - DAY), at(D, 9), at(D, 16), subject="S-li")
    log(lender_a, at(D - 7 * DAY), subject="S-li")  # before the window
    log(lender_b, at(D), at(D, 11), subject="S-li")  # another member
    log(lender_a, at(D), subject="S-other")

    findings = alerts.subject_repeat(D)

    assert [(f.rule, f.member_id, f.key) for f in findings] == [(REPEAT, lender_a.pk, "S-li")]
    assert set(findings[0].query_ids) == {q.pk for q in window}
    assert findings[0].details == {"count": 5, "threshold": 5, "window_days": 7}


def test_four_queries_on_one_subject_raise_nothing(lender_a):
    log(lender_a, at(D - 2 * DAY), at(D - DAY), at(D, 9), at(D, 16), subject="S-li")

    assert alerts.subject_repeat(D) == []


def test_a_burst_is_one_alert_on_the_day_it_crosses_the_threshold_not_one_a_day(lender_a):
    log(lender_a, *[at(D, h) for h in (9, 10, 11, 12, 13)], subject="S-li")
    log(lender_a, at(D + DAY), subject="S-li")

    assert len(alerts.subject_repeat(D)) == 1
    assert alerts.subject_repeat(D + DAY) == []
    assert alerts.subject_repeat(D + 2 * DAY) == []


# --- Post-loan queries without an approval query --------------------------------------------------------


def test_post_loan_queries_on_a_subject_never_queried_for_approval_raise_an_alert(lender_a, lender_b):
    suspicious = log(lender_a, at(D, 9), at(D, 15), subject="S-never", purpose="post_loan")
    log(lender_a, at(D - 100 * DAY), subject="S-approved", purpose="loan_approval")
    log(lender_a, at(D, 10), subject="S-approved", purpose="post_loan")
    log(lender_a, at(D - 5 * DAY), subject="S-guarantor", purpose="guarantor_check")
    log(lender_a, at(D, 11), subject="S-guarantor", purpose="post_loan")
    log(lender_b, at(D - 5 * DAY), subject="S-never", purpose="loan_approval")  # another member's approval

    findings = alerts.post_loan_only(D)

    assert [(f.rule, f.member_id, f.key) for f in findings] == [(POST_LOAN_ONLY, lender_a.pk, "S-never")]
    assert set(findings[0].query_ids) == {q.pk for q in suspicious}


def test_an_approval_query_later_in_the_day_still_counts_but_not_one_on_a_later_day(lender_a):
    log(lender_a, at(D, 9), subject="S-a", purpose="post_loan")
    log(lender_a, at(D, 17), subject="S-a", purpose="loan_approval")
    log(lender_a, at(D, 9), subject="S-b", purpose="post_loan")
    log(lender_a, at(D + DAY, 9), subject="S-b", purpose="loan_approval")

    assert [f.key for f in alerts.post_loan_only(D)] == ["S-b"]


def test_post_loan_only_is_raised_once_per_member_and_subject(lender_a):
    log(lender_a, at(D), subject="S-never", purpose="post_loan")
    log(lender_a, at(D + DAY), subject="S-never", purpose="post_loan")

    first = services.alerts_evaluate(day=D)
    later = services.alerts_evaluate(day=D + DAY)

    assert [(a.rule, a.key) for a in first] == [(POST_LOAN_ONLY, "S-never")]
    assert later == []


# --- Evaluation: stored once, with the queries behind each alert ----------------------------------------


@pytest.fixture
def busy_day(lender_a, lender_b):
    night_burst(lender_a, D)
    log(lender_b, *[at(D, 10 + h) for h in range(5)], subject="S-li")  # repeat


def test_evaluating_a_day_stores_each_alert_with_its_queries(busy_day, lender_a, lender_b):
    created = services.alerts_evaluate(day=D)

    assert raised() == [(NIGHT, lender_a.pk, D, ""), (REPEAT, lender_b.pk, D, "S-li")]
    assert {a.pk for a in created} == set(QueryAlert.objects.values_list("pk", flat=True))
    night = QueryAlert.objects.get(rule=NIGHT)
    assert linked(night) == set(Query.objects.filter(member=lender_a).values_list("pk", flat=True))
    assert night.status == QueryAlert.Status.OPEN
    assert AuditEvent.objects.get(action="alerts.evaluate").details == {"day": D.isoformat(), "raised": 2}


def test_evaluating_a_day_twice_raises_nothing_twice(busy_day):
    services.alerts_evaluate(day=D)
    before = {a.pk: linked(a) for a in QueryAlert.objects.all()}

    again = services.alerts_evaluate(day=D)

    assert again == []
    assert {a.pk: linked(a) for a in QueryAlert.objects.all()} == before


def test_the_daily_task_checks_yesterday_and_the_days_an_outage_skipped(lender_a, regulator):
    yesterday = timezone.localdate() - DAY
    night_burst(lender_a, yesterday - 2 * DAY)
    night_burst(lender_a, yesterday)
    entry = settings.CELERY_BEAT_SCHEDULE["supervision-query-alerts"]
    assert entry["task"] == "supervision.evaluate_alerts" in celery_app.tasks

    first = tasks.evaluate_alerts.delay().get()
    again = tasks.evaluate_alerts.delay().get()

    assert (first, again) == (2, 0)
    assert [a[2] for a in raised(NIGHT)] == [yesterday - 2 * DAY, yesterday]
    assert Notification.objects.filter(user=regulator, title=f"1 new query alert for {yesterday}").exists()


def test_the_task_evaluates_a_given_day(busy_day):
    assert tasks.evaluate_alerts.delay(D.isoformat()).get() == 2
    assert tasks.evaluate_alerts.delay(D.isoformat()).get() == 0


def test_a_regulator_evaluates_on_demand_but_not_a_day_to_come(busy_day, regulator, lender_admin):
    with pytest.raises(PermissionDenied):
        services.alerts_evaluate(day=D, actor=lender_admin)
    with pytest.raises(ValidationError):
        services.alerts_evaluate(day=timezone.localdate() + DAY, actor=regulator)

    created = services.alerts_evaluate(day=D, actor=regulator)

    assert len(created) == 2
    assert AuditEvent.objects.get(action="alerts.evaluate").actor == regulator


# --- Acknowledge and escalate ----------------------------------------------------------------------------


@pytest.fixture
def night_alert(lender_a) -> QueryAlert:
    night_burst(lender_a, D)
    services.alerts_evaluate(day=D)
    return QueryAlert.objects.get()


def test_a_regulator_acknowledges_an_alert_with_a_note(night_alert, regulator):
    services.alert_acknowledge(alert=night_alert, actor=regulator, note="夜班审批，已核实")

    night_alert.refresh_from_db()
    assert (night_alert.status, night_alert.note, night_alert.handled_by) == (
        QueryAlert.Status.ACKNOWLEDGED, "夜班审批，已核实", regulator)
    assert AuditEvent.objects.get(action="alert.acknowledge").institution == night_alert.member
    with pytest.raises(ValidationError, match="handled already"):
        services.alert_acknowledge(alert=night_alert, actor=regulator, note="again")


def test_acknowledging_needs_a_note_and_a_regulator(night_alert, regulator, lender_admin):
    with pytest.raises(ValidationError) as empty:
        services.alert_acknowledge(alert=night_alert, actor=regulator, note=" ")
    assert "note" in empty.value.error_dict
    with pytest.raises(PermissionDenied):
        services.alert_acknowledge(alert=night_alert, actor=lender_admin, note="fine")
    assert QueryAlert.objects.get().status == QueryAlert.Status.OPEN


@pytest.mark.parametrize(
    ("rule", "violation_type"),
    [(NIGHT, Violation.Type.MISUSE), (SPIKE, Violation.Type.MISUSE), (REPEAT, Violation.Type.MISUSE),
     (POST_LOAN_ONLY, Violation.Type.NO_CONSENT)],
)
def test_escalating_an_alert_records_a_violation_of_the_type_its_rule_suggests(
    lender_a, regulator, rule, violation_type
):
    alert = QueryAlert.objects.create(rule=rule, member=lender_a, day=D, key="k", created_at=timezone.now())

    violation = services.alert_escalate(alert=alert, actor=regulator, description="核查属实")

    alert.refresh_from_db()
    assert (violation.type, violation.member, violation.alert) == (violation_type, lender_a, alert)
    assert alert.status == QueryAlert.Status.ESCALATED
    assert AuditEvent.objects.filter(action="alert.escalate", actor=regulator).exists()


def test_an_acknowledged_alert_can_still_be_escalated_but_only_once(night_alert, regulator):
    services.alert_acknowledge(alert=night_alert, actor=regulator, note="先确认")
    services.alert_escalate(alert=night_alert, actor=regulator, description="复查后认定违规",
                            type=Violation.Type.FALSE_REPORTING)

    with pytest.raises(ValidationError, match="escalated already"):
        services.alert_escalate(alert=night_alert, actor=regulator, description="again")
    assert Violation.objects.get().type == Violation.Type.FALSE_REPORTING


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent evaluations need PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_evaluations_of_a_day_at_the_same_instant_raise_each_alert_once(lender_a, lender_b):
    night_burst(lender_a, D)
    night_burst(lender_b, D)
    log(lender_b, *[at(D, 10 + h) for h in range(5)], subject="S-li", purpose="post_loan")
    barrier = threading.Barrier(2)
    results, errors = [], []

    def evaluator():
        try:
            barrier.wait(timeout=10)
            results.append(len(services.alerts_evaluate(day=D)))
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=evaluator) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sum(results) == 4
    assert raised() == [(NIGHT, lender_a.pk, D, ""), (NIGHT, lender_b.pk, D, ""),
                        (POST_LOAN_ONLY, lender_b.pk, D, "S-li"), (REPEAT, lender_b.pk, D, "S-li")]
    assert {len(linked(a)) for a in QueryAlert.objects.all()} == {5}
