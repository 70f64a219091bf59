from datetime import timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from billing.demo import DEMO_PRICES
from billing.models import Consent, Query, Receipt, Statement

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

def test_lender_queries_with_consent_counter_serves_walk_ins_and_statements_total_the_fees(client, login, lender_staff, lender_admin, counter_clerk, regulator, platform_admin, django_capture_on_commit_callbacks):
    from decimal import Decimal

    from billing.models import PriceRule, PriceSchedule
    s = PriceSchedule.objects.create(name="x", effective_from=timezone.now()-timedelta(days=1))
    for c,p,h,t,x in DEMO_PRICES: PriceRule.objects.create(schedule=s, channel=c, purpose=p, hit=h, tier_from=t, price=Decimal(x))
    login(client, lender_staff)
    today = timezone.localdate()
    r = client.post("/billing/consents/new/", {"id_type":"RIC","id_number":"11010519491231002X","name":"张三","purposes":["loan_approval"],
        "signed_on": today.isoformat(), "expires_on": (today+timedelta(days=30)).isoformat(), "file": SimpleUploadedFile("c.pdf", PDF)})
    assert r.status_code == 302, r.content.decode()[:2000]
    c = Consent.objects.get()
    r = client.get(r["Location"]); assert r.status_code == 200
    r = client.post("/billing/queries/new/", {"id_type":"RIC","id_number":"11010519491231002X","name":"张三","purpose":"loan_approval","consent":c.pk,
        "amount":"10000","loan_type":"consumer","applied_on":today.isoformat()})
    assert r.status_code == 302, r.content.decode()[:3000]
    q = Query.objects.get(); assert q.fee == Decimal("5.00"), q.fee
    r = client.get(r["Location"]); assert r.status_code == 200; assert "无" in r.content.decode() or "No hit" in r.content.decode()
    r = client.get(r.request["PATH_INFO"] + "?print=1"); assert r.status_code == 200
    r = client.post("/billing/queries/new/", {"id_type":"RIC","id_number":"11010519491231002X","name":"张三","purpose":"post_loan","consent":c.pk})
    assert r.status_code == 200 and "errorlist" in r.content.decode()
    r = client.get("/billing/queries/"); assert r.status_code == 200
    r = client.get(f"/billing/consents/{c.pk}/file/"); assert r.status_code == 200
    client.logout(); login(client, counter_clerk)
    for i in range(3):
        r = client.post("/billing/counter/self-query/", {"id_type":"RIC","id_number":"11010519491231002X","name":"张三","identity_check":"ric_original"})
        assert r.status_code == 302, r.content.decode()[:3000]
    assert Receipt.objects.count() == 1
    r = client.get(r["Location"]); assert r.status_code == 200, r.content
    rc = Receipt.objects.get(); r = client.get(f"/billing/counter/receipts/{rc.pk}/"); assert r.status_code == 200
    r = client.post("/billing/counter/member-query/", {"member": lender_staff.institution_id, "representative":"王代表", "id_type":"RIC","id_number":"11010519491231002X","name":"张三","purpose":"guarantor_check",
        "consent_file": SimpleUploadedFile("c.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"+b"\0"*20), "consent_signed_on": today.isoformat(), "consent_expires_on": today.isoformat()})
    assert r.status_code in (200, 302), r.content.decode()[:3000]
    client.logout(); login(client, lender_admin)
    r = client.post("/billing/api-keys/", {"name": "core"}); assert "bl_" in r.content.decode()
    r = client.get("/billing/statements/"); assert r.status_code == 200
    client.logout(); login(client, platform_admin)
    r = client.post("/billing/statements/", {"month": today.strftime("%Y-%m")}); assert r.status_code == 302
    st = Statement.objects.get(member=lender_staff.institution); assert st.line_count >= 1
    r = client.get(f"/billing/statements/{st.pk}/?format=csv"); assert r.status_code == 200
    client.logout(); login(client, regulator)
    r = client.get("/billing/queries/"); assert r.status_code == 200
