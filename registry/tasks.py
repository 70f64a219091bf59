"""Thin tasks: look up by id, call a service; safe to run twice."""

from celery import shared_task

from . import bulk, services


@shared_task(name="registry.validate_batch")
def validate_batch(batch_id: int) -> None:
    bulk.batch_validate(batch_id=batch_id)


@shared_task(name="registry.load_batch")
def load_batch(batch_id: int) -> None:
    bulk.batch_load(batch_id=batch_id)


@shared_task(name="registry.expire_entries")
def expire_entries() -> int:
    return services.entries_expire_due()
