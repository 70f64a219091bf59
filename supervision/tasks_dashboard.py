"""The dashboard's nightly counts (supervision/dashboard.py). Registered through
CELERY_IMPORTS (settings) because autodiscovery only looks at `tasks` modules."""

from celery import shared_task

from . import dashboard


@shared_task(name="supervision.market_stats")
def market_stats() -> int:
    """Recount entries and queries for the dashboard. Safe to run twice."""
    return dashboard.market_stats_rebuild()
