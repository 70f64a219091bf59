"""Demo prices and a consent for `seed_demo`. Idempotent."""

from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from blacklist_portal.accounts.models import User

from .choices import Channel, Purpose
from .models import Consent, PriceRule, PriceSchedule

# (channel, purpose, hit, tier_from, price)
DEMO_PRICES = [
    ("", "", None, 1, "5.00"),
    ("", Purpose.LOAN_APPROVAL, True, 1, "10.00"),
    ("", Purpose.LOAN_APPROVAL, True, 1001, "8.00"),
    ("", Purpose.LOAN_APPROVAL, False, 1, "5.00"),
    ("", Purpose.LOAN_APPROVAL, False, 1001, "4.00"),
    (Channel.BATCH, Purpose.POST_LOAN, None, 1, "1.00"),
    (Channel.COUNTER, Purpose.SELF, None, 1, "20.00"),
]


@transaction.atomic
def seed_billing_demo() -> None:
    if not PriceSchedule.objects.exists():
        start = timezone.now().replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
        schedule = PriceSchedule.objects.create(name="2026 标准价目", effective_from=start)
        PriceRule.objects.bulk_create(
            PriceRule(schedule=schedule, channel=c, purpose=p, hit=h, tier_from=t, price=Decimal(x))
            for c, p, h, t, x in DEMO_PRICES
        )
    staff = User.objects.get(username="lender_a_staff")
    if not Consent.objects.filter(member=staff.institution).exists():
        from registry.demo import _demo_evidence

        from .services import consent_upload

        f, checked = _demo_evidence()
        today = timezone.localdate()
        consent_upload(
            actor=staff, member=staff.institution, f=f, checked=checked, id_type="RIC",
            id_number="11010519491231002X", name="张三",
            purposes=[Purpose.LOAN_APPROVAL, Purpose.POST_LOAN],
            signed_on=today - timedelta(days=3), expires_on=today + timedelta(days=180),
        )
