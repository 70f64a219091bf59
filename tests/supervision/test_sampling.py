"""The consent sampling audit (supervision/sampling.py): a reproducible random sample of one
member's recent queries, the consent behind each (opened through billing's audit-logged
download), findings and their summary; regulators only.

Characters (tests/conftest.py): reggie (regulator) draws and checks samples; alice (lender_a)
made the queries; charlie (lender_b) is the outsider.
"""

import datetime
import hashlib

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone, translation
from stdnum.cn import ric as stdnum_ric

from billing.models import Consent, Query
from blacklist_portal.audit.models import AuditEvent
from registry import services as registry_services
from supervision import sampling
from supervision.models import ConsentSample, SampleItem

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
NOW = timezone.now()
_counter = iter(range(1, 1_000_000))


def subject():
    body = "11010519800101001"
    return registry_services.subject_get_or_create(
        subject_type="person", id_type="RIC", id_number=body + stdnum_ric.calc_check_digit(body + "0"),
        name="张三",
    )


def consent(member, uploader) -> Consent:
    name = default_storage.save("consents/sample-test.pdf", ContentFile(PDF))
    return Consent.objects.create(
        member=member, subject=subject(), signed_on=datetime.date(2026, 1, 1),
        expires_on=datetime.date(2027, 1, 1), covers_loan_approval=True, file=name, kind="pdf",
        original_name="授权书.pdf", size=len(PDF), sha256=hashlib.sha256(PDF).hexdigest(),
        uploaded_by=uploader,
    )


def query(member, *, days_ago: float, kind="member", with_consent=None) -> Query:
    n = next(_counter)
    s = subject()
    return Query.objects.create(
        query_no=f"Q{n:08d}", kind=kind, member=member, channel="web", purpose="loan_approval",
        id_type="RIC", subject_index=s.id_index, subject=s, id_masked=s.id_masked, name_masked=s.name_masked,
        hit=False, consent=with_consent, created_at=NOW - datetime.timedelta(days=days_ago),
    )


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


@pytest.fixture
def client(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def log(lender_a, lender_b, lender_staff, operator):
    """40 of lender_a's queries in the last 30 days (each with a consent), 5 older ones, 5 of
    lender_b's, and 3 self-queries (no consent to check)."""
    c = consent(lender_a, lender_staff)
    recent = [query(lender_a, days_ago=i * 0.7 + 0.1, with_consent=c) for i in range(40)]
    for i in range(5):
        query(lender_a, days_ago=31 + i)
        query(lender_b, days_ago=i + 1)
        query(operator, days_ago=i + 1, kind="self")
    return recent


# --- Drawing ----------------------------------------------------------------------------------


def test_the_sample_comes_from_the_members_own_recent_queries(regulator, lender_a, log):
    sample = sampling.sample_draw(actor=regulator, member=lender_a, size=10, period_days=30, now=NOW)

    drawn = set(sample.items.values_list("query_id", flat=True))
    assert len(drawn) == 10
    assert drawn <= {q.pk for q in log}


def test_the_same_seed_draws_the_same_queries(regulator, lender_a, log):
    first = sampling.sample_draw(actor=regulator, member=lender_a, size=8, period_days=30, seed="abc", now=NOW)
    again = sampling.sample_draw(actor=regulator, member=lender_a, size=8, period_days=30, seed="abc", now=NOW)
    other = sampling.sample_draw(actor=regulator, member=lender_a, size=8, period_days=30, seed="xyz", now=NOW)

    def ids(s):
        return sorted(s.items.values_list("query_id", flat=True))

    assert ids(first) == ids(again)
    assert ids(first) != ids(other)
    assert sampling.sample_redraw(first) == ids(first)


def test_a_drawn_sample_can_be_drawn_again_later_from_its_stored_seed(regulator, lender_a, log):
    sample = sampling.sample_draw(actor=regulator, member=lender_a, size=12, period_days=30, now=NOW)
    query(lender_a, days_ago=0)  # the log grows after the draw

    stored = ConsentSample.objects.get(pk=sample.pk)

    assert len(stored.seed) == 32
    assert sampling.sample_redraw(stored) == sorted(sample.items.values_list("query_id", flat=True))


def test_a_sample_larger_than_the_log_takes_every_query(regulator, lender_b, log):
    sample = sampling.sample_draw(actor=regulator, member=lender_b, size=50, period_days=30, now=NOW)

    assert sample.items.count() == 5


def test_nothing_to_sample_is_refused(regulator, lender_a, log):
    with pytest.raises(ValidationError):
        sampling.sample_draw(actor=regulator, member=lender_a, size=5, period_days=30,
                             now=NOW - datetime.timedelta(days=400))
    assert not ConsentSample.objects.exists()


def test_only_regulators_draw(lender_staff, lender_a, log):
    with pytest.raises(PermissionDenied):
        sampling.sample_draw(actor=lender_staff, member=lender_a, size=5, period_days=30)


def test_drawing_through_the_page_is_audit_logged(client, login, regulator, lender_a, log):
    login(client, regulator)

    response = client.post(reverse("supervision:sample_list"), {"member": lender_a.pk, "size": 5, "period_days": 30})

    sample = ConsentSample.objects.get()
    assert response["Location"] == reverse("supervision:sample_detail", args=[sample.pk])
    event = AuditEvent.objects.get(action="consent_sample.draw")
    assert (event.actor, event.target_id) == (regulator, str(sample.pk))
    assert event.details == {"member": lender_a.pk, "size": 5, "period_days": 30, "candidates": 40, "drawn": 5}


def test_a_bad_draw_shows_the_error(client, login, regulator, lender_a, log):
    login(client, regulator)

    response = client.post(reverse("supervision:sample_list"), {"member": lender_a.pk, "size": 0, "period_days": 30})

    assert response.status_code == 200
    assert "size" in response.context["form"].errors
    assert not ConsentSample.objects.exists()


# --- Checking and findings --------------------------------------------------------------------


@pytest.fixture
def sample(regulator, lender_a, log):
    return sampling.sample_draw(actor=regulator, member=lender_a, size=4, period_days=30, seed="fixed", now=NOW)


def test_the_sample_page_links_each_consent_and_the_regulator_can_open_it(client, login, regulator, sample):
    login(client, regulator)

    response = client.get(reverse("supervision:sample_detail", args=[sample.pk]))

    item = sample.items.select_related("query").first()
    link = reverse("billing:consent_download", args=[item.query.consent_id])
    assert link in response.content.decode()
    opened = client.get(link)
    assert opened.status_code == 200
    assert b"".join(opened.streaming_content) == PDF
    assert AuditEvent.objects.filter(action="consent.download", actor=regulator).exists()


def test_reading_a_sample_is_audit_logged(client, login, regulator, sample):
    login(client, regulator)

    client.get(reverse("supervision:sample_detail", args=[sample.pk]))

    event = AuditEvent.objects.get(action="consent_sample.view")
    assert (event.actor, event.target_id, event.details["items"]) == (regulator, str(sample.pk), 4)


def record(client, sample, item, finding, note=""):
    prefix = f"i{item.pk}"
    return client.post(reverse("supervision:sample_item_record", args=[sample.pk, item.pk]),
                       {f"{prefix}-finding": finding, f"{prefix}-note": note})


def test_findings_are_recorded_and_summed_up(client, login, regulator, sample):
    login(client, regulator)
    items = list(sample.items.order_by("pk"))

    record(client, sample, items[0], "ok")
    record(client, sample, items[1], "missing", "文件无法打开")
    record(client, sample, items[2], "forged", "签名与身份证不符")

    items[1].refresh_from_db()
    assert (items[1].finding, items[1].note) == ("missing", "文件无法打开")
    assert items[1].checked_at is not None
    summary = {value: n for value, _label, n in sampling.sample_summary(sample)}
    assert summary == {"": 1, "ok": 1, "missing": 1, "mismatch": 0, "forged": 1, "other": 0}
    page = client.get(reverse("supervision:sample_list"))
    assert dict(page.context["samples"])[sample] == {"ok": 1, "missing": 1, "forged": 1, "": 1}
    assert AuditEvent.objects.filter(action="consent_sample.finding").count() == 3


def test_a_finding_can_be_revised(client, login, regulator, sample):
    login(client, regulator)
    item = sample.items.first()

    record(client, sample, item, "ok")
    record(client, sample, item, "mismatch", "用途不符")

    item.refresh_from_db()
    assert item.finding == "mismatch"


def test_a_problem_needs_a_note(client, login, regulator, sample):
    login(client, regulator)
    item = sample.items.first()

    record(client, sample, item, "other", "")

    item.refresh_from_db()
    assert item.finding == ""
    assert not AuditEvent.objects.filter(action="consent_sample.finding").exists()


def test_recording_findings_changes_no_member_data(client, login, regulator, sample, lender_a):
    login(client, regulator)
    before = list(Query.objects.order_by("pk").values()), list(Consent.objects.values())

    for item in sample.items.all():
        record(client, sample, item, "forged", "存疑")

    assert (list(Query.objects.order_by("pk").values()), list(Consent.objects.values())) == before


def test_an_item_of_another_sample_is_a_404(client, login, regulator, sample, lender_b, log):
    other = sampling.sample_draw(actor=regulator, member=lender_b, size=1, period_days=30, now=NOW)
    login(client, regulator)

    response = record(client, sample, other.items.get(), "ok")

    assert response.status_code == 404


# --- Access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["lender_staff", "lender_admin", "other_lender_staff", "review_officer",
                                  "platform_admin"])
def test_only_regulators_see_samples(client, login, request, role, sample):
    login(client, request.getfixturevalue(role))
    item = sample.items.first()

    assert client.get(reverse("supervision:sample_list")).status_code == 403
    assert client.get(reverse("supervision:sample_detail", args=[sample.pk])).status_code == 404
    assert record(client, sample, item, "ok").status_code == 404
    item.refresh_from_db()
    assert item.finding == SampleItem.Finding.PENDING


def test_no_finding_is_preselected(client, login, regulator, sample):
    login(client, regulator)
    item = sample.items.first()

    response = client.get(reverse("supervision:sample_detail", args=[sample.pk]))
    record(client, sample, item, "")

    form = dict(response.context["items"])[item]
    assert form["finding"].value() in ("", None)
    item.refresh_from_db()
    assert item.finding == SampleItem.Finding.PENDING
