"""The floor: the least work an authenticated API request can do on this stack.

``GET /bench/floor?i=<blind index>`` goes through the same gunicorn worker, the same
middleware and the same API-key authentication as ``POST /api/v1/queries``
(``billing.api.auth.api_key_required``: key lookup, suspension check, rate-limit counter,
last-used hint), then does one indexed lookup of a Subject by its blind index
(``registry_subject.id_index``, unique) and returns a small JSON object. Nothing is decrypted,
logged, billed or audited.

Everything the real query costs on top of this — the consent check, the entries and their
snapshot, the multi-lending aggregate over the query log, the risk grade, the fee with its
per-member sequence lock, the query row, the fee line and the hash-chained audit row — is the
difference between the two numbers ``bench.run`` prints. Mounted by ``bench.urls`` only.
"""

from django.http import HttpRequest, JsonResponse

from billing.api.auth import api_key_required
from registry.models import Subject


@api_key_required
def floor(request: HttpRequest) -> JsonResponse:
    index = request.GET.get("i", "")
    row = Subject.objects.filter(id_index=index).values("pk", "id_masked").first()
    return JsonResponse({"found": row is not None, "subject": row["pk"] if row else None})
