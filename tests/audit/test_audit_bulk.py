"""audit_record_many: a batch of events appended at once writes exactly the chain that
audit_record would write one by one, verifies, and is serialised with audit_record."""

import datetime
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from blacklist_portal.audit.models import GENESIS_HASH, AuditEvent
from blacklist_portal.audit.services import audit_record, audit_record_many, audit_verify_chain

T = datetime.datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=datetime.UTC)

COLUMNS = (
    "seq", "occurred_at", "actor_id", "institution_id", "action", "target_type", "target_id", "ip",
    "details", "prev_hash", "hash",
)


class Undo(Exception):
    pass


def events(rf, lender_admin, lender_staff) -> list[dict]:
    """A mix of everything audit_record takes."""
    request = rf.get("/", REMOTE_ADDR="203.0.113.7")
    return [
        {"actor": None, "action": "test.plain", "now": T},
        {"actor": lender_admin, "action": "user.test", "target": lender_staff, "request": request,
         "now": T + datetime.timedelta(seconds=1)},
        {"actor": None, "action": "dispute.reminder", "target_type": "disputes.dispute", "target_id": 17,
         "now": T, "details": {"kind": "due_soon", "step": 5}},
        {"actor": lender_staff, "action": "test.details", "institution": lender_admin.institution, "now": T,
         "details": {"amount": Decimal("12.50"), "ratio": 0.1, "n": [1, "二"], "nested": {"a": None}}},
        {"actor": None, "action": "test.last", "target_type": "x", "target_id": "abc", "now": T},
    ]


def rows() -> list[tuple]:
    return list(AuditEvent.objects.order_by("seq").values_list(*COLUMNS))


def written_by(append) -> list[tuple]:
    """The rows `append()` adds after two existing events; then rolled back."""
    try:
        with transaction.atomic():
            append()
            result = rows()
            raise Undo
    except Undo:
        return result


def test_a_batch_writes_the_same_chain_as_one_append_per_event(db, rf, lender_admin, lender_staff):
    audit_record(actor=None, action="test.before", now=T)
    audit_record(actor=None, action="test.before", now=T)
    batch = events(rf, lender_admin, lender_staff)

    one_by_one = written_by(lambda: [audit_record(**kwargs) for kwargs in batch])
    at_once = written_by(lambda: audit_record_many(batch))

    assert len(one_by_one) == 7
    assert at_once == one_by_one
    assert [r[0] for r in at_once] == [1, 2, 3, 4, 5, 6, 7]


def test_a_batch_on_an_empty_log_starts_at_the_genesis_hash_and_verifies(db, rf, lender_admin, lender_staff):
    assert audit_record_many(events(rf, lender_admin, lender_staff)) == 5

    written = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in written] == [1, 2, 3, 4, 5]
    assert written[0].prev_hash == GENESIS_HASH
    later = audit_record(actor=None, action="test.after")  # audit_record continues the chain
    assert (later.seq, later.prev_hash) == (6, written[-1].hash)
    report = audit_verify_chain()
    assert (report.ok, report.count, report.head_hash) == (True, 6, later.hash)
    out = StringIO()
    call_command("audit_verify", stdout=out)  # raises CommandError on a broken chain


def test_events_without_a_time_get_the_time_of_the_append(db):
    before = timezone.now()
    audit_record_many([{"actor": None, "action": "test.now"}] * 3)

    assert all(before <= at <= timezone.now() for at in AuditEvent.objects.values_list("occurred_at", flat=True))
    assert audit_verify_chain().ok


def test_an_empty_batch_writes_nothing_and_takes_no_lock(db):
    with CaptureQueriesContext(connection) as queries:
        assert audit_record_many([]) == 0

    assert len(queries) == 0
    assert not AuditEvent.objects.exists()


def test_a_batch_takes_the_lock_and_reads_the_head_once(db):
    batch = [{"actor": None, "action": "test.bulk", "details": {"i": i}, "now": T} for i in range(2500)]

    with CaptureQueriesContext(connection) as queries:
        audit_record_many(batch)

    sql = [str(q["sql"]) for q in queries]
    locks = [q for q in sql if "pg_advisory_xact_lock" in q]
    heads = [q for q in sql if q.startswith("SELECT") and q not in locks]
    writes = [q for q in sql if q not in locks and q not in heads]
    assert len(locks) == (connection.vendor == "postgresql")
    assert len(heads) == 1
    if connection.vendor == "postgresql":
        assert len(writes) == 1  # one COPY
    else:
        assert all(q.startswith("INSERT") for q in writes)  # batches within SQLite's parameter limit
    assert AuditEvent.objects.count() == 2500
    assert audit_verify_chain().ok


def test_a_batch_with_personal_data_writes_nothing(db):
    with pytest.raises(ValueError, match="personal data"):
        audit_record_many([{"actor": None, "action": "test.ok"}, {"actor": None, "action": "x", "details": {"phone": "1"}}])

    assert not AuditEvent.objects.exists()


def test_a_failing_batch_rolls_back_with_the_callers_transaction(db):
    audit_record(actor=None, action="test.kept")
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record_many([{"actor": None, "action": "test.gone"}] * 3)
        raise RuntimeError

    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["test.kept"]
    assert audit_record(actor=None, action="test.next").seq == 2
    assert audit_verify_chain().ok


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_batches_and_single_appends_never_fork_the_chain():
    threads_n, rounds, batch_size = 4, 8, 25
    start = threading.Barrier(threads_n)
    errors = []

    def writer(n):
        try:
            start.wait(timeout=10)
            for i in range(rounds):
                with transaction.atomic():
                    if n % 2:  # half the writers append batches, half one event at a time
                        audit_record_many(
                            [{"actor": None, "action": "test.batch", "details": {"w": n, "i": i, "j": j}}
                             for j in range(batch_size)]
                        )
                    else:
                        audit_record(actor=None, action="test.single", details={"w": n, "i": i, "j": 0})
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    total = (threads_n // 2) * rounds * (batch_size + 1)
    chain = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "details"))
    assert [seq for seq, _, _ in chain] == list(range(1, total + 1))
    assert len({prev for _, prev, _ in chain}) == total  # no two rows extend the same predecessor
    # Each batch is contiguous: nobody appended in the middle of it.
    runs = [(d["w"], d["i"]) for _, _, d in chain]
    assert len([k for idx, k in enumerate(runs) if idx == 0 or runs[idx - 1] != k]) == threads_n * rounds
    report = audit_verify_chain()
    assert (report.ok, report.count) == (True, total)
