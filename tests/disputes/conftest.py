"""Fixtures shared by the dispute tests: an approved overdue entry to dispute."""

import datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from blacklist_portal.uploads import check_upload
from registry import services as registry_services
from registry.importing.rows import parse_row
from registry.models import Entry

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def make_overdue_entry(lender_staff, lender_a, review_officer):
    """lender_a's approved overdue entry (contract HT-0001, with evidence) about the person given."""

    def make(id_number: str = "110101199003077571", name: str = "李四") -> Entry:
        today = timezone.localdate()
        values = {
            "subject_type": "person", "id_type": "RIC", "id_number": id_number, "name": name,
            "role": "borrower", "contract_no": "HT-0001", "category": "overdue", "loan_amount": "10000.00",
            "overdue_amount": "2000.00", "delinquent_since": (today - datetime.timedelta(days=400)).isoformat(),
            "notified_on": (today - datetime.timedelta(days=380)).isoformat(), "notice_method": "letter",
        }  # fmt: skip
        result = parse_row(values, today=today)
        assert result.ok, result.errors
        f = SimpleUploadedFile("ledger.pdf", PDF, content_type="application/pdf")
        reported, _outcome = registry_services.entry_report(
            actor=lender_staff, member=lender_a, row=result.data, evidence=[(f, check_upload(f))]
        )
        return registry_services.entry_approve(entry=reported, actor=review_officer)

    return make


@pytest.fixture
def entry(make_overdue_entry) -> Entry:
    """The entry the sweep and deadline tests dispute (test modules may define their own)."""
    return make_overdue_entry()
