"""The portal's benchmark (issue 7): one command, one table.

    make bench                    # 1,000,000 entries (SIZE=10000000 works too)
    make bench-quick              # 50,000 entries, short phases: a smoke run, < 5 minutes
    .venv/bin/python -m bench.run --size 1000000 [--duration 30] [--concurrency 16] ...

DATABASE_URL names the PostgreSQL database (``make bench BENCH_DB=…`` sets it; default
``postgres://postgres@127.0.0.1:5432/portal_bench_full``; ``make bench-quick`` uses
``portal_bench_quick``, so that a quick run never replaces the full data set). The database is
created if missing and migrated. Nothing here talks to anything but 127.0.0.1.

Stages, in order (docs/performance.md says what each number means):

1. Data set (``bench.dataset``): reused when the database already holds the requested size,
   else loaded with COPY; the load time is reported.
2. Fixtures: a fresh API key of the first member (``billing.services.apikey_create``) and
   the load test's consents through ``billing.services.consent_upload`` (2,000; reused while
   valid): 70% for subjects with entries on the register (hits), 30% for people without.
3. HTTP, one gunicorn (production settings via ``bench.settings``, bound to 127.0.0.1 on a
   free port) for all of it:
   - query throughput: ``POST /api/v1/queries`` at a fixed concurrency for a fixed time after
     a warm-up, by the closed-loop asyncio client ``bench.loadgen``; 60% loan approval (with
     the application), 40% post-loan;
   - the floor, right after, same server, same clients, same key, same subjects:
     ``GET /bench/floor?i=<blind index>`` (``bench.floor``); the ratio of time per request;
   - batch screening: 10,000 subjects (post-loan consents on file) in one
     ``POST /api/v1/batch-screenings``, twice;
   - list pages: the review queue (review officer, two-factor verified session), the largest
     member's entry list filtered by category, the dispute queue: 30 requests each, one at a
     time, after 3 unmeasured ones; the session is a row made with Django's session store.
4. The reminder sweep, in this process: ``disputes.services.dispute_sweep(now=…)`` over the
   open disputes (the data set's sweep size), twice: the first run sends the reminders (the
   reminder rows of earlier runs are deleted first, so every run does the same work), the
   second finds everything sent. ``send_outbox.delay`` is recorded, not sent to a broker.
5. Bulk import: ``python -m bench.import_bench --rows R --format csv`` and ``--format xlsx``
   (their JSON is read back).

Output: the table on stdout, ``bench-out/bench-<date>.json``, and (``--docs``, the default
for the full run) a section appended to docs/performance.md. Each result carries the
1-minute load average when it was taken: other work on the machine shows up there.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock
from urllib.parse import urlparse

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

STAGES = ("http", "query", "batch", "lists", "sweep", "import")
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/portal_bench_full"
LOAD_CONSENT_NAME = "bench-load-consent.pdf"
TARGETS = {
    "query_rps": 300,
    "query_p99_ms": 50,
    "query_floor_ratio": 2.5,
    "batch_seconds": 2.0,
    "import_rows_per_s": 5000,
    "import_peak_rss_mb": 300,
    "list_p95_ms": 150,
    "sweep_seconds": 5.0,
}


def log(message: str = "") -> None:
    print(message, flush=True)


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


# --- Environment --------------------------------------------------------------------------------


def bench_environment(database_url: str, out_dir: Path, cache_url: str) -> dict[str, str]:
    """What production requires from the environment, with bench-only values.

    The keys are derived from the database name: a benchmark database holds only synthetic
    data, and deriving them means a fresh clone can reuse a data set loaded earlier (its
    tokens and blind indexes need the same keys). Never use these keys for real data.
    """
    name = urlparse(database_url).path.lstrip("/") or "bench"

    def key(label: str) -> str:
        raw = hashlib.sha256(f"portal-bench:{name}:{label}".encode()).digest()
        return base64.urlsafe_b64encode(raw).decode()

    return {
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-only-" + key("secret"),
        "FIELD_ENCRYPTION_KEYS": f"bench:{key('field')}",
        "BLIND_INDEX_KEY": key("blind"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "PORTAL_API_RATE_LIMIT": "1000000000",
        "CACHE_URL": cache_url,
        "PORTAL_VAR_DIR": str(out_dir / "var"),
        "PRIVATE_STORAGE_ROOT": str(out_dir / "private"),
        "STATIC_ROOT": str(out_dir / "static"),
        "LOG_LEVEL": "WARNING",
        "DJANGO_DEBUG": "false",
    }


def redis_cache_url() -> str:
    """Production keeps the API rate-limit counters in Redis; use it when it answers."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return "redis://127.0.0.1:6379/14"
    except OSError:
        pass
    return "locmemcache://"


def ensure_database(database_url: str) -> str:
    import psycopg
    from psycopg import sql

    url = urlparse(database_url)
    name = url.path.lstrip("/")
    params = {"dbname": "postgres", "host": url.hostname, "port": url.port or 5432,
              "user": url.username, "password": url.password}  # fmt: skip
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return "exists"
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return "created"


def setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


# --- Machine and versions -------------------------------------------------------------------------


def machine() -> dict:
    import django
    from django.db import connection

    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(re.search(r"^MemTotal:\s+(\d+)", meminfo, re.M).group(1))
    cpu = ""
    with contextlib.suppress(OSError, AttributeError):
        cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M).group(
            1
        )
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
        settings = {}
        for name in ("shared_buffers", "work_mem", "synchronous_commit", "autovacuum"):
            cur.execute(f"SHOW {name}")
            settings[name] = cur.fetchone()[0]
    import gunicorn
    import psycopg

    def git(*args):
        done = subprocess.run(["git", "-C", str(BASE_DIR), *args], capture_output=True,  # noqa: S603, S607
                              text=True, check=False)  # fmt: skip
        return done.stdout.strip()

    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": cpu,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        "psycopg": psycopg.__version__,
        "postgresql": pg,
        "postgresql_settings": settings,
        "commit": git("rev-parse", "--short", "HEAD"),
        "modified_files": dirty,
    }


# --- Fixtures ---------------------------------------------------------------------------------------


def api_key(fx: dict) -> str:
    from billing.services import apikey_create

    _key, raw = apikey_create(
        actor=fx["admin"], name=f"bench {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M}"
    )
    return raw


def load_consents(fx: dict, raw_key: str, wanted: int) -> tuple[list[dict], dict]:
    """The load test's consents: [{consent_id, id_type, id_number, name, index, hit}]."""
    from django.core.files.base import ContentFile
    from django.db.models import F
    from django.utils import timezone

    from bench import dataset
    from billing.choices import Channel, Purpose
    from billing.models import Consent
    from billing.services import apikey_authenticate, consent_upload
    from blacklist_portal.uploads import DOCUMENT_KINDS, check_upload
    from registry.models import Entry

    member = fx["members"][0]
    today = timezone.localdate()
    existing = list(
        Consent.objects.filter(member=member, original_name=LOAD_CONSENT_NAME,
                               expires_on__gte=today + datetime.timedelta(days=30))
        .select_related("subject").order_by("pk")[:wanted]
    )  # fmt: skip
    info = {"wanted": wanted}
    if len(existing) < wanted:
        key = apikey_authenticate(raw_key)
        hits = round(wanted * 0.7)
        have = {c.subject.id_index for c in existing}
        # Subjects with a visible entry, spread over the table.
        step = max(
            2, Entry.objects.order_by("-pk").values_list("pk", flat=True).first() // (hits * 3)
        )
        subject_ids = list(
            Entry.objects.annotate(spread=F("id") % step)
            .filter(status__in=Entry.VISIBLE, spread=1)
            .values_list("subject_id", flat=True)[: hits * 2]
        )
        plan = [dataset.identity(sid - 1) for sid in dict.fromkeys(subject_ids)][:hits]
        plan += [dataset.identity(dataset.ID_SPACE - 1 - j) for j in range(wanted - len(plan))]
        t0 = time.perf_counter()
        made = 0
        for _stype, id_type, number, name in plan:
            if len(existing) + made >= wanted:
                break
            from registry.services import id_index_for

            if id_index_for(id_type, number) in have:
                continue
            f = ContentFile(dataset.CONSENT_PDF, name=LOAD_CONSENT_NAME)
            consent_upload(
                actor=None, api_key=key, member=member, f=f,
                checked=check_upload(f, allowed=DOCUMENT_KINDS), id_type=id_type,
                id_number=number, name=name, purposes=[Purpose.LOAN_APPROVAL, Purpose.POST_LOAN],
                signed_on=today - datetime.timedelta(days=10),
                expires_on=today + datetime.timedelta(days=365), channel=Channel.API,
            )  # fmt: skip
            made += 1
        seconds = time.perf_counter() - t0
        info.update({"created": made, "seconds": round(seconds, 2),
                     "per_second": round(made / seconds, 1) if seconds else None})  # fmt: skip
        existing = list(
            Consent.objects.filter(member=member, original_name=LOAD_CONSENT_NAME,
                                   expires_on__gte=today + datetime.timedelta(days=30))
            .select_related("subject").order_by("pk")[:wanted]
        )  # fmt: skip
    else:
        info["created"] = 0
    visible = set(
        Entry.objects.filter(subject_id__in=[c.subject_id for c in existing], status__in=Entry.VISIBLE)
        .values_list("subject_id", flat=True)
    )  # fmt: skip
    rows = [{"consent_id": c.pk, "id_type": c.subject.id_type, "id_number": c.subject.id_number,
             "name": c.subject.name, "index": c.subject.id_index, "hit": c.subject_id in visible}
            for c in existing]  # fmt: skip
    info["consents"] = len(rows)
    info["hit_share"] = round(sum(r["hit"] for r in rows) / len(rows), 3) if rows else None
    return rows, info


# --- Gunicorn ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict, out_dir: Path, *, workers: int, threads: int, stamp: str,
                 connections: int):  # fmt: skip
        self.port = free_port()
        self.log_path = out_dir / f"gunicorn-{stamp}.log"
        # Each worker takes at most its share of the keep-alive connections: left to chance,
        # one worker sometimes accepted most of the 16 clients and ran them on one core
        # (the floor measured 306 req/s in one run and 645 in the next).
        per_worker = -(-connections // workers)
        self.command = [
            sys.executable, "-m", "gunicorn", "blacklist_portal.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads), "--keep-alive", "30",
            "--worker-connections", str(per_worker),
            "--timeout", "300", "--graceful-timeout", "10", "--log-level", "warning",
            "--error-logfile", str(self.log_path),
        ]  # fmt: skip
        self.env = {**os.environ, **env}
        self.proc: subprocess.Popen | None = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.command, cwd=BASE_DIR, env=self.env,  # noqa: S603
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited; see {self.log_path}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                time.sleep(0.3)
        raise SystemExit(f"gunicorn did not answer within 60 s; see {self.log_path}")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- HTTP stages ---------------------------------------------------------------------------------------


def _load(port: int, request_for, **kwargs) -> dict:
    from bench.loadgen import run_load

    before = load_average()
    result = asyncio.run(run_load("127.0.0.1", port, request_for, **kwargs))
    summary = result.summary()
    summary["load_average"] = {"before": before, "after": load_average()}
    summary["concurrency"] = kwargs.get("concurrency")
    return summary, result


def query_phase(port: int, key: str, consents: list[dict], args) -> dict:
    from django.utils import timezone

    from bench.loadgen import build_request

    today = timezone.localdate().isoformat()
    host = f"127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies, floors = [], []
    for i, c in enumerate(consents):
        body = {"id_type": c["id_type"], "id_number": c["id_number"], "name": c["name"],
                "consent_id": c["consent_id"]}  # fmt: skip
        if i % 5 < 3:
            body["purpose"] = "loan_approval"
            body["application"] = {"amount": f"{5000 + 97 * i % 200000}.00", "loan_type": "consumer",
                                   "applied_on": today}  # fmt: skip
        else:
            body["purpose"] = "post_loan"
        bodies.append(build_request("POST", "/api/v1/queries", host=host, headers=headers,
                                    body=json.dumps(body, ensure_ascii=False).encode()))  # fmt: skip
        floors.append(build_request("GET", f"/bench/floor?i={c['index']}", host=host,
                                    headers={"Authorization": f"Bearer {key}"}))  # fmt: skip
    n = len(bodies)

    def pick(pool):
        return lambda client, sent: pool[(client * 7919 + sent * 31 + sent // n) % n]

    results = {}
    for name, pool in (("query", bodies), ("floor", floors)):
        log(
            f"  {name}: {args.concurrency} clients, {args.warmup:.0f} s warm-up + {args.duration:.0f} s …"
        )
        summary, raw = _load(port, pick(pool), concurrency=args.concurrency, duration=args.duration,
                             warmup=args.warmup)  # fmt: skip
        if name == "query" and raw.sample_body:
            sample = json.loads(raw.sample_body)
            summary["sample"] = {k: sample.get(k) for k in ("query_no", "hit", "risk_grade", "fee")}
        results[name] = summary
        log(f"    {summary['requests_per_s']} req/s, p50 {summary['p50_ms']} ms, p95 "
            f"{summary['p95_ms']} ms, p99 {summary['p99_ms']} ms, errors {summary['errors']}, "
            f"load {summary['load_average']}")  # fmt: skip
    q, f = results["query"], results["floor"]
    results["ratio"] = {
        "time_per_request": round(q["time_per_request_ms"] / f["time_per_request_ms"], 2)
        if q["time_per_request_ms"] and f["time_per_request_ms"]
        else None,
        "p50": round(q["p50_ms"] / f["p50_ms"], 2) if q["p50_ms"] and f["p50_ms"] else None,
        "p99": round(q["p99_ms"] / f["p99_ms"], 2) if q["p99_ms"] and f["p99_ms"] else None,
    }
    return results


def batch_phase(port: int, key: str, fx: dict, runs: int = 2) -> dict:
    from bench import dataset
    from billing.models import Consent

    consents = list(
        Consent.objects.filter(member=fx["members"][0], original_name="授权书.pdf")
        .select_related("subject").order_by("pk")[: dataset.BATCH_CONSENTS]
    )  # fmt: skip
    subjects = [{"id_type": c.subject.id_type, "id_number": c.subject.id_number,
                 "name": c.subject.name, "consent_id": c.pk} for c in consents]  # fmt: skip
    body = json.dumps({"purpose": "post_loan", "subjects": subjects}, ensure_ascii=False).encode()
    out = {"subjects": len(subjects), "request_bytes": len(body), "runs": []}
    for i in range(runs):
        before = load_average()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/batch-screenings", body=body,
                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
        resp = conn.getresponse()
        data = resp.read()
        seconds = time.perf_counter() - t0
        conn.close()
        run = {"status": resp.status, "seconds": round(seconds, 3),
               "subjects_per_s": round(len(subjects) / seconds), "response_bytes": len(data),
               "load_average": {"before": before, "after": load_average()}}  # fmt: skip
        if resp.status == 201:
            summary = json.loads(data)["summary"]
            run["summary"] = summary
        else:
            run["error"] = data[:300].decode("utf-8", "replace")
        out["runs"].append(run)
        log(f"  batch run {i + 1}: {resp.status} in {seconds:.2f} s ({run['subjects_per_s']:,} subjects/s), "
            f"{run.get('summary')}")  # fmt: skip
    return out


def session_cookie(user, *, two_factor: bool) -> str:
    """A signed-in session for `user`, as a row of the session store (what a login makes)."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from blacklist_portal.accounts.middleware import LOGIN_TIME_KEY

    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[LOGIN_TIME_KEY] = time.time()
    if two_factor:
        store[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(
            user=user, confirmed=True
        ).persistent_id
    store.create()
    return f"{settings.SESSION_COOKIE_NAME}={store.session_key}"


def list_phase(port: int, fx: dict, repeats: int) -> dict:
    from django.urls import reverse

    from bench.loadgen import build_request

    host = f"127.0.0.1:{port}"
    officer = session_cookie(fx["officer"], two_factor=True)
    staff = session_cookie(fx["staff"][0], two_factor=False)
    pages = {
        "review_queue": (reverse("registry:review_queue"), officer),
        "member_entries_filtered": (
            reverse("registry:entry_list") + "?category=court_judgment",
            staff,
        ),
        "dispute_queue": (reverse("disputes:queue"), officer),
    }
    out = {}
    for name, (path, cookie) in pages.items():
        raw = build_request("GET", path, host=host, headers={"Cookie": cookie})
        _load(port, lambda c, s, raw=raw: raw, concurrency=1, requests=3)  # unmeasured
        summary, result = _load(port, lambda c, s, raw=raw: raw, concurrency=1, requests=repeats)
        rows = result.sample_body.count(b"<tr") if result.sample_body else None
        summary.update({"path": path, "sample_rows_in_first_2kb": rows})
        out[name] = summary
        log(f"  {name} {path}: p50 {summary['p50_ms']} ms, p95 {summary['p95_ms']} ms, "
            f"errors {summary['errors']} {summary['error_sample'][:120]}")  # fmt: skip
    return out


# --- Sweep ------------------------------------------------------------------------------------------


def sweep_phase(anchor: datetime.datetime) -> dict:
    from celery.app.task import Task

    from blacklist_portal.inbox.models import Notification, OutgoingEmail
    from disputes.models import Dispute, Reminder
    from disputes.services import dispute_sweep
    from disputes.workflow import OPEN_STATUSES

    now = anchor + datetime.timedelta(minutes=1)
    reset = Reminder.objects.filter(dispute__receipt_no__startswith="DX").delete()[0]
    Notification.objects.filter(user__username__startswith="bench_").delete()
    OutgoingEmail.objects.filter(to__endswith="@bench.invalid").delete()
    horizon = now + datetime.timedelta(days=6)
    out = {
        "open_disputes": Dispute.objects.filter(status__in=OPEN_STATUSES).count(),
        "open_within_horizon": Dispute.objects.filter(
            status__in=OPEN_STATUSES, decision_due_at__lte=horizon
        ).count(),  # fmt: skip
        "reminder_rows_reset": reset,
        "now": now.isoformat(),
        "runs": [],
    }
    sent: list[str] = []
    with mock.patch.object(Task, "apply_async", lambda task, *a, **k: sent.append(task.name)):
        for i in range(2):
            before = load_average()
            t0 = time.perf_counter()
            counts = dispute_sweep(now=now)
            seconds = time.perf_counter() - t0
            out["runs"].append({"seconds": round(seconds, 2), "counts": counts,
                                "tasks_requested": len(sent),
                                "load_average": {"before": before, "after": load_average()}})  # fmt: skip
            sent.clear()
            log(f"  sweep run {i + 1}: {seconds:.2f} s, {counts}")
    return out


# --- Import -------------------------------------------------------------------------------------------


def import_phase(env: dict, rows: int, out_dir: Path) -> dict:
    out = {}
    for fmt in ("csv", "xlsx"):
        before = load_average()
        logfile = out_dir / f"import-{fmt}-{rows}.log"
        t0 = time.perf_counter()
        with logfile.open("w") as fh:
            # Through a shell that forks it: Linux carries a process's peak RSS (ru_maxrss)
            # across fork and exec, so a child started straight from this (large) process
            # would report this process's peak as its own.
            done = subprocess.run(  # noqa: S603
                ["/bin/sh", "-c", '"$@"; exit $?', "sh",
                 sys.executable, "-m", "bench.import_bench", "--rows", str(rows), "--format", fmt],
                cwd=BASE_DIR, env={**os.environ, **env}, stdout=fh, stderr=subprocess.STDOUT,
                check=False,
            )  # fmt: skip
        wall = time.perf_counter() - t0
        path = out_dir / f"import-{fmt}-{rows}.json"
        entry = {"exit_code": done.returncode, "wall_seconds": round(wall, 1), "log": str(logfile),
                 "load_average": {"before": before, "after": load_average()}}  # fmt: skip
        try:
            data = json.loads(path.read_text())
            if path.stat().st_mtime < time.time() - wall - 5:
                raise ValueError("stale JSON")
            first = data.get("first", {}).get("overall", {})
            entry.update({
                "rows": data.get("rows"),
                "seconds": first.get("seconds"),
                "rows_per_s": first.get("rows_per_s"),
                "peak_rss_mb": round(data["memory"]["peak_rss_kb"] / 1024, 1)
                if data.get("memory", {}).get("peak_rss_kb") else None,
                "rss_before_mb": round(data["memory"]["rss_before_kb"] / 1024, 1)
                if data.get("memory", {}).get("rss_before_kb") else None,
                "phases": {k: {"seconds": v.get("seconds"), "rows_per_s": v.get("rows_per_s")}
                           for k, v in data.get("first", {}).get("phases", {}).items()},
                "reupload_seconds": data.get("reupload", {}).get("overall", {}).get("seconds"),
                "checks": data.get("checks"),
                "json": str(path),
            })  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError) as exc:
            entry["error"] = f"no result JSON ({exc}); see {logfile}"
        out[fmt] = entry
        log(f"  import {fmt}: {entry.get('rows_per_s')} rows/s, peak RSS {entry.get('peak_rss_mb')} MB, "
            f"exit {done.returncode}")  # fmt: skip
    return out


# --- Report -------------------------------------------------------------------------------------------


def _v(value, fmt="{:,}") -> str:
    if value is None:
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def _utc(iso: str) -> str:
    when = datetime.datetime.fromisoformat(iso).astimezone(datetime.UTC)
    return f"{when:%Y-%m-%d %H:%M} UTC"


def _mark(ok) -> str:
    return "–" if ok is None else ("met" if ok else "**missed**")


def table(r: dict) -> str:
    """The results as one Markdown table (what, result, target, met, load average)."""
    rows = []

    def add(what, result, target, ok, load):
        rows.append(f"| {what} | {result} | {target} | {_mark(ok)} | {load} |")

    T = TARGETS
    ds = r["dataset"]
    add("data set", f"{ds['entries']:,} entries; " + (
        f"reused (loaded {_utc(ds['loaded_at'])} in {ds['load_seconds']:.0f} s)" if ds["reused"]
        else f"loaded in {ds['load_seconds']:.0f} s (COPY)"), "–", None, ds.get("load_average", "–"))  # fmt: skip
    http = r.get("http", {})
    sections = {
        **{k: v for k, v in r.items() if k in STAGES},
        **{f"http {k}": v for k, v in http.items()},
    }
    failed = [(k, v["error"]) for k, v in sections.items() if isinstance(v, dict) and "error" in v]
    for what, error in failed:
        add(f"{what} stage", f"failed: {error[:200]}", "–", False, "–")
    http = {k: v for k, v in http.items() if not (isinstance(v, dict) and "error" in v)}
    r = {k: v for k, v in r.items() if not (k in STAGES and isinstance(v, dict) and "error" in v)}
    if "query" in http:
        q, f, ratio = http["query"]["query"], http["query"]["floor"], http["query"]["ratio"]
        add(f"API query, {q['concurrency']} clients, {q['seconds']:.0f} s",
            f"{_v(q['requests_per_s'])} req/s; p50 {q['p50_ms']} / p95 {q['p95_ms']} / p99 "
            f"{q['p99_ms']} ms; {q['errors']} errors of {q['requests']:,}",
            f"≥ {T['query_rps']} req/s, p99 ≤ {T['query_p99_ms']} ms",
            (q["requests_per_s"] or 0) >= T["query_rps"] and (q["p99_ms"] or 1e9) <= T["query_p99_ms"],
            q["load_average"]["after"])  # fmt: skip
        add("floor (auth + 1 indexed lookup)",
            f"{_v(f['requests_per_s'])} req/s; p50 {f['p50_ms']} / p95 {f['p95_ms']} / p99 "
            f"{f['p99_ms']} ms; {f['errors']} errors", "–", None, f["load_average"]["after"])  # fmt: skip
        add("API query ÷ floor, time per request", f"{_v(ratio['time_per_request'])}× "
            f"(p50 {_v(ratio['p50'])}×)", f"≤ {T['query_floor_ratio']}×",
            None if ratio["time_per_request"] is None else ratio["time_per_request"] <= T["query_floor_ratio"],
            "–")  # fmt: skip
    if "batch" in http:
        for i, run in enumerate(http["batch"]["runs"], 1):
            add(f"batch screening, {http['batch']['subjects']:,} subjects (run {i})",
                f"{run['seconds']:.2f} s, {run['subjects_per_s']:,} subjects/s (HTTP {run['status']})",
                f"≤ {T['batch_seconds']:.0f} s", run["status"] == 201 and run["seconds"] <= T["batch_seconds"],
                run["load_average"]["after"])  # fmt: skip
    if "lists" in http:
        for name, page in http["lists"].items():
            add(f"list page: {name.replace('_', ' ')} (`{page['path']}`)",
                f"p95 {page['p95_ms']} ms (p50 {page['p50_ms']}, max {page['max_ms']}; "
                f"{page['requests']} requests, {page['errors']} errors)",
                f"p95 ≤ {T['list_p95_ms']} ms", page["errors"] == 0 and (page["p95_ms"] or 1e9) <= T["list_p95_ms"],
                page["load_average"]["after"])  # fmt: skip
    if "sweep" in r:
        s = r["sweep"]
        for i, run in enumerate(s["runs"], 1):
            sent = sum(v for k, v in run["counts"].items() if k != "closed")
            add(f"reminder sweep, {s['open_disputes']:,} open disputes (run {i})",
                f"{run['seconds']:.2f} s; {sent:,} reminders/escalations sent",
                f"≤ {T['sweep_seconds']:.0f} s", run["seconds"] <= T["sweep_seconds"],
                run["load_average"]["after"])  # fmt: skip
    if "import" in r:
        for fmt, imp in r["import"].items():
            if "error" in imp:
                add(f"bulk import, {fmt}", imp["error"], "", False, imp["load_average"]["after"])
                continue
            ok = (imp["rows_per_s"] or 0) >= T["import_rows_per_s"] and (
                imp["peak_rss_mb"] or 1e9
            ) <= T["import_peak_rss_mb"]
            add(f"bulk import, {imp['rows']:,} rows, {'CSV (GB18030)' if fmt == 'csv' else 'XLSX'}",
                f"{_v(imp['rows_per_s'])} rows/s ({imp['seconds']:.0f} s), peak RSS {imp['peak_rss_mb']} MB",
                f"≥ {T['import_rows_per_s']:,} rows/s, ≤ {T['import_peak_rss_mb']} MB", ok,
                imp["load_average"]["after"])  # fmt: skip
    head = ["| measure | result | target | | load avg |", "|---|---|---|---|---:|"]
    return "\n".join(head + rows)


def markdown_section(r: dict) -> str:
    m = r["machine"]
    cfg = r["config"]
    lines = [
        f"### {r['date'][:16].replace('T', ' ')} UTC — {r['dataset']['entries']:,} entries"
        f"{' (quick)' if cfg['quick'] else ''}",
        "",
        f"Machine: {m['cores']} cores ({m['cpu'] or 'unknown CPU'}), {m['memory_gib']} GiB; "
        f"{m['platform']}. Python {m['python']}, Django {m['django']}, gunicorn {m['gunicorn']} "
        f"({cfg['workers']} workers × {cfg['threads']} threads, gthread), psycopg {m['psycopg']}, "
        f"PostgreSQL {m['postgresql']} ({', '.join(f'{k} {v}' for k, v in m['postgresql_settings'].items())}); "
        f"rate-limit cache {cfg['cache']}. Commit {m['commit']}"
        + (
            f" with uncommitted changes in {len(m['modified_files'])} files"
            if m["modified_files"]
            else ""
        )
        + f". Load average (1 min) at the start {r['load_average']['start']}, at the end "
        f"{r['load_average']['end']}: other work shared the 2 cores.",
        "",
        table(r),
        "",
        f"Command: `{r['command']}`; JSON: `{r['json']}`.",
        "",
    ]
    return "\n".join(lines)


def stage(results: dict, key: str, fn, *args) -> None:
    """Run one stage; a failure is recorded (and shown in the table), the others still run."""
    try:
        results[key] = fn(*args)
    except Exception as exc:  # noqa: BLE001  (any failure of one stage)
        import traceback

        results[key] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        log(f"  stage {key} failed: {type(exc).__name__}: {exc}")
        log("".join(traceback.format_exc().splitlines(keepends=True)[-8:]))


# --- Main -----------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=1_000_000, help="entries in the data set")
    p.add_argument("--quick", action="store_true",
                   help="smoke-run defaults: 50,000 entries, 10 s load phases, 20,000-row imports, "
                   "10,000 disputes swept, 1,000 consents")  # fmt: skip
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--duration", type=float, help="seconds per load phase (30; quick 10)")
    p.add_argument("--warmup", type=float, help="warm-up seconds per load phase (5; quick 3)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    p.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    p.add_argument("--consents", type=int, help="consents for the query load (2,000; quick 1,000)")
    p.add_argument("--import-rows", type=int, help="rows per import file (100,000; quick 20,000)")
    p.add_argument(
        "--sweep-disputes", type=int, help="open disputes for the sweep (100,000; quick 10,000)"
    )
    p.add_argument("--list-repeats", type=int, default=30)
    p.add_argument(
        "--skip", default="", help="comma-separated stages to skip: http,batch,lists,sweep,import"
    )
    p.add_argument("--docs", action=argparse.BooleanOptionalAction, default=None,
                   help="append the section to docs/performance.md (default: yes, except --quick)")  # fmt: skip
    p.add_argument("--cache", choices=("redis", "locmem"), default="redis",
                   help="rate-limit cache of the server (redis when it answers on 127.0.0.1:6379)")  # fmt: skip
    p.add_argument("--out-dir", type=Path, default=BASE_DIR / "bench-out")
    args = p.parse_args(argv)
    quick = args.quick
    if quick and "--size" not in (argv if argv is not None else sys.argv):
        args.size = 50_000
    args.duration = args.duration or (10.0 if quick else 30.0)
    args.warmup = args.warmup if args.warmup is not None else (3.0 if quick else 5.0)
    args.consents = args.consents or (1000 if quick else 2000)
    # Quick: about 2.5 minutes at a load average of 4 (the import and the first sweep take
    # half of it); at a load average of 6 still under 5 minutes.
    args.import_rows = args.import_rows or (20_000 if quick else 100_000)
    args.sweep_disputes = args.sweep_disputes or (10_000 if quick else 100_000)
    args.docs = (not quick) if args.docs is None else args.docs
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    out_dir = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DB
    cache = redis_cache_url() if args.cache == "redis" else "locmemcache://"
    env = bench_environment(database_url, out_dir, cache)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S")
    results: dict = {
        "benchmark": "portal (issue 7)",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": "make bench-quick" if args.quick else f"make bench SIZE={args.size}",
        "load_average": {"start": load_average()},
        "config": {
            "quick": args.quick,
            "size": args.size,
            "seed": args.seed,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "threads": args.threads,
            "consents": args.consents,
            "import_rows": args.import_rows,
            "sweep_disputes": args.sweep_disputes,
            "list_repeats": args.list_repeats,
            "cache": cache.split("/")[0].rstrip(":"),
            "database": re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", database_url),
        },  # fmt: skip
        "targets": TARGETS,
    }
    log(f"Benchmark: {args.size:,} entries, database {urlparse(database_url).path.lstrip('/')}, "
        f"load average {results['load_average']['start']}")  # fmt: skip

    log(f"Database: {ensure_database(database_url)}")
    setup_django(env)
    from django.core.management import call_command

    t0 = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    results["migrate_seconds"] = round(time.perf_counter() - t0, 1)
    manifest = Path(env["STATIC_ROOT"]) / "staticfiles.json"
    if not manifest.exists():
        call_command("collectstatic", interactive=False, verbosity=0)
    results["machine"] = machine()

    from bench import dataset

    before = load_average()
    ds = dataset.ensure_dataset(
        args.size, seed=args.seed, sweep_disputes=args.sweep_disputes, log=log
    )
    marker = ds["marker"]
    results["dataset"] = {
        "entries": args.size, "reused": ds["reused"], "loaded_at": marker["anchor"],
        "load_seconds": marker["load_seconds"], "timings": marker.get("timings"),
        "counts": marker.get("counts"), "method": "COPY (psycopg), rows built in Python, then VACUUM ANALYZE",
        "load_average": before if ds["reused"] else load_average(),
    }  # fmt: skip
    fx = dataset.fixtures()
    raw_key = api_key(fx)
    consents, consent_info = load_consents(fx, raw_key, args.consents)
    results["consents"] = consent_info
    log(f"Consents for the load test: {consent_info}")

    http_results: dict = {}
    if "http" not in args.skip:
        log(
            f"HTTP: gunicorn {args.workers} workers × {args.threads} threads (production settings) …"
        )
        try:
            with Server(
                env, out_dir, workers=args.workers, threads=args.threads, stamp=stamp,
                connections=args.concurrency,
            ) as srv:
                http_results["server"] = {
                    "command": " ".join(srv.command[1:]),
                    "log": str(srv.log_path),
                }
                stage(http_results, "query", query_phase, srv.port, raw_key, consents, args)
                if "batch" not in args.skip:
                    stage(http_results, "batch", batch_phase, srv.port, raw_key, fx)
                if "lists" not in args.skip:
                    stage(http_results, "lists", list_phase, srv.port, fx, args.list_repeats)
        except SystemExit as exc:  # the server did not start
            http_results["error"] = str(exc)
            log(f"  HTTP stage failed: {exc}")
        results["http"] = http_results
    if "sweep" not in args.skip:
        log("Reminder sweep …")
        stage(results, "sweep", sweep_phase, ds["anchor"])
    if "import" not in args.skip:
        log(f"Bulk import, {args.import_rows:,} rows …")
        stage(results, "import", import_phase, env, args.import_rows, out_dir)

    results["load_average"]["end"] = load_average()
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["peak_rss_mb_of_runner"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
    )
    json_path = out_dir / f"bench-{stamp}{'-quick' if args.quick else ''}.json"
    results["json"] = (
        str(json_path.relative_to(BASE_DIR))
        if json_path.is_relative_to(BASE_DIR)
        else str(json_path)
    )
    json_path.write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str) + "\n")
    section = markdown_section(results)
    log("")
    log(section)
    if args.docs:
        doc = BASE_DIR / "docs" / "performance.md"
        with doc.open("a") as fh:
            fh.write("\n" + section)
        log(f"Appended to {doc.relative_to(BASE_DIR)}")
    log(f"JSON: {json_path}  (total {results['total_seconds']:.0f} s)")
    shutil.rmtree(out_dir / "var" / "celery", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
