from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="billing.monthly_statements")
def monthly_statements() -> int:
    """On the 1st: statements of the month that just ended. Safe to run twice."""
    today = timezone.localdate()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    return services.statements_generate_for_month(month=last_month)
