"""Bulk import benchmark: a generated N-row file through the real import path.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_bench \\
    DJANGO_SETTINGS_MODULE=blacklist_portal.settings.base \\
        .venv/bin/python -m bench.import_bench --rows 100000 --format csv

(``make bench-import`` creates the database, migrates it and runs CSV and XLSX.)

What it does, in one process:

1. Creates (or reuses) a benchmark lender institution and a lender-staff user, and an evidence
   PDF that every batch carries (import-format.md: "the batch carries one evidence attachment").
2. Generates the file with ``bench.gen_import`` in a subprocess (so generating it does not
   count towards this process's memory): CSV in GB18030 or XLSX, Chinese headers, about 1% of
   the rows deliberately bad. The seed (by default the current time) tags the contract
   numbers and picks the identifiers, so each run reports new entries.
3. Times the path a member's upload takes, calling the services directly; the Celery tasks
   are thin wrappers (``registry.tasks``), so ``Task.apply_async`` (what ``.delay`` calls) is
   replaced by a recorder for the run: nothing is sent to a broker, and the report checks
   that the services asked for exactly one validation and one load task.

   - upload: ``check_upload`` over a django ``File`` on the generated file (size, SHA-256,
     content sniffing) and ``bulk.batch_create`` (stores the file and the evidence privately);
   - validate: ``bulk.batch_validate`` (the dry run and its error report);
   - start load: ``bulk.batch_start_load(mode="valid_only")``;
   - load: ``bulk.batch_load`` (re-validates while loading, upserts in chunks with history).

4. Uploads the same file again and runs the same phases: the second load must create and
   update nothing.

Reported per phase: seconds, rows/s (rows of the file), SQL statements, CPU seconds of this
process (the rest is waiting for the database), and the peak RSS within the phase (the
kernel's high-water mark is reset before each phase through ``/proc/self/clear_refs``). For the
process: RSS before the first upload and the peak RSS (``ru_maxrss``, read before every
reset and at the end, so it is the peak of the whole run). Printed as a Markdown table and
written as JSON to ``bench-out/import-<format>-<rows>.json``.

The generated file stays in ``bench-out/``; stored copies of the uploads go to
``bench-out/private`` unless PRIVATE_STORAGE_ROOT is set. DJANGO_DEBUG is forced off (Django
would otherwise keep every SQL statement in memory). To profile a run:
``py-spy record -o bench-out/profile.svg -- .venv/bin/python -m bench.import_bench ...``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from bench.gen_import import uscc_check  # noqa: E402  (no Django import in gen_import)

BENCH_USERNAME = "bench_lender_staff"
BENCH_INSTITUTION_NAME = "基准测试小额贷款有限公司"
_USCC_BODY = "91110105MABENCH01"
BENCH_INSTITUTION_USCC = _USCC_BODY + uscc_check(_USCC_BODY)

# A tiny but complete PDF: check_upload wants %PDF- at the start and %%EOF at the end.
EVIDENCE_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)

# Issue 7, "Targets on a 2-core machine": measured here, never asserted.
TARGET_ROWS_PER_S = 5_000
TARGET_PEAK_RSS_MB = 300

PHASES = (
    ("upload", "upload (check + store)"),
    ("validate", "validate (dry run)"),
    ("start_load", "start load"),
    ("load", "load (valid rows)"),
)


class BenchError(Exception):
    pass


# --- Memory ------------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def rss_kb() -> int | None:
    return _status_kb("VmRSS")


def max_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux ≥ 4.0), so a phase's peak is its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def mib(kb: int | None) -> str:
    return "–" if kb is None else f"{kb / 1024:,.1f}"


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


class Meter:
    """Times phases; keeps the process's peak RSS across the per-phase resets."""

    def __init__(self):
        self.process_peak_kb = max_rss_kb()

    @contextmanager
    def phase(self, results: dict, name: str):
        from django.db import connection

        self.process_peak_kb = max(self.process_peak_kb, max_rss_kb())
        can_reset = reset_peak_rss()
        counter = QueryCounter()
        rss_start = rss_kb()
        cpu_start = time.process_time()
        started = time.perf_counter()
        with connection.execute_wrapper(counter):
            yield
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_start
        self.process_peak_kb = max(self.process_peak_kb, max_rss_kb())
        results[name] = {
            "seconds": round(seconds, 3),
            "cpu_seconds": round(cpu, 3),
            "queries": counter.count,
            "rss_start_kb": rss_start,
            "rss_end_kb": rss_kb(),
            "peak_rss_kb": _status_kb("VmHWM") if can_reset else None,
        }


# --- Set-up ------------------------------------------------------------------------------------


def configure_django(out_dir: Path) -> None:
    if not os.environ.get("DATABASE_URL"):
        raise SystemExit(
            "Set DATABASE_URL, e.g. postgres://postgres@127.0.0.1:5432/portal_bench "
            "(the benchmark writes 2 × N entries; keep it away from your working database)."
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blacklist_portal.settings.base")
    os.environ["DJANGO_DEBUG"] = "false"  # DEBUG keeps every SQL statement in memory
    os.environ.setdefault("PRIVATE_STORAGE_ROOT", str(out_dir / "private"))
    from blacklist_portal.localenv import ensure_local_env

    ensure_local_env()
    import django

    django.setup()


def ensure_database() -> str:
    """Create the database named in DATABASE_URL if it does not exist (PostgreSQL), or the
    directory of the SQLite file. Returns what was done."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        return f"SQLite file {db['NAME']}"
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise BenchError(f"unsupported database engine {db['ENGINE']}")
    import psycopg
    from psycopg import sql

    params = {
        "dbname": "postgres",
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }
    name = db["NAME"]
    with psycopg.connect(
        **{k: v for k, v in params.items() if v is not None}, autocommit=True
    ) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return f"database {name} exists"
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"database {name} created"


def check_migrated(*, migrate: bool) -> None:
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if not executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    if not migrate:
        raise BenchError(
            "The database is not migrated: run `manage.py migrate` with the same DATABASE_URL "
            "first, or pass --migrate."
        )
    call_command("migrate", interactive=False, verbosity=0)


def bench_fixtures(out_dir: Path):
    """The benchmark lender, its staff user and the evidence file (created once, reused)."""
    from django.contrib.auth.models import Group

    from blacklist_portal.accounts.models import Institution, User
    from blacklist_portal.accounts.roles import Role

    member, _created = Institution.objects.get_or_create(
        uscc=BENCH_INSTITUTION_USCC,
        defaults={
            "name": BENCH_INSTITUTION_NAME,
            "kind": Institution.Kind.LENDER,
            "region": "北京市",
        },
    )
    if not member.is_active:
        member.status = Institution.Status.ACTIVE
        member.save(update_fields=["status"])
    user = User.objects.filter(username=BENCH_USERNAME).first()
    if user is None:
        user = User(
            username=BENCH_USERNAME,
            full_name="基准测试 业务员",
            email=f"{BENCH_USERNAME}@bench.invalid",
            institution=member,
        )
        user.set_unusable_password()
        user.save()
    if user.institution_id != member.pk:
        raise BenchError(f"user {BENCH_USERNAME} belongs to another institution")
    user.groups.add(Group.objects.get(name=Role.LENDER_STAFF.value))
    user = User.objects.get(pk=user.pk)  # fresh permission cache
    if not user.has_perm("accounts.report_entry"):
        raise BenchError(f"user {BENCH_USERNAME} may not report entries")
    evidence = out_dir / "bench-evidence.pdf"
    if not evidence.exists() or evidence.read_bytes() != EVIDENCE_PDF:
        evidence.write_bytes(EVIDENCE_PDF)
    return member, user, evidence


def generate_file(path: Path, *, rows: int, fmt: str, seed: int, today, bad_rate: float) -> dict:
    command = [
        sys.executable, "-m", "bench.gen_import",
        "--rows", str(rows), "--format", fmt, "--out", str(path),
        "--seed", str(seed), "--today", today.isoformat(), "--bad-rate", str(bad_rate),
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603  (our own module, no shell)
        command, cwd=BASE_DIR, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise BenchError(f"generating the file failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- The import --------------------------------------------------------------------------------


def upload(path: Path, *, member, user, evidence_path: Path):
    """What the upload view does with a valid form: check both files, create the batch."""
    from django.conf import settings
    from django.core.files import File

    from blacklist_portal.uploads import DOCUMENT_KINDS, SPREADSHEET_KINDS, check_upload
    from registry import bulk

    with path.open("rb") as fh, evidence_path.open("rb") as eh:
        f = File(fh, name=path.name)
        checked = check_upload(
            f, allowed=SPREADSHEET_KINDS, max_bytes=settings.PORTAL_IMPORT_MAX_BYTES
        )
        evidence = File(eh, name="贷款台账摘录.pdf")
        evidence_checked = check_upload(evidence, allowed=DOCUMENT_KINDS)
        return bulk.batch_create(
            actor=user,
            member=member,
            f=f,
            checked=checked,
            evidence=(evidence, evidence_checked),
        )


def run_import(path: Path, *, member, user, evidence_path: Path, meter: Meter) -> dict:
    from celery.app.task import Task

    from registry import bulk
    from registry.models import Entry, ImportBatch

    phases: dict = {}
    sent: list[str] = []  # tasks the services hand to Celery: recorded, never sent

    def record(task, *args, **kwargs):
        sent.append(task.name)

    with mock.patch.object(Task, "apply_async", record):
        with meter.phase(phases, "upload"):
            batch = upload(path, member=member, user=user, evidence_path=evidence_path)
        with meter.phase(phases, "validate"):
            batch = bulk.batch_validate(batch_id=batch.pk)
        if batch.status != ImportBatch.Status.VALIDATED:
            raise BenchError(f"batch {batch.pk} is {batch.status}: {batch.problem}")
        with meter.phase(phases, "start_load"):
            batch = bulk.batch_start_load(batch=batch, actor=user, mode=ImportBatch.Mode.VALID_ONLY)
        with meter.phase(phases, "load"):
            batch = bulk.batch_load(batch_id=batch.pk)
    rows = batch.total_rows
    for result in phases.values():
        result["rows_per_s"] = round(rows / result["seconds"]) if result["seconds"] else None
    overall = sum(phases[name]["seconds"] for name, _label in PHASES)
    return {
        "batch_id": batch.pk,
        "status": batch.status,
        "rows": rows,
        "error_rows": batch.error_rows,
        "valid_rows": batch.valid_rows,
        "created_rows": batch.created_rows,
        "updated_rows": batch.updated_rows,
        "unchanged_rows": batch.unchanged_rows,
        "entries_of_batch": Entry.objects.filter(import_batch_id=batch.pk).count(),
        "error_report": bool(batch.error_report),
        "tasks_requested": dict(Counter(sent)),
        "phases": phases,
        "overall": {
            "seconds": round(overall, 3),
            "rows_per_s": round(rows / overall) if overall else None,
            "cpu_seconds": round(sum(p["cpu_seconds"] for p in phases.values()), 3),
            "queries": sum(p["queries"] for p in phases.values()),
            "peak_rss_kb": max((p["peak_rss_kb"] or 0) for p in phases.values()) or None,
        },
    }


def checks_for(first: dict, second: dict, generated: dict) -> dict:
    rows, bad = generated["rows"], generated["bad_rows"]
    return {
        "all_rows_read": first["rows"] == rows,
        "bad_rows_rejected_exactly": first["error_rows"] == bad,
        "every_valid_row_created": first["created_rows"] == rows - bad
        and first["entries_of_batch"] == rows - bad,
        "error_report_written": first["error_report"] == (bad > 0),
        "celery_tasks_requested": first["tasks_requested"]
        == {"registry.validate_batch": 1, "registry.load_batch": 1},
        "reupload_creates_nothing": second["created_rows"] == 0,
        "reupload_updates_nothing": second["updated_rows"] == 0,
        "reupload_all_unchanged": second["unchanged_rows"] == rows - bad,
    }


# --- Report ------------------------------------------------------------------------------------


def machine_info() -> dict:
    import django
    import openpyxl
    from django.db import connection

    mem_kb = None
    try:
        match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        mem_kb = int(match.group(1)) if match else None
    except OSError:
        pass
    autovacuum = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            db_version = f"PostgreSQL {cursor.fetchone()[0]}"
            # Off, the planner never gets statistics for the freshly loaded tables.
            cursor.execute("SHOW autovacuum")
            autovacuum = cursor.fetchone()[0]
    else:
        import sqlite3

        db_version = f"SQLite {sqlite3.sqlite_version}"
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "openpyxl": openpyxl.__version__,
        "database": db_version,
        "database_on": connection.settings_dict.get("HOST") or "local file",
        "autovacuum": autovacuum,
    }


def code_version() -> dict:
    """The commit measured, and which files of the import path differ from it (if any)."""

    def git(*args) -> str:
        done = subprocess.run(  # noqa: S603
            ["git", "-C", str(BASE_DIR), *args],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    status = git("status", "--porcelain", "--", "registry", "blacklist_portal/uploads.py")
    return {
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "import_path_modified": [line[3:] for line in status.splitlines()],
    }


def _n(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return f"{value:,}"


def markdown(result: dict) -> str:
    m = result["machine"]
    fmt = "CSV (GB18030)" if result["format"] == "csv" else "XLSX"
    lines = [
        f"### Bulk import: {result['rows']:,} rows, {fmt}, {m['database']} — "
        f"{result['date']}, {m['cores']} cores, {m['memory_gib']} GiB",
        "",
        "| run | phase | rows | seconds | rows/s | SQL statements | CPU s | peak RSS in phase (MiB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run_key, run_label in (("first", "first upload"), ("reupload", "re-upload (same file)")):
        run = result[run_key]
        for i, (name, label) in enumerate(PHASES):
            p = run["phases"][name]
            lines.append(
                f"| {run_label if i == 0 else ''} | {label} | {_n(run['rows'])} | "
                f"{p['seconds']:.2f} | {_n(p['rows_per_s'])} | {_n(p['queries'])} | "
                f"{p['cpu_seconds']:.2f} | {mib(p['peak_rss_kb'])} |"
            )
        o = run["overall"]
        lines.append(
            f"| | **overall** | {_n(run['rows'])} | **{o['seconds']:.2f}** | "
            f"**{_n(o['rows_per_s'])}** | {_n(o['queries'])} | {o['cpu_seconds']:.2f} | "
            f"{mib(o['peak_rss_kb'])} |"
        )
    first, again, mem = result["first"], result["reupload"], result["memory"]
    lines += [
        "",
        f"- Rows: {first['rows']:,} read, {first['error_rows']:,} rejected by the dry run, "
        f"{first['created_rows']:,} entries created; re-upload: {again['created_rows']:,} "
        f"created, {again['updated_rows']:,} updated, {again['unchanged_rows']:,} unchanged.",
        f"- Memory: RSS before the first upload {mib(mem['rss_before_kb'])} MiB; peak RSS "
        f"(ru_maxrss) {mib(mem['peak_rss_kb'])} MiB "
        f"(+{mib(mem['peak_over_start_kb'])} MiB over the start).",
        f"- File: {result['generated']['bytes'] / 1024 / 1024:,.1f} MiB, generated in "
        f"{result['generated']['seconds']:.1f} s (seed {result['seed']}); database before the "
        f"run: {result['database_before']['entries']:,} entries, "
        f"{result['database_before']['subjects']:,} subjects.",
        f"- Machine load (1-minute average) {result['load_average']['before']} before, "
        f"{result['load_average']['after']} after; {m['cores']} cores. CPU s is this process "
        "alone; the rest of a phase's time is the database, or waiting for a core."
        + (
            " PostgreSQL runs with autovacuum off: no table statistics after a load."
            if m.get("autovacuum") == "off"
            else ""
        ),
        f"- Issue 7 targets (≥ {TARGET_ROWS_PER_S:,} rows/s, peak RSS ≤ {TARGET_PEAK_RSS_MB} MB):"
        f" rows/s {'met' if result['targets']['rows_per_s_met'] else 'missed'}, "
        f"peak RSS {'met' if result['targets']['peak_rss_met'] else 'missed'}.",
        "- Checks: "
        + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in result["checks"].items()),
        f"- Code: commit {result['code']['commit']}"
        + (
            f" with uncommitted changes in {', '.join(result['code']['import_path_modified'])}"
            if result["code"]["import_path_modified"]
            else ""
        )
        + ".",
        f"- Command: `{result['command']}`",
    ]
    return "\n".join(lines)


def command_line(argv) -> str:
    """The command that reproduces this run (the database password, if any, left out)."""
    url = re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", os.environ.get("DATABASE_URL", ""))
    args = argv if argv is not None else sys.argv[1:]
    return " ".join(
        [
            f"DATABASE_URL={url}",
            f"DJANGO_SETTINGS_MODULE={os.environ.get('DJANGO_SETTINGS_MODULE', '')}",
            ".venv/bin/python -m bench.import_bench",
            *args,
        ]
    )


# --- Main --------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m bench.import_bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    parser.add_argument(
        "--seed",
        type=int,
        help="picks the rows and tags the contract numbers (default: the current time, so "
        "every run loads new entries)",
    )
    parser.add_argument("--bad-rate", type=float, default=0.01)
    parser.add_argument("--out-dir", type=Path, default=BASE_DIR / "bench-out")
    parser.add_argument(
        "--migrate", action="store_true", help="migrate the database first if it needs it"
    )
    parser.add_argument(
        "--create-db", action="store_true", help="create the database first if it is missing"
    )
    parser.add_argument(
        "--create-db-only", action="store_true", help="create the database if missing; stop"
    )
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    out_dir = args.out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    configure_django(out_dir)
    if args.create_db or args.create_db_only:
        print(ensure_database())
        if args.create_db_only:
            return 0
    check_migrated(migrate=args.migrate)

    from django.utils import timezone

    from registry.models import Entry, Subject

    member, user, evidence_path = bench_fixtures(out_dir)
    seed = args.seed if args.seed is not None else int(time.time())
    today = timezone.localdate()
    data_file = out_dir / f"import-{args.format}-{args.rows}.{args.format}"
    print(f"Generating {args.rows:,} rows ({args.format}, seed {seed}) …", flush=True)
    generated = generate_file(
        data_file, rows=args.rows, fmt=args.format, seed=seed, today=today, bad_rate=args.bad_rate
    )
    if Entry.objects.filter(member=member, contract_no__startswith=f"XD{seed}-").exists():
        print(f"warning: seed {seed} was loaded before; the first run will find its rows on file")
    database_before = {"entries": Entry.objects.count(), "subjects": Subject.objects.count()}

    load_before = os.getloadavg()[0]
    meter = Meter()
    rss_before = rss_kb()
    print("First upload …", flush=True)
    first = run_import(
        data_file, member=member, user=user, evidence_path=evidence_path, meter=meter
    )
    print("Re-upload of the same file …", flush=True)
    again = run_import(
        data_file, member=member, user=user, evidence_path=evidence_path, meter=meter
    )
    meter.process_peak_kb = max(
        meter.process_peak_kb,
        max_rss_kb(),
        *(p["peak_rss_kb"] or 0 for run in (first, again) for p in run["phases"].values()),
    )

    best_rate = first["overall"]["rows_per_s"] or 0
    result = {
        "benchmark": "bulk import",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": command_line(argv),
        "format": args.format,
        "rows": args.rows,
        "seed": seed,
        "machine": machine_info(),
        "code": code_version(),
        # Other work on the machine slows the run down: the 1-minute load average before the
        # first upload and after the re-upload (this process counts for about 1).
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "database_before": database_before,
        "generated": generated,
        "memory": {
            "rss_before_kb": rss_before,
            "peak_rss_kb": meter.process_peak_kb,
            "peak_over_start_kb": meter.process_peak_kb - (rss_before or 0),
        },
        "first": first,
        "reupload": again,
        "checks": checks_for(first, again, generated),
        "targets": {
            "rows_per_s": TARGET_ROWS_PER_S,
            "peak_rss_mb": TARGET_PEAK_RSS_MB,
            "rows_per_s_met": best_rate >= TARGET_ROWS_PER_S,
            "peak_rss_met": meter.process_peak_kb / 1024 <= TARGET_PEAK_RSS_MB,
        },
    }
    json_path = out_dir / f"import-{args.format}-{args.rows}.json"
    json_path.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    print()
    print(markdown(result))
    print(f"\nJSON: {json_path}")
    return 0 if all(result["checks"].values()) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        sys.exit(f"import_bench: {exc}")
