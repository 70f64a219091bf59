"""The monthly data-quality scores (supervision/quality.py). Registered through CELERY_IMPORTS
(settings) because autodiscovery only looks at `tasks` modules."""

from celery import shared_task

from . import quality


@shared_task(name="supervision.quality_scores")
def quality_scores() -> int:
    """Score every reporting member for the month just ended. Safe to run twice: a second run
    replaces the month's scores with the same values."""
    return len(quality.quality_scores_compute(month=quality.previous_month()))
