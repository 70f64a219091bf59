from celery import shared_task

from . import services


@shared_task(name="inbox.send_outbox")
def send_outbox() -> int:
    return services.outbox_send()
