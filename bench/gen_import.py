"""Generate a realistic bulk report file (/work/shared/docs/import-format.md) of N rows.

    python -m bench.gen_import --rows 100000 --format csv --out bench-out/import.csv
    python -m bench.gen_import --rows 100000 --format xlsx --seed 7 --bad-rate 0.01

What is in the file:

- CSV in GB18030 (what Chinese Excel saves) or XLSX (openpyxl write_only), Chinese headers.
- Subjects: mostly resident ID numbers (RIC) with real birth dates and correct ISO 7064
  MOD 11-2 check characters, some enterprises (USCC with a correct GB 32100 check character),
  passports, Hong Kong/Macao and Taiwan permits and foreign permanent-resident IDs. A few
  identifiers are written the way people type them (lower-case x, full-width digits, spaces,
  the old 15-digit form); a few subjects appear again under another contract.
- A mix of categories, roles and notice methods, with the columns each category requires
  filled (overdue amount, delinquency start, court name / case number / judgment date).
- Amounts as ``12345.60``, ``12,345.60``, ``¥12,345.60``, ``￥12345.6``; dates as
  ``2024-03-05``, ``2024/3/5``, ``2024.3.5``, ``2024年3月5日``; in XLSX also real Excel dates
  and numbers.
- ``--bad-rate`` of the rows (1% by default, spread evenly) carry exactly one deliberate
  defect each (bad check character, impossible birth date, unknown category, negative amount,
  notice date in the future, ...), so the number of rows the dry run must reject is known.

Rows are produced one at a time and written as they are made: memory stays flat whatever the
row count. No Django here; the check-character maths is written out independently of
``registry.identifiers`` so that the generator is also an oracle for it.

Prints one JSON line: path, format, rows, bad_rows (and per defect kind), bytes, seconds,
peak_rss_kb of the generator process.
"""

import argparse
import csv
import datetime
import json
import random
import resource
import sys
import time
from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

# The published columns, in the order of import-format.md (key, Chinese header).
COLUMNS = (
    ("subject_type", "主体类型"),
    ("id_type", "证件类型"),
    ("id_number", "证件号码"),
    ("name", "姓名/名称"),
    ("phone", "手机号"),
    ("role", "主体角色"),
    ("contract_no", "合同编号"),
    ("category", "失信类别"),
    ("loan_amount", "借款金额"),
    ("overdue_amount", "逾期金额"),
    ("delinquent_since", "逾期开始日期"),
    ("court_name", "法院名称"),
    ("case_number", "案号"),
    ("judgment_date", "判决日期"),
    ("notified_on", "告知日期"),
    ("notice_method", "告知方式"),
    ("settled_on", "结清日期"),
    ("remarks", "备注"),
)
KEYS = tuple(key for key, _header in COLUMNS)
HEADERS = tuple(header for _key, header in COLUMNS)

PORTAL_TIME_ZONE = "Asia/Shanghai"  # settings.TIME_ZONE: "not in the future" is judged there

# --- Check characters (independent of registry.identifiers) ------------------------------------

_MOD11_2_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def mod11_2(body17: str) -> str:
    """ISO 7064 MOD 11-2 check character of 17 digits (GB 11643)."""
    total = sum(int(d) * w for d, w in zip(body17, _MOD11_2_WEIGHTS, strict=True))
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


def uscc_check(body17: str) -> str:
    """GB 32100-2015 check character of the first 17 characters of a USCC."""
    total = sum(_USCC_ALPHABET.index(c) * w for c, w in zip(body17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[(31 - total % 31) % 31]


# --- Vocabulary --------------------------------------------------------------------------------

# Real county-level codes of GB/T 2260 (the first 6 digits of a resident ID number).
REGIONS = (
    "110101", "110102", "110105", "110106", "110108", "120101", "120104", "130102", "130104",
    "140105", "150102", "210102", "210202", "220102", "230103", "310101", "310104", "310112",
    "310115", "320102", "320505", "330102", "330106", "330110", "340104", "350203", "360102",
    "370102", "370202", "410105", "420106", "420111", "430103", "440103", "440106", "440305",
    "440306", "441900", "450103", "460106", "500103", "510104", "510107", "520102",
    "530102", "540102", "610113", "620102", "630102", "640104", "650102",
)  # fmt: skip
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝"
)
COMPOUND_SURNAMES = ("欧阳", "司马", "上官", "诸葛", "东方")
GIVEN = (
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉梅文辉鹏飞晓东海燕波宇浩然轩涵欣"
    "怡雨泽俊峰婷雪琳佳颖嘉怡子墨思远立新春生秋菊德胜永庆"
)
MINORITY_NAMES = ("买买提·艾力", "阿依古丽·吐尔逊", "古丽米拉·阿不都", "扎西·次仁", "乌兰·巴特尔")
FOREIGN_NAMES = (
    "JOHN SMITH", "Maria Garcia", "KIM MINJUN", "TANAKA HIROSHI", "NGUYEN VAN AN",
    "Olga Petrova", "DAVID LEE", "Anna Müller",
)  # fmt: skip
CITIES = (
    "北京", "上海", "广州", "深圳", "杭州", "南京",
    "成都", "武汉", "重庆", "西安", "苏州", "长沙",
)  # fmt: skip
FIRM_WORDS = (
    "恒信", "华泰", "鑫源", "宏达", "瑞丰", "永安",
    "金诚", "盛世", "天成", "嘉禾", "润德", "海川",
)  # fmt: skip
INDUSTRIES = (
    "贸易", "科技", "建材", "餐饮管理", "物流",
    "电子", "服装", "农业开发", "装饰工程", "网络科技",
)  # fmt: skip
FIRM_SUFFIXES = ("有限公司", "有限责任公司", "股份有限公司", "商贸有限公司")
# (court, case-number prefix: province abbreviation + court code)
COURTS = (
    ("北京市朝阳区人民法院", "京0105"),
    ("北京市海淀区人民法院", "京0108"),
    ("上海市浦东新区人民法院", "沪0115"),
    ("广州市天河区人民法院", "粤0106"),
    ("深圳市南山区人民法院", "粤0305"),
    ("杭州市西湖区人民法院", "浙0106"),
    ("成都市武侯区人民法院", "川0107"),
    ("武汉市洪山区人民法院", "鄂0111"),
    ("重庆市渝中区人民法院", "渝0103"),
)
CASE_KINDS = ("执", "执", "执恢", "民初")
REMARKS = (
    "多次催收未果",
    "借款人失联",
    "已协商分期但未履行",
    "提供虚假收入证明",
    "担保人拒绝履行代偿义务",
    "经法院强制执行仍未履行",
)

# (Chinese term, English value, weight)
CATEGORIES = (
    ("逾期", "overdue", 50),
    ("恶意拖欠", "malicious_default", 12),
    ("担保代偿", "guarantor_default", 10),
    ("骗贷", "fraud", 10),
    ("法院判决未履行", "court_judgment", 18),
)
NOTICE_METHODS = (
    ("短信", "sms", 40),
    ("电话", "phone", 25),
    ("信函", "letter", 20),
    ("电子邮件", "email", 10),
    ("当面", "in_person", 5),
)
ID_TYPES = {
    "RIC": "居民身份证",
    "USCC": "统一社会信用代码",
    "PASSPORT": "护照",
    "HKMO": "港澳居民来往内地通行证",
    "TW": "台湾居民来往大陆通行证",
    "FPR": "外国人永久居留身份证",
}
NEEDS_OVERDUE_AMOUNT = {"overdue", "malicious_default", "guarantor_default"}
NEEDS_DELINQUENT_SINCE = {"overdue", "malicious_default"}

# One deliberate defect per bad row, in turn. Each must make the dry run reject the row.
DEFECTS = (
    "bad_check_character",
    "impossible_birth_date",
    "unknown_category",
    "negative_amount",
    "future_notice_date",
    "missing_case_number",
    "bad_phone",
    "impossible_date",
    "subject_type_mismatch",
    "not_an_amount",
)

_FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


# --- Rows --------------------------------------------------------------------------------------


class RowMaker:
    """Makes one row at a time (a dict by column key). ``native``: XLSX, where some dates and
    amounts are written as real Excel dates and numbers instead of text."""

    def __init__(self, *, seed: int, today: datetime.date, native: bool):
        self.rng = random.Random(seed)  # noqa: S311  (reproducible test data, no secret)
        self.today = today
        self.yesterday = today - datetime.timedelta(days=1)
        self.native = native
        self.tag = str(seed)  # contract numbers XD<seed>-<year>-<row>: unique per seed
        self.recent: deque = deque(maxlen=2000)  # subjects that may report a second contract
        self._categories = [c for c in CATEGORIES]
        self._category_weights = [c[2] for c in CATEGORIES]
        self._notice_weights = [m[2] for m in NOTICE_METHODS]

    # Subjects ---------------------------------------------------------------------------------

    def _person_name(self) -> str:
        rng = self.rng
        surname = rng.choice(COMPOUND_SURNAMES) if rng.random() < 0.01 else rng.choice(SURNAMES)
        return surname + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))

    def _phone(self) -> str:
        rng = self.rng
        if rng.random() < 0.3:
            return ""
        digits = "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))
        form = rng.random()
        if form < 0.7:
            return digits
        if form < 0.8:
            return f"+86 {digits}"
        if form < 0.9:
            return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"

    def _birth_date(self) -> datetime.date:
        first = datetime.date(1955, 1, 1).toordinal()
        last = self.today.replace(year=self.today.year - 18, day=1).toordinal()
        return datetime.date.fromordinal(self.rng.randint(first, last))

    def _ric(self, born: datetime.date | None = None) -> tuple[str, datetime.date]:
        born = born or self._birth_date()
        body = f"{self.rng.choice(REGIONS)}{born:%Y%m%d}{self.rng.randint(0, 999):03d}"
        return body + mod11_2(body), born

    def _present_ric(self, ric: str, born: datetime.date) -> str:
        """How the ID number is typed: mostly as is; sometimes the way people type it."""
        r = self.rng.random()
        if ric.endswith("X") and r < 0.25:
            return ric[:-1] + "x"
        if r < 0.005 and born.year < 2000:
            return ric[:6] + ric[8:17]  # the old 15-digit card: YYMMDD, no check character
        if r < 0.010:
            return ric.translate(_FULLWIDTH_DIGITS)
        if r < 0.015:
            return f"{ric[:6]} {ric[6:14]} {ric[14:]}"
        return ric

    def _person_ric(self) -> dict:
        ric, born = self._ric()
        name = self._person_name() if self.rng.random() > 0.005 else self.rng.choice(MINORITY_NAMES)
        return self._subject("个人", "RIC", self._present_ric(ric, born), name)

    def _subject(self, subject_type: str, id_type: str, id_number: str, name: str) -> dict:
        english = self.rng.random() < 0.03  # the English values are accepted too
        return {
            "subject_type": {"个人": "person", "企业": "enterprise"}[subject_type]
            if english
            else subject_type,
            "id_type": id_type if english else ID_TYPES[id_type],
            "id_number": id_number,
            "name": name,
            "phone": self._phone(),
        }

    def _new_subject(self) -> dict:
        rng = self.rng
        r = rng.random()
        digits = "0123456789"
        if r < 0.86:
            return self._person_ric()
        if r < 0.94:
            body = (
                "91" + rng.choice(REGIONS) + "".join(rng.choice(_USCC_ALPHABET) for _ in range(9))
            )
            name = (
                rng.choice(CITIES)
                + rng.choice(FIRM_WORDS)
                + rng.choice(INDUSTRIES)
                + rng.choice(FIRM_SUFFIXES)
            )
            return self._subject("企业", "USCC", body + uscc_check(body), name)
        if r < 0.96:
            number = rng.choice("EG") + "".join(rng.choice(digits) for _ in range(8))
            return self._subject("个人", "PASSPORT", number, rng.choice(FOREIGN_NAMES))
        if r < 0.975:
            number = rng.choice("HM") + "".join(rng.choice(digits) for _ in range(8))
            return self._subject("个人", "HKMO", number, self._person_name())
        if r < 0.985:
            number = "".join(rng.choice(digits) for _ in range(8))
            return self._subject("个人", "TW", number, self._person_name())
        if rng.random() < 0.5:
            body = "9" + "".join(rng.choice(digits) for _ in range(16))
            number = body + mod11_2(body)
        else:
            number = rng.choice(("USA", "GBR", "KOR", "JPN")) + "".join(
                rng.choice(digits) for _ in range(12)
            )
        return self._subject("个人", "FPR", number, rng.choice(FOREIGN_NAMES))

    # Values -----------------------------------------------------------------------------------

    def _date_between(self, first: datetime.date, last: datetime.date) -> datetime.date:
        if last <= first:
            return min(first, self.yesterday)
        return datetime.date.fromordinal(self.rng.randint(first.toordinal(), last.toordinal()))

    def _date(self, d: datetime.date | None):
        if d is None:
            return ""
        r = self.rng.random()
        if self.native and r < 0.5:
            return d  # a real Excel date cell
        r = self.rng.random()
        if r < 0.4:
            return d.isoformat()
        if r < 0.65:
            return f"{d.year}/{d.month}/{d.day}"
        if r < 0.75:
            return f"{d.year}.{d.month}.{d.day}"
        return f"{d.year}年{d.month}月{d.day}日"

    def _amount(self, value: Decimal | None):
        if value is None:
            return ""
        r = self.rng.random()
        if self.native and r < 0.5:
            return int(value) if value == value.to_integral_value() else float(value)
        r = self.rng.random()
        if r < 0.25:
            return f"{value:.2f}"
        if r < 0.5:
            return f"{value:,.2f}"
        if r < 0.75:
            return f"¥{value:,.2f}"
        if r < 0.9:
            return f"￥{value:.2f}"
        text = f"{value:.2f}".rstrip("0").rstrip(".")
        return text  # 12345.6 / 12000

    def _loan_amount(self, enterprise: bool) -> Decimal:
        rng = self.rng
        if rng.random() < 0.6:  # round hundreds, as loans usually are
            hundreds = rng.randint(10, 50_000 if enterprise else 3_000)
            return Decimal(hundreds * 100).quantize(Decimal("0.01"))
        cents = rng.randint(100_000, 500_000_000 if enterprise else 30_000_000)
        return Decimal(cents) / 100

    # The row ----------------------------------------------------------------------------------

    def row(self, number: int, defect: str | None = None) -> dict:
        rng = self.rng
        today, yesterday = self.today, self.yesterday
        if defect in ("bad_check_character", "impossible_birth_date", "subject_type_mismatch"):
            subject = self._person_ric()
            subject["subject_type"], subject["id_type"] = "个人", ID_TYPES["RIC"]
        elif self.recent and rng.random() < 0.03:
            subject = dict(rng.choice(self.recent))  # the same subject, another contract
        else:
            subject = self._new_subject()
            if defect is None:
                self.recent.append(subject)

        if defect == "missing_case_number":
            chinese, category = "法院判决未履行", "court_judgment"
        elif defect == "impossible_date":
            chinese, category = "逾期", "overdue"
        else:
            chinese, category, _weight = rng.choices(
                self._categories, weights=self._category_weights
            )[0]
        role = "担保人" if category == "guarantor_default" or rng.random() < 0.12 else "借款人"
        enterprise = subject["id_type"] in ("USCC", ID_TYPES["USCC"])
        loan = self._loan_amount(enterprise)

        overdue_amount = delinquent_since = judgment_date = None
        court_name = case_number = ""
        if category in NEEDS_DELINQUENT_SINCE or (
            category == "guarantor_default" and rng.random() < 0.5
        ):
            delinquent_since = self._date_between(
                today - datetime.timedelta(days=4 * 365), today - datetime.timedelta(days=40)
            )
        if category in NEEDS_OVERDUE_AMOUNT:
            factor = Decimal(rng.randint(5, 130)) / 100  # principal left plus interest
            overdue_amount = (loan * factor).quantize(Decimal("0.01"))
        if category == "court_judgment":
            judgment_date = self._date_between(
                today - datetime.timedelta(days=6 * 365), today - datetime.timedelta(days=30)
            )
            court_name, code = rng.choice(COURTS)
            year = judgment_date.year - (1 if rng.random() < 0.3 else 0)
            left, right = ("（", "）") if rng.random() < 0.3 else ("(", ")")
            case_number = (
                f"{left}{year}{right}{code}{rng.choice(CASE_KINDS)}{rng.randint(1, 29999)}号"
            )

        start = judgment_date or delinquent_since or today - datetime.timedelta(days=3 * 365)
        notified_on = self._date_between(start + datetime.timedelta(days=7), yesterday)
        settled_on = self._date_between(notified_on, yesterday) if rng.random() < 0.1 else None
        notice_term, notice_value, _weight = rng.choices(
            NOTICE_METHODS, weights=self._notice_weights
        )[0]
        english = rng.random() < 0.03

        cells = {
            **subject,
            "role": role,
            "contract_no": f"XD{self.tag}-{today.year}-{number:08d}",
            "category": category if english else chinese,
            "loan_amount": self._amount(loan),
            "overdue_amount": self._amount(overdue_amount),
            "delinquent_since": self._date(delinquent_since),
            "court_name": court_name,
            "case_number": case_number,
            "judgment_date": self._date(judgment_date),
            "notified_on": self._date(notified_on),
            "notice_method": notice_value if english else notice_term,
            "settled_on": self._date(settled_on),
            "remarks": rng.choice(REMARKS) if rng.random() < 0.2 else "",
        }
        if defect:
            self._spoil(cells, defect)
        return cells

    def _spoil(self, cells: dict, defect: str) -> None:
        rng = self.rng
        if defect == "bad_check_character":
            ric, _born = self._ric()
            wrong = "0" if ric[-1] != "0" else "1"
            cells["id_number"] = ric[:-1] + wrong
        elif defect == "impossible_birth_date":
            body = f"{rng.choice(REGIONS)}19900230{rng.randint(0, 999):03d}"
            cells["id_number"] = body + mod11_2(body)  # right check character, no such day
        elif defect == "unknown_category":
            cells["category"] = "违约"
        elif defect == "negative_amount":
            cells["loan_amount"] = "-5,000.00"
        elif defect == "future_notice_date":
            cells["notified_on"] = (self.today + datetime.timedelta(days=10)).isoformat()
        elif defect == "missing_case_number":
            cells["case_number"] = ""
        elif defect == "bad_phone":
            cells["phone"] = "1381234567"
        elif defect == "impossible_date":
            cells["delinquent_since"] = "2023-02-30"
        elif defect == "subject_type_mismatch":
            cells["subject_type"] = "企业"
        elif defect == "not_an_amount":
            cells["loan_amount"] = "五千元"
        else:  # pragma: no cover
            raise ValueError(defect)


def iter_rows(
    rows: int, *, seed: int, today: datetime.date, native: bool, bad_rate: float, counts: dict
) -> Iterator[list]:
    """The data rows, as lists in column order; ``counts`` collects the defects made."""
    maker = RowMaker(seed=seed, today=today, native=native)
    every = round(1 / bad_rate) if bad_rate > 0 else 0
    made = 0
    empty = None if native else ""
    for number in range(1, rows + 1):
        defect = None
        if every and number % every == every // 2:
            defect = DEFECTS[made % len(DEFECTS)]
            made += 1
            counts[defect] = counts.get(defect, 0) + 1
        cells = maker.row(number, defect)
        yield [empty if cells[key] == "" else cells[key] for key in KEYS]


# --- Writers -----------------------------------------------------------------------------------


def write_csv(path: Path, rows: Iterator[list]) -> None:
    # GB18030 is what Chinese Excel writes ("CSV" on a Chinese Windows): no BOM, CRLF.
    with path.open("w", encoding="gb18030", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADERS)
        writer.writerows(rows)


def write_xlsx(path: Path, rows: Iterator[list]) -> None:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)  # rows are streamed to a temporary file
    sheet = workbook.create_sheet("批量报送")
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    workbook.save(path)


def generate(
    path: Path,
    *,
    rows: int,
    fmt: str,
    seed: int,
    today: datetime.date,
    bad_rate: float = 0.01,
) -> dict:
    started = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    data = iter_rows(
        rows, seed=seed, today=today, native=fmt == "xlsx", bad_rate=bad_rate, counts=counts
    )
    if fmt == "csv":
        write_csv(path, data)
    elif fmt == "xlsx":
        write_xlsx(path, data)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    return {
        "path": str(path),
        "format": fmt,
        "rows": rows,
        "bad_rows": sum(counts.values()),
        "defects": counts,
        "seed": seed,
        "today": today.isoformat(),
        "bytes": path.stat().st_size,
        "seconds": round(time.perf_counter() - started, 3),
        "peak_rss_kb": _peak_rss_kb(),
    }


def _peak_rss_kb() -> int:
    # VmHWM belongs to this program's memory; ru_maxrss would still count the parent's size at
    # fork time when this runs as a subprocess (the kernel carries it across exec).
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    parser.add_argument("--out", type=Path, help="default: bench-out/gen-<rows>.<format>")
    parser.add_argument(
        "--seed", type=int, default=1, help="also tags the contract numbers (XD<seed>-...)"
    )
    parser.add_argument("--bad-rate", type=float, default=0.01)
    parser.add_argument(
        "--today",
        type=datetime.date.fromisoformat,
        help=f"the portal's date (default: today in {PORTAL_TIME_ZONE})",
    )
    args = parser.parse_args(argv)
    today = args.today or datetime.datetime.now(ZoneInfo(PORTAL_TIME_ZONE)).date()
    out = args.out or Path("bench-out") / f"gen-{args.rows}.{args.format}"
    summary = generate(
        out, rows=args.rows, fmt=args.format, seed=args.seed, today=today, bad_rate=args.bad_rate
    )
    sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
