"""Demo entries for `seed_demo`: a handful in each state, reported through the real services
so they are encrypted, reviewed and audited like any other. Idempotent."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from blacklist_portal.accounts.models import Institution, User

from .importing.rows import parse_row
from .models import Entry, FeedSource
from .services import entry_approve, entry_report, entry_return, entry_settle

# (reporter, row values, what happens after reporting)
DEMO_ROWS = [
    ("lender_a_staff", {"subject_type": "person", "id_type": "RIC", "id_number": "11010519491231002X",
      "name": "张三", "phone": "13812345678", "role": "borrower", "contract_no": "BJ-2025-0001",
      "category": "overdue", "loan_amount": "50000", "overdue_amount": "12000.50",
      "delinquent_since": -120, "notified_on": -30, "notice_method": "sms"}, "approve"),
    ("lender_a_staff", {"subject_type": "person", "id_type": "RIC", "id_number": "110101199003077571",
      "name": "李四", "role": "borrower", "contract_no": "BJ-2025-0002", "category": "fraud",
      "loan_amount": "80000", "notified_on": -10, "notice_method": "letter"}, "pending"),
    ("lender_b_staff", {"subject_type": "person", "id_type": "RIC", "id_number": "11010519491231002X",
      "name": "张三", "role": "guarantor", "contract_no": "SH-2024-1188", "category": "guarantor_default",
      "loan_amount": "30000", "overdue_amount": "30000", "notified_on": -60, "notice_method": "phone"},
     "settle"),
    ("lender_b_staff", {"subject_type": "person", "id_type": "RIC", "id_number": "310101198507150018",
      "name": "王五", "role": "borrower", "contract_no": "SH-2025-0042", "category": "malicious_default",
      "loan_amount": "20000", "overdue_amount": "20000", "delinquent_since": -200,
      "notified_on": -100, "notice_method": "in_person"}, "return"),
]


@transaction.atomic
def seed_registry_demo(*, reviewer: User) -> None:
    court, _ = Institution.objects.get_or_create(
        uscc="11100000000013127D",
        defaults={"name": "最高人民法院失信被执行人名单（数据源）", "kind": Institution.Kind.COURT_SOURCE,
                  "region": "全国"},
    )
    FeedSource.objects.get_or_create(institution=court, defaults={"source": Entry.Source.COURT})
    today = timezone.localdate()
    for username, values, then in DEMO_ROWS:
        actor = User.objects.get(username=username)
        if Entry.objects.filter(member=actor.institution, contract_no=values["contract_no"]).exists():
            continue
        row_values = {k: (today + timedelta(days=v)).isoformat() if isinstance(v, int) else v
                      for k, v in values.items()}
        row = parse_row(row_values, today=today).data
        assert row is not None, f"demo row {values['contract_no']} is invalid"
        entry, _ = entry_report(actor=actor, member=actor.institution, row=row,
                                evidence=[_demo_evidence()])
        if then in ("approve", "settle"):
            entry = entry_approve(entry=entry, actor=reviewer)
        if then == "settle":
            entry_settle(entry=entry, actor=actor, settled_on=today - timedelta(days=5))
        if then == "return":
            entry_return(entry=entry, actor=reviewer,
                         reason="逾期开始日期与合同不符，请核对后重新提交。")


def _demo_evidence():
    from django.core.files.uploadedfile import SimpleUploadedFile

    from blacklist_portal.uploads import check_upload

    pdf = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
    f = SimpleUploadedFile("借款合同摘录.pdf", pdf, content_type="application/pdf")
    return f, check_upload(f)


__all__ = ["seed_registry_demo"]
