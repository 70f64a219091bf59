"""The audit log is a hash chain; every kind of tampering is found at the row where it starts."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from blacklist_portal.accounts import services as account_services
from blacklist_portal.audit.chain import canonical_payload, chain_hash
from blacklist_portal.audit.models import GENESIS_HASH, AuditEvent
from blacklist_portal.audit.services import audit_record, audit_verify_chain

on_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL only"
)


def record(n, **kwargs):
    return [audit_record(actor=None, action=f"test.event{i}", **kwargs) for i in range(1, n + 1)]


def tamper(sql, params=()):
    """Rewrite the log behind the application's back, as someone with database access would.
    On PostgreSQL the append-only trigger is switched off first (inside the test's
    transaction, which is rolled back afterwards). ALTER TABLE refuses while deferred
    foreign-key checks are pending, so those are run first."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def set_seq(old, new):
    tamper("UPDATE audit_auditevent SET seq = %s WHERE seq = %s", [new, old])


def payload_of(event):
    return canonical_payload(
        seq=event.seq,
        occurred_at=event.occurred_at,
        actor_id=event.actor_id,
        institution_id=event.institution_id,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        ip=event.ip,
        details=event.details,
    )


class TestAppending:
    def test_events_are_numbered_and_linked(self, db):
        events = record(4)

        assert [e.seq for e in events] == [1, 2, 3, 4]
        assert events[0].prev_hash == GENESIS_HASH
        for before, after in zip(events, events[1:], strict=False):
            assert after.prev_hash == before.hash
        assert len({e.hash for e in events}) == 4

    def test_each_hash_covers_the_previous_hash_and_the_row(self, db):
        events = record(3)

        for event in AuditEvent.objects.order_by("seq"):
            assert event.hash == chain_hash(event.prev_hash, payload_of(event))
        assert events[-1].hash == AuditEvent.objects.get(seq=3).hash

    def test_the_stored_row_hashes_the_same_as_when_it_was_written(self, lender_admin):
        # A round trip through the database (JSON, time zones, IP type) must not change the
        # payload, or verification would report tampering on an honest log.
        written = audit_record(
            actor=lender_admin,
            action="test.roundtrip",
            target=lender_admin,
            details={
                "amount": __import__("decimal").Decimal("12.50"),
                "ratio": 0.1,
                "n": [1, "二"],
            },
        )

        stored = AuditEvent.objects.get(pk=written.pk)

        assert payload_of(stored) == payload_of(written)
        assert audit_verify_chain().ok

    def test_it_records_actor_institution_target_and_ip(self, rf, lender_admin, lender_staff):
        request = rf.get("/", REMOTE_ADDR="203.0.113.7")

        event = audit_record(
            actor=lender_admin, action="user.test", target=lender_staff, request=request
        )

        assert event.actor == lender_admin
        assert event.institution == lender_admin.institution
        assert (event.target_type, event.target_id) == ("accounts.user", str(lender_staff.pk))
        assert event.ip == "203.0.113.7"
        assert event.occurred_at.utcoffset().total_seconds() == 0

    def test_anonymous_actor_is_recorded_as_none(self, rf, db):
        from django.contrib.auth.models import AnonymousUser

        event = audit_record(actor=AnonymousUser(), action="test.anon")

        assert event.actor is None
        assert event.institution is None

    @pytest.mark.parametrize(
        "details",
        [
            {"id_number": "110101199003071234"},
            {"phone": "13800138000"},
            {"full_name": "张三"},
            {"password": "x"},
            {"subject": {"id_no": "110101199003071234"}},
            {"rows": [{"ok": 1}, {"token": "abc"}]},
        ],
    )
    def test_details_with_personal_data_are_refused(self, db, details):
        with pytest.raises(ValueError, match="personal data"):
            audit_record(actor=None, action="test.pii", details=details)

        assert not AuditEvent.objects.exists()

    def test_the_event_rolls_back_with_the_change_it_describes(self, lender_admin, lender_staff):
        with pytest.raises(RuntimeError), transaction.atomic():
            account_services.user_set_active(actor=lender_admin, user=lender_staff, active=False)
            assert AuditEvent.objects.filter(action="user.deactivate").exists()
            raise RuntimeError("something later in the request failed")

        lender_staff.refresh_from_db()
        assert lender_staff.is_active is True
        assert not AuditEvent.objects.filter(action="user.deactivate").exists()
        assert audit_verify_chain().ok

    def test_a_rolled_back_event_leaves_no_gap_in_the_numbering(self, db):
        record(2)
        with pytest.raises(RuntimeError), transaction.atomic():
            audit_record(actor=None, action="test.rolled_back")
            raise RuntimeError

        event = audit_record(actor=None, action="test.after")

        assert event.seq == 3
        assert audit_verify_chain().ok


class TestAppendOnly:
    def test_the_model_refuses_to_update_a_row(self, db):
        (event,) = record(1)
        event.action = "test.rewritten"

        with pytest.raises(RuntimeError, match="append-only"):
            event.save()

        assert AuditEvent.objects.get(seq=1).action == "test.event1"

    def test_the_model_refuses_to_delete_a_row(self, db):
        (event,) = record(1)

        with pytest.raises(RuntimeError, match="append-only"):
            event.delete()

        assert AuditEvent.objects.filter(seq=1).exists()

    @on_postgres
    def test_the_database_refuses_a_raw_update(self, db):
        record(2)

        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("UPDATE audit_auditevent SET action = 'x' WHERE seq = 1")

        assert AuditEvent.objects.get(seq=1).action == "test.event1"

    @on_postgres
    def test_the_database_refuses_a_raw_delete(self, db):
        record(2)

        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute("DELETE FROM audit_auditevent WHERE seq = 2")

        assert AuditEvent.objects.count() == 2

    @on_postgres
    def test_the_database_refuses_queryset_update_and_delete(self, db):
        record(2)

        with pytest.raises(DatabaseError), transaction.atomic():
            AuditEvent.objects.filter(seq=1).update(action="x")
        with pytest.raises(DatabaseError), transaction.atomic():
            AuditEvent.objects.all().delete()

        assert list(AuditEvent.objects.values_list("action", flat=True)) == [
            "test.event1",
            "test.event2",
        ]


class TestVerification:
    def test_a_clean_chain_verifies(self, db):
        events = record(5)

        report = audit_verify_chain(chunk_size=2)  # crosses chunk boundaries

        assert report.ok
        assert report.count == 5
        assert report.head_hash == events[-1].hash
        assert report.broken_at is None

    def test_an_empty_log_verifies_to_the_genesis_hash(self, db):
        report = audit_verify_chain()

        assert report.ok
        assert (report.count, report.head_hash) == (0, GENESIS_HASH)

    def test_the_command_prints_the_head_hash(self, db):
        events = record(3)
        out = StringIO()

        call_command("audit_verify", stdout=out)

        assert out.getvalue().strip() == f"Audit chain OK: 3 events, head hash {events[-1].hash}"

    def test_the_command_fails_and_names_the_broken_row(self, db):
        record(3)
        tamper("UPDATE audit_auditevent SET action = 'test.forged' WHERE seq = 2")

        with pytest.raises(CommandError, match="BROKEN at seq 2"):
            call_command("audit_verify", stdout=StringIO())


class TestTamperingIsFoundWhereItStarts:
    @pytest.fixture
    def events(self, db):
        return record(5, details={"entry": 7})

    def assert_broken_at(self, seq, reason):
        report = audit_verify_chain()
        assert not report.ok
        assert report.broken_at == seq
        assert report.count == seq - 1
        # The last good hash is that of the row before the break, as it stands now.
        assert report.head_hash == AuditEvent.objects.get(seq=seq - 1).hash
        assert reason in report.reason

    def test_editing_a_rows_details(self, events):
        details = json.dumps({"entry": 8})
        if connection.vendor == "postgresql":
            tamper("UPDATE audit_auditevent SET details = %s::jsonb WHERE seq = 3", [details])
        else:
            tamper("UPDATE audit_auditevent SET details = %s WHERE seq = 3", [details])
        assert AuditEvent.objects.get(seq=3).details == {"entry": 8}

        self.assert_broken_at(3, "content does not match")

    def test_editing_a_rows_action(self, events):
        tamper("UPDATE audit_auditevent SET action = 'test.innocent' WHERE seq = 2")

        self.assert_broken_at(2, "content does not match")

    def test_editing_a_rows_time(self, events):
        tamper(
            "UPDATE audit_auditevent SET occurred_at = %s WHERE seq = 4", [events[0].occurred_at]
        )

        self.assert_broken_at(4, "content does not match")

    def test_editing_a_row_and_recomputing_its_hash(self, events):
        # The forger fixes up the row's own hash; the next row still points at the old one.
        forged = AuditEvent.objects.get(seq=3)
        forged.action = "test.innocent"
        new_hash = chain_hash(forged.prev_hash, payload_of(forged))
        tamper(
            "UPDATE audit_auditevent SET action = %s, hash = %s WHERE seq = 3",
            ["test.innocent", new_hash],
        )

        self.assert_broken_at(4, "previous hash does not match")

    def test_deleting_a_middle_row(self, events):
        tamper("DELETE FROM audit_auditevent WHERE seq = 3")

        self.assert_broken_at(3, "missing or reordered")

    def test_deleting_the_first_row(self, events):
        tamper("DELETE FROM audit_auditevent WHERE seq = 1")

        report = audit_verify_chain()
        assert (report.ok, report.broken_at, report.count) == (False, 1, 0)
        assert report.head_hash == GENESIS_HASH

    def test_swapping_two_rows(self, events):
        # Rows 2 and 3 trade places: 3 now comes second.
        set_seq(2, 1000)
        set_seq(3, 2)
        set_seq(1000, 3)
        assert AuditEvent.objects.get(seq=2).action == "test.event3"

        self.assert_broken_at(2, "previous hash does not match")

    def test_inserting_a_forged_row_and_renumbering_the_rest(self, events):
        for seq in (5, 4, 3):  # from the end, so seq stays unique at every step
            set_seq(seq, seq + 1)
        forged = AuditEvent(
            seq=3,
            occurred_at=events[2].occurred_at,
            action="test.forged",
            details={"entry": 7},
            prev_hash=events[1].hash,
        )
        # A careful forger gives the new row a correct hash: it verifies on its own, and the
        # break shows at the first original row after it.
        forged.hash = chain_hash(forged.prev_hash, payload_of(forged))
        forged.save(force_insert=True)
        assert AuditEvent.objects.count() == 6

        self.assert_broken_at(4, "previous hash does not match")

    def test_inserting_a_crude_forged_row(self, events):
        for seq in (5, 4, 3):
            set_seq(seq, seq + 1)
        AuditEvent(
            seq=3,
            occurred_at=events[2].occurred_at,
            action="test.forged",
            prev_hash=events[1].hash,
            hash="f" * 64,
        ).save(force_insert=True)

        self.assert_broken_at(3, "content does not match")

    def test_renumbering_without_other_changes(self, events):
        # Closing the gap after a deletion by renumbering is caught too: seq is hashed.
        tamper("DELETE FROM audit_auditevent WHERE seq = 3")
        set_seq(4, 3)
        set_seq(5, 4)

        self.assert_broken_at(3, "previous hash does not match")

    def test_rewriting_the_tail_changes_the_head_hash(self, events):
        # Someone who recomputes every later hash gets a chain that verifies, but with a
        # different head: that is why `audit_verify` prints it, to be kept outside the database.
        honest_head = audit_verify_chain().head_hash
        prev = events[1].hash
        for seq in (3, 4, 5):
            row = AuditEvent.objects.get(seq=seq)
            row.prev_hash = prev
            if seq == 3:
                row.action = "test.innocent"
            new_hash = chain_hash(prev, payload_of(row))
            tamper(
                "UPDATE audit_auditevent SET action = %s, prev_hash = %s, hash = %s WHERE seq = %s",
                [row.action, prev, new_hash, seq],
            )
            prev = new_hash

        report = audit_verify_chain()

        assert report.ok
        assert report.head_hash != honest_head
