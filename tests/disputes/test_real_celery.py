"""The real stack (issue 5, item 8): a Celery worker with embedded beat, started as its own
process against the real broker and the test database, delivers a due reminder exactly once.

Runs only with a real broker (CELERY_BROKER_URL, e.g. Redis) and PostgreSQL, as in CI:
    CELERY_BROKER_URL=redis://127.0.0.1:6379/14 CELERY_RESULT_BACKEND=redis://127.0.0.1:6379/15 \\
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_ci .venv/bin/pytest tests/disputes/test_real_celery.py

The test settings force the in-memory e-mail backend in every process, so delivery is read from
the database: the outbox row of the reminder gets its `sent_at` from the worker's
inbox.send_outbox task, which the reminder queued through the broker."""

import contextlib
import datetime
import os
import re
import signal
import subprocess
import sys
import time
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from blacklist_portal.inbox.models import Notification, OutgoingEmail
from blacklist_portal.uploads import check_upload
from disputes import services
from disputes.models import ClaimType, Dispute, IntakeChannel, Reminder
from registry import services as registry_services
from registry.importing.rows import parse_row

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
SWEEP_SECONDS = 2
REMINDER_TIMEOUT = 40

pytestmark = [
    pytest.mark.broker,
    pytest.mark.postgres,
    pytest.mark.skipif(
        not settings.PORTAL_TEST_BROKER,
        reason="no real Celery broker: set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/14)",
    ),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the worker process needs a database it can share: set DATABASE_URL=postgres://…",
    ),
]


def worker_database_url() -> str:
    """DATABASE_URL of the database this test run uses (test_<name>), for the worker."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{quote(db['NAME'], safe='')}"




def fresh_broker_url() -> tuple[str, object]:
    """The configured broker, on an empty Redis database of its own so that the worker sees no
    message left over from another run. Returns (url, redis client or None)."""
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return url, None
    import redis

    parts = urlsplit(url)
    taken = set()
    for used in (url, settings.CELERY_RESULT_BACKEND or ""):
        match = re.fullmatch(r"/(\d+)", urlsplit(used).path or "") if used.startswith("redis") else None
        taken.add(int(match.group(1)) if match else 0)
    server = redis.Redis.from_url(urlunsplit(parts._replace(path="/0")))
    try:
        databases = int(server.config_get("databases").get("databases", 16))
    except redis.RedisError:  # CONFIG may be disabled on a managed server
        databases = 16
    for number in range(databases - 1, 0, -1):
        if number in taken:
            continue
        client = redis.Redis.from_url(urlunsplit(parts._replace(path=f"/{number}")))
        if client.dbsize() == 0:
            return urlunsplit(parts._replace(path=f"/{number}")), client
    pytest.skip("no empty Redis database left for the worker")


def make_entry(reporter, member, reviewer):
    today = timezone.localdate()
    values = {
        "subject_type": "person",
        "id_type": "RIC",
        "id_number": "310101198507150018",
        "name": "王五",
        "role": "borrower",
        "contract_no": "HT-0001",
        "category": "overdue",
        "loan_amount": "10000.00",
        "overdue_amount": "2000.00",
        "delinquent_since": (today - datetime.timedelta(days=400)).isoformat(),
        "notified_on": (today - datetime.timedelta(days=380)).isoformat(),
        "notice_method": "letter",
    }
    result = parse_row(values, today=today)
    assert result.ok, result.errors
    f = SimpleUploadedFile("ledger.pdf", PDF, content_type="application/pdf")
    entry, _outcome = registry_services.entry_report(
        actor=reporter, member=member, row=result.data, evidence=[(f, check_upload(f))]
    )
    return registry_services.entry_approve(entry=entry, actor=reviewer)


def sweeps_done(log_path) -> int:
    with open(log_path, encoding="utf-8", errors="replace") as log:
        return len(re.findall(r"Task disputes\.sweep\[[^\]]+\] succeeded", log.read()))


def log_tail(log_path, lines: int = 60) -> str:
    with open(log_path, encoding="utf-8", errors="replace") as log:
        return "".join(log.readlines()[-lines:])


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return condition()


def stop(worker: subprocess.Popen) -> None:
    """Warm shutdown; if it hangs, kill the worker and the beat process it started (the worker
    leads its own process group)."""
    if worker.poll() is None:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(worker.pid, signal.SIGKILL)  # leftovers of this group only, if any


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_with_beat_delivers_a_due_reminder_once(
    counter_clerk, lender_staff, lender_a, review_officer, tmp_path
):
    # Received 20 Shanghai days ago: the decision is due at the end of today (or, a few
    # minutes before midnight, received 19 days ago and due at the end of tomorrow, so that it
    # cannot turn overdue while the test runs).
    now = timezone.now()
    close_to_midnight = services.end_of_day_after(now, 0) - now < datetime.timedelta(minutes=5)
    received = now - datetime.timedelta(days=19 if close_to_midnight else 20)
    entry = make_entry(lender_staff, lender_a, review_officer)
    dispute = services.dispute_receive(
        actor=counter_clerk, subject=entry.subject, entry=entry, claim_type=ClaimType.REPAID,
        description="Repaid last year.", applicant_name="王五", channel=IntakeChannel.COUNTER, now=received,
    )
    dispute = services.dispute_assign(dispute=dispute, actor=review_officer, assignee=review_officer, now=received)
    due = Dispute.objects.get(pk=dispute.pk).decision_due_at
    assert due > now + datetime.timedelta(minutes=5)
    assert services.days_left(due, now) <= 1  # the one-day reminder is due now
    assert Reminder.objects.count() == 0
    notes_before = Notification.objects.filter(user=review_officer).count()
    emails_before = OutgoingEmail.objects.filter(to=review_officer.email).count()

    broker_url, redis_db = fresh_broker_url()
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "blacklist_portal.settings.test",
        "DATABASE_URL": worker_database_url(),
        "CONN_MAX_AGE": "0",
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": broker_url,
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "PORTAL_DISPUTE_SWEEP_SECONDS": str(SWEEP_SECONDS),
        # One reminder step (1 day before), so "once" means one Reminder and one notification.
        "PORTAL_DISPUTE_REMINDER_DAYS": "1",
        # Ignored under the test settings (they force the in-memory backend), set for clarity.
        "EMAIL_URL": f"filemail://{tmp_path / 'mail'}",
    }
    command = [
        sys.executable, "-m", "celery", "-A", "blacklist_portal", "worker", "--beat", "--pool=solo",
        "--loglevel=INFO", "--schedule", str(tmp_path / "beat-schedule"), "--hostname", f"disputes-test-{os.getpid()}@%h",
    ]
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            command, env=env, cwd=settings.BASE_DIR, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        reminded = wait_for(lambda: Reminder.objects.filter(dispute=dispute).exists(), REMINDER_TIMEOUT)
        assert reminded, f"no reminder within {REMINDER_TIMEOUT} s; worker log:\n{log_tail(log_path)}"
        delivered = wait_for(
            lambda: OutgoingEmail.objects.filter(to=review_officer.email, sent_at__isnull=False)
            .count() > emails_before,
            20,
        )
        assert delivered, f"the reminder's e-mail was not sent; worker log:\n{log_tail(log_path)}"
        # At least two more beat ticks run the sweep again after the reminder went out.
        ticks = sweeps_done(log_path)
        assert wait_for(lambda: sweeps_done(log_path) >= ticks + 2, 5 * SWEEP_SECONDS + 10), log_tail(log_path)
        assert worker.poll() is None, log_tail(log_path)
    finally:
        stop(worker)
        if redis_db is not None:
            redis_db.flushdb()

    assert list(Reminder.objects.filter(dispute=dispute).values_list("kind", "step")) == [
        (Reminder.Kind.DUE_SOON, 1)
    ]
    assert Notification.objects.filter(user=review_officer).count() == notes_before + 1
    reminder_email = OutgoingEmail.objects.filter(to=review_officer.email).order_by("-pk").first()
    assert OutgoingEmail.objects.filter(to=review_officer.email).count() == emails_before + 1
    assert reminder_email.sent_at is not None
    assert reminder_email.attempts == 1
    assert Dispute.objects.get(pk=dispute.pk).receipt_no in reminder_email.subject
    assert sweeps_done(log_path) >= 3
