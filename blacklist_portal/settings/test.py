"""Test settings: SQLite and eager Celery by default; PostgreSQL and Redis when
DATABASE_URL / CELERY_BROKER_URL are set (CI)."""

import os
import secrets
import tempfile

# Throw-away keys for each test run; nothing encrypted with them outlives the run.
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "t1:" + secrets.token_urlsafe(32))
os.environ.setdefault("BLIND_INDEX_KEY", secrets.token_urlsafe(32))
os.environ.setdefault("PORTAL_VAR_DIR", tempfile.mkdtemp(prefix="portal-test-var-"))

from .base import *  # noqa: E402,F403
from .base import CELERY_BROKER_URL, STORAGES, env  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
PORTAL_TEST_BROKER = not CELERY_BROKER_URL.startswith("filesystem")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
