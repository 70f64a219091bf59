import cProfile, pstats, io, time, json
from django.test.utils import CaptureQueriesContext
from django.db import connection
from test_batch import people, seed_consents, seed_entries, post, tiers, key, raw  # noqa

def test_profile(client, raw, lender_a, lender_staff, other_lender_staff, tiers):
    subjects = people(10_000)
    consents = seed_consents(lender_a, lender_staff, subjects)
    seed_entries(other_lender_staff.institution, other_lender_staff, consents, every=10)
    body = {"purpose": "post_loan", "subjects": [
        {"id_type": "RIC", "id_number": n, "name": nm, "consent_id": c.pk} for (n, nm), c in zip(subjects, consents)]}
    data = json.dumps(body)
    pr = cProfile.Profile()
    import time as _t
    t0=_t.perf_counter(); json.loads(data); print("JSONLOADS", _t.perf_counter()-t0)
    with CaptureQueriesContext(connection) as ctx:
        t = time.perf_counter()
        pass
        r = client.post("/api/v1/batch-screenings", data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {raw}")
        pass
        el = time.perf_counter() - t
    assert r.status_code == 201
    print("ELAPSED", el)
    for q in ctx.captured_queries:
        print(q["time"], q["sql"][:120])
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(45)
    print(s.getvalue())
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(25)
    print(s.getvalue())


def test_explain(db, lender_a):
    from django.db import connection
    with connection.cursor() as c:
        c.execute("select indexname, indexdef from pg_indexes where tablename='billing_query'")
        for r in c.fetchall(): print(r)
