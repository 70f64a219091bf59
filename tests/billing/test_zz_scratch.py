import datetime

from django.core.files.uploadedfile import SimpleUploadedFile

from billing import services
from billing.services import QueryRequest
from blacklist_portal.uploads import check_upload

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"

def test_scratch(lender_staff, lender_a):
    f = SimpleUploadedFile("c.pdf", PDF)
    checked = check_upload(f)
    c = services.consent_upload(actor=lender_staff, member=lender_a, f=f, checked=checked, id_type="RIC",
        id_number="110101199003077571", name="张三", purposes=["post_loan"], signed_on=datetime.date(2026,1,1),
        expires_on=datetime.date(2027,1,1))
    q = services.query_run(member=lender_a, channel="api", req=QueryRequest(id_type="RIC", id_number="110101199003077571", name="张三", purpose="post_loan", consent_id=c.pk))
    print(q.result)
