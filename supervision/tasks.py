from datetime import date

from celery import shared_task

from . import services


@shared_task(name="supervision.complaint_sweep")
def complaint_sweep() -> dict:
    """Periodic (beat): complaint reminders and escalations. Safe to run twice."""
    return services.complaint_sweep()


@shared_task(name="supervision.evaluate_alerts")
def evaluate_alerts(day: str | None = None) -> int:
    """Daily (beat): the abnormal-query rules over yesterday (and the days an outage skipped),
    or over one given day (ISO date). Safe to run twice: returns how many alerts were raised."""
    if day:
        return len(services.alerts_evaluate(day=date.fromisoformat(day)))
    return services.alerts_evaluate_recent()
