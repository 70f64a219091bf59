from celery import shared_task

from . import services


@shared_task(name="disputes.sweep")
def sweep() -> dict:
    """Periodic (beat): reminders, escalations, verification timeouts, closing. Idempotent."""
    return services.dispute_sweep()
