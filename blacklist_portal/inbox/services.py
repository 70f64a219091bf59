from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from blacklist_portal.sql import insert_rows

from .models import Notification, OutgoingEmail


def notify(
    *, users: Iterable, title: str, body: str = "", link: str = "", now: datetime | None = None,
    send_now: bool = True,
) -> int:
    """Put a message in each user's inbox and queue its e-mail, inside the caller's
    transaction. The e-mails go out after commit (unless send_now=False: a sweep queues one
    send for all its messages) and again at every outbox sweep until sent."""
    return notify_many([(users, title, body, link)], now=now, send_now=send_now)


def notify_many(
    messages: Iterable[tuple[Iterable, str, str, str]], *, now: datetime | None = None, send_now: bool = True
) -> int:
    """`notify` for many messages at once: each (users, title, body, link) puts the same
    inbox messages and queues the same e-mails as `notify(users=…, title=…, body=…, link=…)`
    would, in that order, with one insert per table for all of them (on PostgreSQL a COPY),
    inside the caller's transaction. Returns the number of messages put in inboxes."""
    now = now or timezone.now()
    notifications, emails = [], []
    for users, title, body, link in messages:
        url = settings.PORTAL_BASE_URL + link if link else ""
        for u in users:
            if not u.is_active:
                continue
            notifications.append((u.pk, title[:200], body, link, now, None))
            if u.email:
                emails.append((u.email, title[:200], f"{body}\n\n{url}".strip(), now, None, 0, ""))
    insert_rows(Notification, ["user_id", "title", "body", "link", "created_at", "read_at"], notifications)
    insert_rows(
        OutgoingEmail, ["to", "subject", "body", "created_at", "sent_at", "attempts", "last_error"], emails
    )
    if notifications and send_now:
        from .tasks import send_outbox

        transaction.on_commit(lambda: send_outbox.delay())
    return len(notifications)


def outbox_send(*, limit: int = 500) -> int:
    """Send queued e-mails, each marked sent in its own transaction (row locked, skipped by
    a concurrent sender), so two senders never send the same message twice."""
    sent = 0
    failed: list[int] = []  # tried in this call: the next sweep tries them again
    for _ in range(limit):
        with transaction.atomic():
            mail = (
                OutgoingEmail.objects.select_for_update(skip_locked=True)
                .filter(sent_at__isnull=True, attempts__lt=10)
                .exclude(pk__in=failed)
                .order_by("created_at")
                .first()
            )
            if mail is None:
                break
            mail.attempts += 1
            try:
                send_mail(mail.subject, mail.body, None, [mail.to])
            except Exception as exc:  # SMTP trouble: keep it queued, try again next sweep
                mail.last_error = str(exc)[:1000]
                mail.save(update_fields=["attempts", "last_error"])
                failed.append(mail.pk)
                continue
            mail.sent_at = timezone.now()
            mail.save(update_fields=["attempts", "sent_at"])
            sent += 1
    return sent


def unread_count(user, *, cap: int = 99) -> int:
    """Unread messages, counted up to `cap` (the badge shows 99+): bounded on every page."""
    return Notification.objects.filter(user=user, read_at__isnull=True)[: cap + 1].count()


@transaction.atomic
def notification_mark_read(*, notification: Notification) -> None:
    if notification.read_at is None:
        notification.read_at = timezone.now()
        notification.save(update_fields=["read_at"])
