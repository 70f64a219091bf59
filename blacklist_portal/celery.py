import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blacklist_portal.settings.base")

from blacklist_portal.localenv import ensure_local_env  # noqa: E402

ensure_local_env()

app = Celery("blacklist_portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="portal.ping")
def ping() -> str:
    """Round trip through the broker; used by the broker test and health checks."""
    return "pong"
