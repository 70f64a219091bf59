"""Concurrent writers never fork the chain (PostgreSQL: serialised by an advisory lock)."""

import threading

import pytest
from django.db import connection, connections, transaction

from blacklist_portal.audit.models import AuditEvent
from blacklist_portal.audit.services import audit_record, audit_verify_chain

THREADS = 4
EVENTS_PER_THREAD = 10


@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_appends_never_fork_the_chain():
    start = threading.Barrier(THREADS)
    errors = []

    def writer(n):
        try:
            start.wait(timeout=10)
            for i in range(EVENTS_PER_THREAD):
                # Each event in its own transaction on this thread's own connection.
                with transaction.atomic():
                    audit_record(actor=None, action="test.concurrent", details={"w": n, "i": i})
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    total = THREADS * EVENTS_PER_THREAD
    rows = list(AuditEvent.objects.order_by("seq").values_list("seq", "prev_hash", "hash"))
    assert [seq for seq, _, _ in rows] == list(range(1, total + 1))
    # No fork: no two rows extend the same predecessor.
    assert len({prev for _, prev, _ in rows}) == total
    report = audit_verify_chain()
    assert (report.ok, report.count) == (True, total)
    assert sorted(
        (e["w"], e["i"]) for e in AuditEvent.objects.values_list("details", flat=True)
    ) == [(n, i) for n in range(THREADS) for i in range(EVENTS_PER_THREAD)]
