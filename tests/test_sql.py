"""blacklist_portal.sql: the names of written-out statements and the bulk insert (COPY on
PostgreSQL, bulk_create elsewhere) behave the same on both databases."""

import datetime
import re

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.services import new_numbers
from blacklist_portal.inbox.models import Notification
from blacklist_portal.sql import Names, fetch_one, insert_rows, placeholders
from supervision.models import QueryAlert

T = datetime.datetime(2026, 3, 5, 1, 2, 3, 456789, tzinfo=datetime.UTC)


def test_names_come_from_the_model_quoted_with_foreign_keys_as_their_columns():
    n = Names(QueryAlert)
    q = connection.ops.quote_name
    assert n.table == q("supervision_queryalert")
    assert n("member") == q("member_id")
    assert n("details") == q("details")
    assert n.columns("a.").split(", ")[0] == "a." + q("id")
    assert len(n.columns().split(", ")) == len(QueryAlert._meta.concrete_fields)
    assert placeholders([1, 2, 3]) == "%s, %s, %s"


def test_rows_come_back_with_their_keys_in_row_order_and_values_intact(lender_a):
    rows = [
        ("subject_repeat", lender_a.pk, datetime.date(2026, 3, i + 1), f"k{i}",
         {"n": i, "名称": "甲小额贷款", "list": [1, None, "二"]}, "open", T, None, None)
        for i in range(7)
    ]  # fmt: skip
    columns = [
        "rule",
        "member_id",
        "day",
        "key",
        "details",
        "status",
        "created_at",
        "handled_by_id",
        "handled_at",
    ]

    ids = insert_rows(QueryAlert, columns, rows, returning_ids=True)

    assert len(ids) == len(set(ids)) == 7
    for i, pk in enumerate(ids):
        alert = QueryAlert.objects.get(pk=pk)
        assert (alert.key, alert.day, alert.created_at) == (
            f"k{i}",
            datetime.date(2026, 3, i + 1),
            T,
        )
        assert alert.details == {"n": i, "名称": "甲小额贷款", "list": [1, None, "二"]}
    # The sequence moved past the drawn keys: an ordinary insert gets a fresh one.
    later = QueryAlert.objects.create(
        rule="subject_repeat", member=lender_a, day=T.date(), created_at=T
    )
    assert later.pk > max(ids)


def test_many_rows_take_one_copy_on_postgresql_and_nothing_for_none(lender_staff):
    rows = [
        (lender_staff.pk, f"消息 {i}", "正文\t带制表符\n和换行", "", T, None) for i in range(1500)
    ]

    assert (
        insert_rows(Notification, ["user_id", "title", "body", "link", "created_at", "read_at"], [])
        == []
    )
    with CaptureQueriesContext(connection) as queries:
        assert (
            insert_rows(
                Notification, ["user_id", "title", "body", "link", "created_at", "read_at"], rows
            )
            == []
        )

    if connection.vendor == "postgresql":
        assert len(queries) == 1 and str(queries[0]["sql"]).count("COPY") == 1
    assert Notification.objects.count() == 1500
    assert set(Notification.objects.values_list("body", flat=True)) == {"正文\t带制表符\n和换行"}
    assert fetch_one(f"SELECT COUNT(*) FROM {Names(Notification).table}", []) == (1500,)  # noqa: S608


def test_query_numbers_drawn_in_bulk_are_distinct_and_dated_in_shanghai():
    now = datetime.datetime(2026, 12, 31, 17, 0, tzinfo=datetime.UTC)  # 1 January in Shanghai
    numbers = new_numbers("Q", now, 5000)

    assert len(set(numbers)) == 5000
    assert all(re.fullmatch(r"Q20270101[A-HJ-NP-Z2-9]{8}", n) for n in numbers)
    assert timezone.localdate(now).isoformat() == "2027-01-01"
