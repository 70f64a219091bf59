"""The benchmark's data set: N register entries (1,000,000 by default), synthetic but realistic,
loaded straight into PostgreSQL with COPY.

    python -m bench.run --size 1000000          (bench.run calls ensure_dataset)

What is in it (``SHAPE`` below has the exact shares):

- 20 lender members with a skewed share of the entries (the largest holds about a quarter),
  one staff user each, and an operator institution with a review officer and a senior review
  officer (two-factor devices confirmed).
- Subjects: 85% of N, each a distinct identifier: resident ID numbers (RIC) with real
  region codes, birth dates from 1955 to 2006 and ISO 7064 MOD 11-2 check characters, and 5%
  enterprises with a GB 32100 unified social credit code; Chinese names, 70% with a mobile
  number. ID number, name and phone are encrypted exactly as ``EncryptedTextField`` does it
  (AES-256-GCM, associated data ``"<app_label>.<model>.<attname>"``, the current key), with
  the blind indexes of ``registry.services.id_index_for`` / ``name_index_for`` and the masks
  of ``registry.identifiers``. A subject of 15% of the entries has another entry too.
- Entries: the five categories (overdue 50%, court judgment 18%, malicious default 12%, fraud
  10%, guarantor 10%) with the fields each category requires, amounts from 1,000 to 300,000
  CNY, submitted over three years; 10% settled (with their retention date), about 87% active,
  1% pending review, and returned, expired and revoked ones.
- Disputes: 2% of the entries are under dispute, each with an open Dispute row (received in
  the last 21 days, so the decision deadlines fall from one day ago to 20 days ahead), its
  entry link and timeline event. Because the reminder sweep is measured over
  ``sweep_disputes`` open disputes (100,000 by default), the number of disputes is raised to
  that where 2% is fewer: at 1,000,000 entries 10% of the entries are then under dispute.
- A year of query history: N queries (one per entry) spread evenly over the 365 days before
  the load, 60% about subjects on the register and 40% about people who are not, by the 20
  members through the web, the API and batch screening, each with its result snapshot and, as
  billed queries are, a fee line numbered within its member's month (and the month counters).
- 10,000 consents (post-loan and loan approval) of the first member for the batch-screening
  benchmark: 7,000 subjects with entries on the register and 3,000 without.

Not loaded: the simple_history tables and the audit log's history (neither is read by what is
measured; the audit chain's head is found through its unique ``seq`` index whatever its
length), evidence files.

How: one pass per table through ``COPY ... FROM STDIN`` (psycopg), rows built in Python; the
foreign-key triggers are switched off for the loading session (``session_replication_role =
replica``, when the database user may) because every reference is made consistent by
construction; then ``VACUUM ANALYZE`` (this PostgreSQL may run with autovacuum off, and the
planner needs statistics). Ids are assigned here and the identity sequences moved past them.

Reuse: the database comment (``COMMENT ON DATABASE``) records the size, seed, sweep size and
the load time (the "anchor" every date is relative to). A later run with the same parameters
reuses the data if it is younger than ``MAX_AGE_DAYS`` and the dataset's entry count matches;
otherwise the data set's tables are emptied (TRUNCATE) and loaded again. The tables are only
emptied in a database whose name starts with ``portal_bench`` or that carries the marker.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

FORMAT_VERSION = 1
MAX_AGE_DAYS = 14
MEMBERS = 20
BATCH_CONSENTS = 10_000
BATCH_HIT_SHARE = 0.7
SHAPE = {
    "subjects_per_entry": 0.85,
    "enterprise_share": 0.05,
    "phone_share": 0.7,
    "settled": 0.10,
    "pending_review": 0.01,
    "returned": 0.003,
    "expired": 0.01,
    "revoked": 0.005,
    "disputed": 0.02,
    "queries_per_entry": 1.0,
    "query_register_share": 0.6,
}
MEMBER_USCC_BODY = "91110000BNCH{:05d}"  # + check character; the marker of dataset members
OPERATOR_USCC_BODY = "91110000BNCHKP001"
OFFICER = "bench_officer"
SENIOR = "bench_senior"
BENCH_PASSWORD_NOTE = "unusable password: the benchmark signs in by creating a session row"
CONSENT_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 200]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)

# --- Vocabulary (independent of bench.gen_import, which another benchmark owns) -------------

REGIONS = (
    "110101", "110105", "110108", "120104", "130102", "140105", "210102", "220102", "230103",
    "310101", "310104", "310115", "320102", "320505", "330102", "330106", "340104", "350203",
    "360102", "370102", "410105", "420106", "430103", "440103", "440305", "441900", "450103",
    "500103", "510104", "520102", "530102", "610113", "620102", "650102",
)  # fmt: skip
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉梅文辉鹏飞晓东海燕波宇浩然轩涵欣怡雨泽俊峰婷雪琳佳颖"
CITIES = ("北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "重庆", "西安")
FIRM_WORDS = ("恒信", "华泰", "鑫源", "宏达", "瑞丰", "永安", "金诚", "盛世", "天成", "嘉禾")
INDUSTRIES = ("贸易", "科技", "建材", "餐饮管理", "物流", "电子", "服装", "农业开发")
FIRM_SUFFIXES = ("有限公司", "有限责任公司", "商贸有限公司")
COURTS = (
    ("北京市朝阳区人民法院", "京0105"), ("上海市浦东新区人民法院", "沪0115"),
    ("广州市天河区人民法院", "粤0106"), ("深圳市南山区人民法院", "粤0305"),
    ("杭州市西湖区人民法院", "浙0106"), ("成都市武侯区人民法院", "川0107"),
)  # fmt: skip
REMARKS = ("多次催收未果", "借款人失联", "已协商分期但未履行", "担保人拒绝履行代偿义务")
# (value, weight)
CATEGORIES = (("overdue", 50), ("court_judgment", 18), ("malicious_default", 12),
              ("fraud", 10), ("guarantor_default", 10))  # fmt: skip
NOTICE_METHODS = (("sms", 40), ("phone", 25), ("letter", 20), ("email", 10), ("in_person", 5))
NEEDS_OVERDUE_AMOUNT = {"overdue", "malicious_default", "guarantor_default"}
NEEDS_DELINQUENT_SINCE = {"overdue", "malicious_default"}
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"

# Identifier space: subject number k -> a distinct (region, birth date, sequence) through an
# affine permutation, so that neighbouring k are unrelated people.
_BIRTH_FIRST = date(1955, 1, 1)
_BIRTH_DAYS = (date(2006, 12, 31) - _BIRTH_FIRST).days + 1
_BIRTH_TEXT = [(_BIRTH_FIRST + timedelta(days=d)).strftime("%Y%m%d") for d in range(_BIRTH_DAYS)]
ID_SPACE = _BIRTH_DAYS * len(REGIONS) * 1000
_MULT = 2_654_435_761  # odd prime, coprime with ID_SPACE (checked below)
_MOD11_2_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


assert _gcd(_MULT, ID_SPACE) == 1


def _mod11_2(body: str) -> str:
    # The same maths as registry.identifiers._mod11_2_check (verified on samples after load).
    total = sum(int(d) * w for d, w in zip(body, _MOD11_2_WEIGHTS, strict=True))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def _mix(k: int) -> int:
    return (k * 0x9E3779B1 + 0x7F4A7C15) & 0xFFFFFFFF


def identity(k: int) -> tuple[str, str, str, str]:
    """(subject_type, id_type, id_number, name) of subject number k: the same on every call."""
    p = (k * _MULT + 1_234_567) % ID_SPACE
    day = p % _BIRTH_DAYS
    region = REGIONS[(p // _BIRTH_DAYS) % len(REGIONS)]
    seq = p // (_BIRTH_DAYS * len(REGIONS))
    h = _mix(k)
    if k % 20 == 7:  # enterprises: a USCC, a firm name
        digits, code = p, []
        for _ in range(9):
            digits, rem = divmod(digits, 31)
            code.append(USCC_ALPHABET[rem])
        body = "91" + region + "".join(code)
        from registry.identifiers import _uscc_check

        name = (CITIES[h % 10] + FIRM_WORDS[(h >> 4) % 10] + INDUSTRIES[(h >> 8) % 8]
                + FIRM_SUFFIXES[(h >> 12) % 3])  # fmt: skip
        return "enterprise", "USCC", body + _uscc_check(body), name
    body = f"{region}{_BIRTH_TEXT[day]}{seq:03d}"
    given = GIVEN[(h >> 6) % len(GIVEN)] + (GIVEN[(h >> 12) % len(GIVEN)] if h & 3 else "")
    return "person", "RIC", body + _mod11_2(body), SURNAMES[h % len(SURNAMES)] + given


def phone_of(k: int) -> str:
    h = _mix(k + 0x5BD1E995)
    if h % 10 >= 7:
        return ""
    return "1" + "3456789"[h % 7] + f"{(h * 7919) % 1_000_000_000:09d}"


class Sizes:
    """Every count derived from N."""

    def __init__(self, size: int, sweep_disputes: int):
        self.entries = size
        self.register_subjects = max(1, round(size * SHAPE["subjects_per_entry"]))
        self.nohit_consent_subjects = round(BATCH_CONSENTS * (1 - BATCH_HIT_SHARE))
        self.subjects = self.register_subjects + self.nohit_consent_subjects
        self.disputes = max(round(size * SHAPE["disputed"]), sweep_disputes)
        self.queries = round(size * SHAPE["queries_per_entry"])
        self.unknown_pool = max(1000, self.queries // 10)  # people queried who are not listed

    def unknown_k(self, j: int) -> int:
        return self.subjects + j

    def fresh_k(self, j: int) -> int:
        """Identities never in the data set (bench.run's no-hit consents use these)."""
        return ID_SPACE - 1 - j


# --- Database helpers --------------------------------------------------------------------------


def _pg():
    from django.db import connection

    connection.ensure_connection()
    return connection


def read_marker() -> dict | None:
    conn = _pg()
    with conn.cursor() as cur:
        cur.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
            "WHERE datname = current_database()"
        )
        text = cur.fetchone()[0]
    if not text or not text.startswith("bench-dataset "):
        return None
    try:
        return json.loads(text[len("bench-dataset ") :])
    except ValueError:
        return None


def write_marker(marker: dict | None) -> None:
    conn = _pg()
    from psycopg import sql

    text = None if marker is None else "bench-dataset " + json.dumps(marker, sort_keys=True)
    with conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        name = cur.fetchone()[0]
        cur.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}")
            .format(sql.Identifier(name), sql.Literal(text))
            .as_string(conn.connection)
        )


def _copy(cur, model, columns: list[str], rows, *, table: str | None = None) -> int:
    """COPY rows (tuples in `columns` order: attnames) into the model's table."""
    from psycopg import sql

    table = table or model._meta.db_table
    by_attname = {f.attname: f.column for f in model._meta.concrete_fields}
    cols = [by_attname[c] for c in columns]
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    )
    n = 0
    with cur.copy(stmt) as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def _move_sequence(cur, table: str) -> None:
    cur.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
        f"GREATEST((SELECT MAX(id) FROM {table}), 1))"
    )


DATASET_TABLES = (
    "registry_subject", "registry_entry", "registry_historicalsubject",
    "registry_historicalentry", "registry_importbatch", "registry_evidence",
    "billing_query", "billing_feeline", "billing_consent", "billing_monthlyvolume",
    "billing_statement", "billing_receipt", "disputes_dispute", "disputes_dispute_entries",
    "disputes_disputeevent", "disputes_reminder", "disputes_attachment",
    "disputes_historicaldispute", "inbox_notification", "inbox_outgoingemail",
)  # fmt: skip


def _truncate(cur) -> None:
    cur.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
        [list(DATASET_TABLES)],
    )
    present = [r[0] for r in cur.fetchall()]
    cur.execute(f"TRUNCATE {', '.join(present)} RESTART IDENTITY CASCADE")


# --- Fixtures: institutions, users, prices (few rows, through the ORM) --------------------------


def fixtures() -> dict:
    """The dataset's institutions and users (get-or-create: survive a rebuild)."""
    from django.contrib.auth.models import Group
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from blacklist_portal.accounts.models import Institution, User
    from blacklist_portal.accounts.roles import Role
    from registry.identifiers import _uscc_check

    def institution(body: str, name: str, kind: str) -> Institution:
        inst, _created = Institution.objects.get_or_create(
            uscc=body + _uscc_check(body), defaults={"name": name, "kind": kind, "region": "北京市"}
        )
        return inst

    def user(username: str, inst: Institution, *roles: Role, device: bool = False) -> User:
        u = User.objects.filter(username=username).first()
        if u is None:
            u = User(username=username, full_name=username, email=f"{username}@bench.invalid",
                     institution=inst)  # fmt: skip
            u.set_unusable_password()
            u.save()
        u.groups.set(Group.objects.filter(name__in=[r.value for r in roles]))
        if device and not TOTPDevice.objects.filter(user=u, confirmed=True).exists():
            TOTPDevice.objects.create(user=u, name="bench", confirmed=True)
        return u

    members, staff = [], []
    for i in range(MEMBERS):
        m = institution(MEMBER_USCC_BODY.format(i), f"基准数据 第{i + 1:02d}小额贷款有限公司",
                        Institution.Kind.LENDER)  # fmt: skip
        members.append(m)
        staff.append(user(f"bench_m{i:02d}_staff", m, Role.LENDER_STAFF))
    admin = user("bench_m00_admin", members[0], Role.LENDER_ADMIN)
    operator = institution(OPERATOR_USCC_BODY, "基准数据 平台运营机构", Institution.Kind.OPERATOR)
    officer = user(OFFICER, operator, Role.REVIEW_OFFICER, device=True)
    senior = user(SENIOR, operator, Role.SENIOR_REVIEW_OFFICER, device=True)
    return {"members": members, "staff": staff, "admin": admin, "officer": officer,
            "senior": senior, "operator": operator}  # fmt: skip


def price_rules(anchor: datetime) -> list:
    """The demo price list (billing.demo.DEMO_PRICES), in force from before the history."""
    from billing.demo import DEMO_PRICES
    from billing.models import PriceRule, PriceSchedule

    schedule = PriceSchedule.objects.filter(name="基准测试价目").first()
    if schedule is None:
        schedule = PriceSchedule.objects.create(
            name="基准测试价目", effective_from=anchor - timedelta(days=3 * 365 + 30)
        )
        PriceRule.objects.bulk_create(
            PriceRule(schedule=schedule, channel=c, purpose=p, hit=h, tier_from=t, price=Decimal(x))
            for c, p, h, t, x in DEMO_PRICES
        )
    return list(schedule.rules.all())


# --- The load -------------------------------------------------------------------------------------


class _Crypto:
    """EncryptedTextField's encryption and the blind indexes, without per-call overhead.
    Same tokens as registry.crypto.encrypt (checked by decrypting samples after the load)."""

    def __init__(self):
        from registry import crypto

        ring = crypto._keyring()
        self.kid = ring.current_kid
        self.cipher = ring.ciphers[self.kid]
        self.header = crypto._header(self.kid)
        self.ad = {}
        self.bkey = ring.blind_index_key
        self._crypto = crypto

    def aad(self, model, attname: str) -> bytes:
        label = f"{model._meta.label_lower}.{attname}"
        # EncryptedTextField.aad, computed from the field itself when it exists.
        field_aad = model._meta.get_field(attname).aad
        assert field_aad == label, (field_aad, label)
        return self._crypto._associated_data(self.kid, label)

    def encrypt(self, text: str, ad: bytes) -> str:
        nonce = os.urandom(12)
        return self.header + self._crypto._b64encode(
            nonce + self.cipher.encrypt(nonce, text.encode(), ad)
        )

    def index(self, value: str, domain: str) -> str:
        return hmac.new(self.bkey, f"{domain}\x1f{value}".encode(), hashlib.sha256).hexdigest()


def _weighted_table(weights, slots: int = 1000) -> list:
    total = sum(w for _v, w in weights)
    table = []
    for value, w in weights:
        table += [value] * round(slots * w / total)
    return table


def load(size: int, *, seed: int, sweep_disputes: int, anchor: datetime, log=print) -> dict:
    """Empty the dataset tables and load the data set. Returns the timings per table."""
    from django.db import transaction

    from billing.batch import price_from_rules
    from billing.models import Consent, FeeLine, MonthlyVolume, Query
    from disputes.models import Dispute, DisputeEvent
    from disputes.services import end_of_day_after
    from registry.identifiers import mask_id_number, mask_name, mask_phone
    from registry.models import Entry, Subject

    sizes = Sizes(size, sweep_disputes)
    conn = _pg()
    timings: dict[str, dict] = {}
    fx = fixtures()
    rules = price_rules(anchor)
    member_ids = [m.pk for m in fx["members"]]
    staff_ids = [u.pk for u in fx["staff"]]
    officer_id = fx["officer"].pk
    # A skewed market: member i has weight 1/(i+1)^0.8 (the first holds about a quarter).
    member_table = _weighted_table([(i, 1 / (i + 1) ** 0.8) for i in range(MEMBERS)], 2000)
    category_table = _weighted_table(CATEGORIES)
    notice_table = _weighted_table(NOTICE_METHODS)
    cx = _Crypto()
    tz = anchor.tzinfo

    def phase(name: str, started: float, rows: int) -> None:
        seconds = time.perf_counter() - started
        timings[name] = {"rows": rows, "seconds": round(seconds, 2),
                         "rows_per_s": round(rows / seconds) if seconds else None}  # fmt: skip
        log(f"  {name}: {rows:,} rows in {seconds:.1f} s")

    with transaction.atomic(), conn.cursor() as django_cur:
        cur = django_cur.cursor  # the psycopg cursor underneath
        _truncate(cur)
        cur.execute("SAVEPOINT bench_replica")
        try:
            cur.execute("SET LOCAL session_replication_role = replica")
            fk_checks = "off during the load (session_replication_role = replica)"
        except Exception:  # not a superuser: load with the checks on
            cur.execute("ROLLBACK TO SAVEPOINT bench_replica")
            fk_checks = "on"

        # Subjects ------------------------------------------------------------------------------
        t0 = time.perf_counter()
        ad_id, ad_name, ad_phone = (cx.aad(Subject, "id_number"), cx.aad(Subject, "name"),
                                    cx.aad(Subject, "phone"))  # fmt: skip
        visible = bytearray(sizes.register_subjects)  # filled while the entries are made
        rng = random.Random(seed)  # noqa: S311  (reproducible synthetic data, no secret)

        def subject_rows():
            for k in range(sizes.subjects):
                stype, id_type, number, name = identity(k)
                phone = phone_of(k) if stype == "person" else ""
                created = anchor - timedelta(seconds=rng.randrange(3 * 365 * 86400))
                yield (
                    k + 1, stype, id_type, cx.encrypt(number, ad_id),
                    cx.index(number, f"id:{id_type}"), mask_id_number(number),
                    cx.encrypt(name, ad_name), cx.index(name, "name"), mask_name(name),
                    cx.encrypt(phone, ad_phone), mask_phone(phone) if phone else "",
                    created, created,
                )  # fmt: skip

        n = _copy(cur, Subject, ["id", "subject_type", "id_type", "id_number", "id_index",
                                 "id_masked", "name", "name_index", "name_masked", "phone",
                                 "phone_masked", "created_at", "updated_at"], subject_rows())  # fmt: skip
        phase("subjects", t0, n)

        # Entries (and the disputes over them) ---------------------------------------------------
        t0 = time.perf_counter()
        s = SHAPE
        cut_settled = s["settled"]
        cut_pending = cut_settled + s["pending_review"]
        cut_returned = cut_pending + s["returned"]
        cut_expired = cut_returned + s["expired"]
        cut_revoked = cut_expired + s["revoked"]
        visible_share = 1 - (cut_revoked - cut_settled)
        dispute_p = min(1.0, sizes.disputes / (size * visible_share) * 1.03)
        disputed_entries: list[tuple[int, int]] = []  # (entry id, subject k)
        today = anchor.date()
        three_years = 3 * 365 * 86400

        def entry_rows():
            for e in range(size):
                k = e if e < sizes.register_subjects else rng.randrange(sizes.register_subjects)
                mi = member_table[rng.randrange(len(member_table))]
                r = rng.random()
                category = category_table[rng.randrange(len(category_table))]
                role = (
                    "guarantor"
                    if category == "guarantor_default" or rng.random() < 0.05
                    else "borrower"
                )
                loan = round(rng.choice((1000, 3000, 5000, 10000, 20000, 50000, 100000, 200000))
                             * (0.5 + rng.random()), 2)  # fmt: skip
                submitted = anchor - timedelta(seconds=rng.randrange(three_years))
                status, settled_on, retention, reviewed, return_reason, revoke_reason = (
                    "active", None, None, True, "", "")  # fmt: skip
                if r < cut_settled:
                    status = "settled"
                    span = max(1, (today - submitted.date()).days)
                    settled_on = submitted.date() + timedelta(days=rng.randrange(span))
                    retention = (
                        settled_on.replace(year=settled_on.year + 5)
                        if not (settled_on.month == 2 and settled_on.day == 29)
                        else date(settled_on.year + 5, 2, 28)
                    )
                elif r < cut_pending:
                    status, reviewed = "pending_review", False
                    submitted = anchor - timedelta(seconds=rng.randrange(10 * 86400))
                elif r < cut_returned:
                    status, reviewed, return_reason = (
                        "returned",
                        True,
                        "证据材料不清晰，请补充后重新提交",
                    )
                elif r < cut_expired:
                    status = "expired"
                    submitted = submitted - timedelta(days=5 * 365 + 200)
                    settled_on = submitted.date() + timedelta(days=rng.randrange(1, 150))
                    retention = settled_on + timedelta(days=5 * 365 + 1)
                elif r < cut_revoked:
                    status, revoke_reason = "revoked", "报送机构发现报送错误，已撤销"
                overdue = delinquent = None
                court = case = ""
                judgment = None
                if category in NEEDS_OVERDUE_AMOUNT:
                    overdue = round(loan * (0.1 + 0.9 * rng.random()), 2)
                if category in NEEDS_DELINQUENT_SINCE:
                    delinquent = submitted.date() - timedelta(days=rng.randrange(31, 400))
                if category == "court_judgment":
                    court, prefix = COURTS[rng.randrange(len(COURTS))]
                    judgment = submitted.date() - timedelta(days=rng.randrange(30, 700))
                    case = f"({judgment.year}){prefix}执{rng.randrange(1, 9999)}号"
                notified = submitted.date() - timedelta(days=rng.randrange(1, 60))
                visible_entry = status in ("active", "settled")
                disputed = False
                if visible_entry:
                    visible[k] = 1
                    if len(disputed_entries) < sizes.disputes and rng.random() < dispute_p:
                        disputed = True
                        disputed_entries.append((e + 1, k))
                reviewed_at = (
                    submitted + timedelta(seconds=rng.randrange(3 * 86400)) if reviewed else None
                )
                if reviewed_at is not None and reviewed_at > anchor:
                    reviewed_at = anchor
                yield (
                    e + 1, member_ids[mi], k + 1, role, f"BX{mi:02d}-{submitted.year}-{e + 1:09d}",
                    category, status, "member", loan, overdue, delinquent, court, case, judgment,
                    notified, notice_table[rng.randrange(len(notice_table))], settled_on, retention,
                    REMARKS[rng.randrange(len(REMARKS))] if rng.random() < 0.3 else "", "",
                    disputed, staff_ids[mi], submitted, officer_id if reviewed else None,
                    reviewed_at, return_reason, revoke_reason, None, "", submitted,
                    reviewed_at or submitted,
                )  # fmt: skip

        n = _copy(cur, Entry, [
            "id", "member_id", "subject_id", "subject_role", "contract_no", "category", "status",
            "source", "loan_amount", "overdue_amount", "delinquent_since", "court_name",
            "case_number", "judgment_date", "notified_on", "notice_method", "settled_on",
            "retention_until", "remarks", "subject_statement", "disputed", "submitted_by_id",
            "submitted_at", "reviewed_by_id", "reviewed_at", "return_reason", "revoke_reason",
            "import_batch_id", "fingerprint", "created_at", "updated_at"], entry_rows())  # fmt: skip
        phase("entries", t0, n)

        t0 = time.perf_counter()
        ad_app, ad_contact = cx.aad(Dispute, "applicant_name"), cx.aad(Dispute, "applicant_contact")
        dispute_rows, link_rows, event_rows = [], [], []
        claims = ("repaid", "wrong_amount", "not_me", "repaid", "other")
        statuses = ("received", "assigned", "assigned", "assigned", "assigned", "assigned",
                    "awaiting_verification", "verified", "received", "verified")  # fmt: skip
        for i, (entry_id, k) in enumerate(disputed_entries):
            _t, _it, _number, name = identity(k)
            status = statuses[rng.randrange(len(statuses))]
            received = anchor - timedelta(seconds=rng.randrange(21 * 86400))
            due = end_of_day_after(received, 20)
            verify_due = (
                end_of_day_after(anchor, rng.randrange(1, 5))
                if status == "awaiting_verification"
                else None
            )
            contact = phone_of(k)
            dispute_rows.append((
                i + 1, f"DX{i + 1:010d}", k + 1, claims[rng.randrange(len(claims))],
                "申请人称该笔借款已于报送前结清，请求更正或删除。", cx.encrypt(name, ad_app),
                mask_name(name), cx.encrypt(contact, ad_contact),
                ("counter", "letter", "platform")[rng.randrange(3)], None, officer_id, status,
                None if status == "received" else officer_id, received, due, "", verify_due,
                "", "", None, "", "", "{}", "{}", None, None, None, "", None, None, "", "", None,
            ))  # fmt: skip
            link_rows.append((i + 1, i + 1, entry_id))
            event_rows.append(
                (2 * i + 1, i + 1, "receive", "", "received", officer_id, "", received)
            )
            if status != "received":
                event_rows.append((2 * i + 2, i + 1, "assign", "received", "assigned", officer_id, "",
                                   received + timedelta(hours=2)))  # fmt: skip
        n = _copy(cur, Dispute, [f.attname for f in Dispute._meta.concrete_fields], dispute_rows)
        _copy(cur, Dispute.entries.through, ["id", "dispute_id", "entry_id"], link_rows)
        _copy(cur, DisputeEvent, ["id", "dispute_id", "action", "from_status", "to_status",
                                  "actor_id", "note", "at"], event_rows)  # fmt: skip
        phase("disputes", t0, n)
        del dispute_rows, link_rows, event_rows

        # Query history and its fee lines -----------------------------------------------------------
        t0 = time.perf_counter()
        volumes: dict[tuple[int, date], int] = {}
        fee_rows: list = []
        start_day = (anchor - timedelta(days=365)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        per_day, extra = divmod(sizes.queries, 365)
        grades = "BCDE"
        ml_template = json.dumps(
            {str(d): {"queries": 1, "institutions": 1} for d in (7, 30, 90, 180, 365)}
        )
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        price_cache: dict = {}
        index_cache: dict[int, tuple] = {}

        def who(k: int) -> tuple:
            got = index_cache.get(k)
            if got is None:
                _t, id_type, number, name = identity(k)
                got = (
                    id_type,
                    cx.index(number, f"id:{id_type}"),
                    mask_id_number(number),
                    mask_name(name),
                )
                if len(index_cache) < 200_000:
                    index_cache[k] = got
            return got

        def query_rows():
            q = 0
            for d in range(365):
                day = start_day + timedelta(days=d)
                count = per_day + (1 if d < extra else 0)
                seconds = sorted(rng.randrange(86400) for _ in range(count))
                for sec in seconds:
                    q += 1
                    created = day + timedelta(seconds=sec)
                    if rng.random() < s["query_register_share"]:
                        k = rng.randrange(sizes.register_subjects)
                        subject_id = k + 1
                        hit = bool(visible[k])
                    else:
                        k = sizes.unknown_k(rng.randrange(sizes.unknown_pool))
                        subject_id, hit = None, False
                    id_type, index, id_masked, name_masked = who(k)
                    mi = member_table[rng.randrange(len(member_table))]
                    r = rng.random()
                    channel = "web" if r < 0.45 else "api" if r < 0.9 else "batch"
                    if channel == "batch":
                        purpose = "post_loan"
                    else:
                        r = rng.random()
                        purpose = (
                            "loan_approval"
                            if r < 0.7
                            else "post_loan"
                            if r < 0.9
                            else "guarantor_check"
                        )
                    grade = grades[rng.randrange(4)] if hit else "A"
                    result = (
                        f'{{"hit": {"true" if hit else "false"}, "name_matches": true, '
                        f'"entries": [{{"id": {rng.randrange(1, size + 1)}, "category": "overdue", '
                        f'"status": "active", "loan_amount": "{rng.randrange(1000, 200000)}.00"}}]'
                        if hit else
                        '{"hit": false, "name_matches": true, "entries": []'
                    ) + f', "multi_lending": {ml_template}, "risk": {{"grade": "{grade}", "factors": []}}}}'  # fmt: skip
                    local = created.astimezone(tz)
                    month = date(local.year, local.month, 1)
                    key = (mi, month)
                    sequence = volumes.get(key, 0) + 1
                    volumes[key] = sequence
                    pkey = (channel, purpose, hit, sequence > 1000)
                    priced = price_cache.get(pkey)
                    if priced is None:
                        rule, fee = price_from_rules(rules, channel=channel, purpose=purpose, hit=hit,
                                                     sequence=sequence)  # fmt: skip
                        priced = price_cache[pkey] = (rule.pk if rule else None, fee)
                    loan_approval = purpose == "loan_approval"
                    tail = "".join(alphabet[(q >> (5 * j)) & 31] for j in range(6))
                    fee_rows.append(
                        (q, q, member_ids[mi], month, sequence, priced[0], priced[1], None, created)
                    )
                    yield (
                        q, f"H{local:%Y%m%d}{tail}", "member", member_ids[mi], staff_ids[mi], None,
                        channel, purpose, None, id_type, index, subject_id, id_masked, name_masked,
                        True, Decimal(rng.randrange(1000, 200000)) if loan_approval else None,
                        "consumer" if loan_approval else "", local.date() if loan_approval else None,
                        "", "", hit, grade, result, priced[1], created,
                    )  # fmt: skip
                    if len(fee_rows) >= 50_000:
                        yield None  # flush marker: fee lines go in after their queries

        qcols = ["id", "query_no", "kind", "member_id", "user_id", "api_key_id", "channel", "purpose",
                 "consent_id", "id_type", "subject_index", "subject_id", "id_masked", "name_masked",
                 "name_matches", "application_amount", "application_loan_type", "application_date",
                 "identity_check", "representative", "hit", "risk_grade", "result", "fee", "created_at"]  # fmt: skip
        fcols = ["id", "query_id", "member_id", "month", "sequence", "rule_id", "amount",
                 "statement_id", "created_at"]  # fmt: skip
        # Queries and fee lines alternate in chunks (two COPYs cannot be open at once).
        nq = nf = 0
        gen = query_rows()
        done = False
        while not done:
            chunk = []
            for row in gen:
                if row is None:
                    break
                chunk.append(row)
            else:
                done = True
            nq += _copy(cur, Query, qcols, chunk)
            nf += _copy(cur, FeeLine, fcols, fee_rows)
            fee_rows.clear()
        _copy(cur, MonthlyVolume, ["id", "member_id", "month", "count"],
              [(i + 1, member_ids[mi], month, count)
               for i, ((mi, month), count) in enumerate(sorted(volumes.items()))])  # fmt: skip
        phase("queries", t0, nq)
        timings["fee_lines"] = {"rows": nf}

        # Consents for the batch-screening benchmark --------------------------------------------
        t0 = time.perf_counter()
        storage_name = _store_consent_pdf()
        sha = hashlib.sha256(CONSENT_PDF).hexdigest()
        consent_rows = []
        for i, k in enumerate(batch_consent_subjects(sizes, visible)):
            consent_rows.append((
                i + 1, member_ids[0], k + 1, today - timedelta(days=30), today + timedelta(days=400),
                True, True, False, storage_name, "pdf", "授权书.pdf", len(CONSENT_PDF), sha, "api",
                None, anchor - timedelta(days=30),
            ))  # fmt: skip
        n = _copy(cur, Consent, [f.attname for f in Consent._meta.concrete_fields], consent_rows)
        phase("batch_consents", t0, n)

        for model in (Subject, Entry, Dispute, Dispute.entries.through, DisputeEvent, Query,
                      FeeLine, MonthlyVolume, Consent):  # fmt: skip
            _move_sequence(cur, model._meta.db_table)
    # VACUUM cannot run in a transaction.
    t0 = time.perf_counter()
    with conn.cursor() as django_cur:
        for table in ("registry_subject", "registry_entry", "disputes_dispute",
                      "disputes_dispute_entries", "disputes_disputeevent", "billing_query",
                      "billing_feeline", "billing_monthlyvolume", "billing_consent"):  # fmt: skip
            django_cur.execute(f"VACUUM ANALYZE {table}")
    phase("vacuum_analyze", t0, 0)
    timings["foreign_key_checks"] = fk_checks
    return timings


def batch_consent_subjects(sizes: Sizes, visible) -> list[int]:
    """Subject numbers of the 10,000 batch consents: 7,000 with visible entries, 3,000 that
    exist only because of their consent (numbers after the register's subjects)."""
    hits_wanted = BATCH_CONSENTS - sizes.nohit_consent_subjects
    picked, seen = [], set()
    step = 7919
    j = 0
    while len(picked) < hits_wanted and j < 50 * sizes.register_subjects:
        k = (j * step + 13) % sizes.register_subjects
        j += 1
        if k in seen:
            continue
        seen.add(k)
        if visible[k]:
            picked.append(k)
    return picked + [sizes.register_subjects + j for j in range(sizes.nohit_consent_subjects)]


def _store_consent_pdf() -> str:
    """One consent scan under private storage that every dataset consent points to."""
    from django.conf import settings

    name = "consents/bench-dataset-consent.pdf"
    path = Path(settings.PRIVATE_STORAGE_ROOT) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_bytes(CONSENT_PDF)
    return name


def verify(sizes: Sizes, samples: int = 50) -> dict:
    """Read samples back through the ORM: tokens decrypt, indexes match the services',
    identifiers pass the portal's own validation, counts are as planned."""
    from billing.models import Query
    from disputes.models import Dispute
    from registry.identifiers import normalize_id_number
    from registry.models import Entry, Subject
    from registry.services import id_index_for, name_index_for, subject_find

    rng = random.Random(1)  # noqa: S311
    for _ in range(samples):
        k = rng.randrange(sizes.subjects)
        stype, id_type, number, name = identity(k)
        subject = Subject.objects.get(pk=k + 1)
        assert normalize_id_number(id_type, number) == number, number
        assert subject.id_number == number and subject.name == name
        assert subject.phone == (phone_of(k) if stype == "person" else "")
        assert subject.id_index == id_index_for(id_type, number)
        assert subject.name_index == name_index_for(name)
        assert subject_find(id_type=id_type, id_number=number).pk == subject.pk
    d = Dispute.objects.order_by("pk").first()
    if d is not None:
        assert d.applicant_name  # decrypts
    return {
        "entries": Entry.objects.count(),
        "subjects": Subject.objects.count(),
        "queries": Query.objects.count(),
        "disputes": Dispute.objects.count(),
    }


def dataset_entry_count() -> int:
    from registry.models import Entry

    return Entry.objects.filter(member__uscc__startswith=MEMBER_USCC_BODY[:12]).count()


def ensure_dataset(size: int, *, seed: int, sweep_disputes: int, log=print) -> dict:
    """Reuse the data set in the database if it matches, else (re)load it. Returns a summary:
    reused or loaded, the load's timings, the anchor time, the counts."""
    from django.conf import settings
    from django.utils import timezone

    marker = read_marker()
    wanted = {
        "size": size,
        "seed": seed,
        "sweep_disputes": sweep_disputes,
        "format": FORMAT_VERSION,
    }
    now = timezone.now()
    if marker and all(marker.get(k) == v for k, v in wanted.items()):
        anchor = datetime.fromisoformat(marker["anchor"])
        age = (now - anchor).total_seconds() / 86400
        if age <= MAX_AGE_DAYS and dataset_entry_count() == size:
            log(f"Data set: reusing {size:,} entries loaded {marker['anchor']} "
                f"({age:.1f} days ago, in {marker['load_seconds']:.0f} s)")  # fmt: skip
            fixtures()
            return {"reused": True, "anchor": anchor, "marker": marker}
        log(f"Data set: the one on file is {age:.1f} days old or incomplete: reloading")
    dbname = settings.DATABASES["default"]["NAME"]
    if marker is None and not dbname.startswith("portal_bench"):
        from registry.models import Entry

        if Entry.objects.exists():
            raise SystemExit(
                f"Database {dbname} holds entries and is not a benchmark database: refusing to "
                "empty it. Use a database whose name starts with portal_bench."
            )
    anchor = now.astimezone(timezone.get_default_timezone()).replace(microsecond=0)
    log(f"Data set: loading {size:,} entries into {dbname} (COPY) …")
    write_marker(None)
    t0 = time.perf_counter()
    timings = load(size, seed=seed, sweep_disputes=sweep_disputes, anchor=anchor, log=log)
    seconds = time.perf_counter() - t0
    counts = verify(Sizes(size, sweep_disputes))
    marker = {**wanted, "anchor": anchor.isoformat(), "load_seconds": round(seconds, 1),
              "timings": timings, "counts": counts}  # fmt: skip
    write_marker(marker)
    log(f"Data set: loaded in {seconds:.0f} s: {counts}")
    return {"reused": False, "anchor": anchor, "marker": marker}
