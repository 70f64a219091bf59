"""Settings shared by every environment. Everything configurable comes through one `env`.

`test.py` and `production.py` change only what must differ. Every variable is listed in the
README ("Configuration").
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
VAR_DIR = Path(env.str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))
# Only the embedded default reads the generated var/.env; production and tests take every
# secret from the environment.
_EMBEDDED = os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(".base")
if _EMBEDDED and (VAR_DIR / ".env").exists():
    # Values already in the environment win over the generated file.
    env.read_env(str(VAR_DIR / ".env"), overwrite=False)

SECRET_KEY = env.str("SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",
    "django_filters",
    "simple_history",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "blacklist_portal.accounts",
    "blacklist_portal.audit",
    "blacklist_portal.inbox",
    "registry",
    "disputes",
    "billing",
    "supervision",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "blacklist_portal.accounts.middleware.SessionLifetimeMiddleware",
    "blacklist_portal.accounts.middleware.TwoFactorRequiredMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Axes must be last: it turns a lockout signalled by its backend into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "blacklist_portal.urls"
WSGI_APPLICATION = "blacklist_portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "blacklist_portal.accounts.context_processors.navigation",
                "supervision.context_processors.suspension_banner",
            ],
        },
    },
]
FORM_RENDERER = "blacklist_portal.forms.PortalFormRenderer"

# --- Database -------------------------------------------------------------------------------
# SQLite under var/ by default; DATABASE_URL=postgres://… for PostgreSQL.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # IMMEDIATE: a transaction takes the write lock when it starts, so two writers never
        # both read the audit chain's head and then race to append.
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
else:
    # Persistent connections with a health check: cheaper than a pool per gunicorn worker
    # and safe behind PgBouncer.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Users, login, sessions ------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "accounts:home"
LOGOUT_REDIRECT_URL = "accounts:login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "blacklist_portal.accounts.validators.CharacterClassValidator"},
]

# Idle timeout: the cookie lives SESSION_IDLE_SECONDS and is renewed on every request.
# Absolute limit: SessionLifetimeMiddleware ends a session SESSION_ABSOLUTE_SECONDS after login.
PORTAL_SESSION_IDLE_SECONDS = env.int("PORTAL_SESSION_IDLE_SECONDS", default=30 * 60)
PORTAL_SESSION_ABSOLUTE_SECONDS = env.int("PORTAL_SESSION_ABSOLUTE_SECONDS", default=12 * 3600)
SESSION_COOKIE_AGE = PORTAL_SESSION_IDLE_SECONDS
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_NAME = "portal_session"

# django-axes: 5 failures lock the username for 30 minutes, whether or not the user exists.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 asks to lock by IP as well. We lock per account on purpose: a lender's whole office
# sits behind one NAT address, and an IP lockout would let one person's typos lock out all of
# their colleagues. Password spraying is covered by the audit log (auth.login_failed by IP).
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False
AXES_ENABLE_ADMIN = False

OTP_TOTP_ISSUER = "小额贷款黑名单系统"

# --- Internationalisation --------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- Static and uploaded files ---------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise expects it even before collectstatic
# Served by the app (whitenoise); in development straight from the finders.
WHITENOISE_USE_FINDERS = True
# Uploads (evidence, consents) are private: never under STATIC or a public MEDIA_URL, served
# only by permission-checked views.
PRIVATE_STORAGE_ROOT = Path(env.str("PRIVATE_STORAGE_ROOT", default=str(VAR_DIR / "private")))
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(PRIVATE_STORAGE_ROOT), "base_url": None},
    },
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
PORTAL_UPLOAD_MAX_BYTES = env.int("PORTAL_UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# --- Personal-data encryption (used by the registry) ------------------------------------------
# "kid:base64key,kid:base64key": the first key encrypts, all decrypt (rotation).
FIELD_ENCRYPTION_KEYS = env.str("FIELD_ENCRYPTION_KEYS")
BLIND_INDEX_KEY = env.str("BLIND_INDEX_KEY")

# --- Celery ---------------------------------------------------------------------------------
# Default: a file-system broker under var/, so `make run` needs no Redis server.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
_broker_dir = VAR_DIR / "celery" / "broker"
if CELERY_BROKER_URL.startswith("filesystem"):
    # kombu's file-system transport expects its folders to exist.
    for _folder in (_broker_dir, VAR_DIR / "celery" / "processed"):
        _folder.mkdir(parents=True, exist_ok=True)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {"visibility_timeout": 3600}
)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=None)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celery" / "beat-schedule")
CELERY_BEAT_SCHEDULE: dict = {}

# --- Cache (API rate limits) -------------------------------------------------------------------
# Per-process memory by default; in production Redis, shared by every web process.
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
PORTAL_API_RATE_LIMIT = env.int("PORTAL_API_RATE_LIMIT", default=600)  # requests per minute per key
PORTAL_BATCH_MAX_SUBJECTS = 10_000

# --- E-mail ---------------------------------------------------------------------------------
# Default: each message is written as a file under var/mail/. Production: EMAIL_URL=smtp://…
vars().update(env.email_url("EMAIL_URL", default=f"filemail://{VAR_DIR / 'mail'}"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="noreply@blacklist-portal.local")
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")

# --- Security headers -------------------------------------------------------------------------
# Everything is served by the portal itself: no CDN, no inline script or style.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CSRF_COOKIE_HTTPONLY = True

# Behind a TLS-terminating proxy, set PORTAL_BEHIND_PROXY=true so REMOTE_ADDR is taken from
# the proxy's X-Forwarded-For (only the last hop is trusted).
PORTAL_BEHIND_PROXY = env.bool("PORTAL_BEHIND_PROXY", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

# `seed_demo` and `totp` refuse to run where this is False (production).
PORTAL_DEMO_DATA_ALLOWED = env.bool("PORTAL_DEMO_DATA_ALLOWED", default=True)

# --- Registry rules (product.md "The life of an entry") ---------------------------------------
# Retention after settlement / end of behaviour (条例 Art. 16).
PORTAL_RETENTION_YEARS = env.int("PORTAL_RETENTION_YEARS", default=5)
# Bulk files up to this size go through the web request; larger ones run in a Celery task.
PORTAL_IMPORT_MAX_BYTES = env.int("PORTAL_IMPORT_MAX_BYTES", default=200 * 1024 * 1024)

CELERY_BEAT_SCHEDULE.update(
    {
        "billing-monthly-statements": {
            "task": "billing.monthly_statements",
            "schedule": crontab(day_of_month=1, hour=2, minute=0),
        },
        "inbox-send-outbox": {"task": "inbox.send_outbox", "schedule": 60.0},
        "registry-expire-entries": {
            "task": "registry.expire_entries",
            "schedule": crontab(hour=1, minute=30),
        },
    }
)

# --- Disputes (product.md "Disputes") ---------------------------------------------------------
PORTAL_DISPUTE_DECISION_DAYS = env.int("PORTAL_DISPUTE_DECISION_DAYS", default=20)  # 条例 Art. 25
PORTAL_DISPUTE_EXTENSION_DAYS = env.int("PORTAL_DISPUTE_EXTENSION_DAYS", default=10)
PORTAL_DISPUTE_VERIFICATION_DAYS = env.int("PORTAL_DISPUTE_VERIFICATION_DAYS", default=5)  # FCRA §1681i(a)(2)
PORTAL_DISPUTE_APPEAL_DAYS = env.int("PORTAL_DISPUTE_APPEAL_DAYS", default=15)
# Reminders to the assignee this many days before the decision is due.
PORTAL_DISPUTE_REMINDER_DAYS = env.list("PORTAL_DISPUTE_REMINDER_DAYS", cast=int, default=[5, 2, 1])
PORTAL_DISPUTE_NOTIFY_QUERIERS_DAYS = 90
PORTAL_DISPUTE_SWEEP_SECONDS = env.float("PORTAL_DISPUTE_SWEEP_SECONDS", default=900.0)
CELERY_BEAT_SCHEDULE["disputes-sweep"] = {
    "task": "disputes.sweep",
    "schedule": PORTAL_DISPUTE_SWEEP_SECONDS,
}

# --- Supervision (product.md "Supervision") -----------------------------------------------------
PORTAL_COMPLAINT_REPLY_DAYS = env.int("PORTAL_COMPLAINT_REPLY_DAYS", default=30)  # 条例 Art. 26
PORTAL_COMPLAINT_REMINDER_DAYS = env.list("PORTAL_COMPLAINT_REMINDER_DAYS", cast=int, default=[7, 3, 1])
PORTAL_COMPLAINT_SWEEP_SECONDS = env.float("PORTAL_COMPLAINT_SWEEP_SECONDS", default=900.0)
CELERY_BEAT_SCHEDULE["supervision-complaint-sweep"] = {
    "task": "supervision.complaint_sweep",
    "schedule": PORTAL_COMPLAINT_SWEEP_SECONDS,
}
# Abnormal-query alerts (supervision/alerts.py), evaluated each night for the day before, and
# the days before that an outage may have skipped (re-evaluating a day raises nothing twice).
PORTAL_ALERT_NIGHT_FROM_HOUR = 22
PORTAL_ALERT_NIGHT_UNTIL_HOUR = 6
PORTAL_ALERT_NIGHT_MIN_QUERIES = env.int("PORTAL_ALERT_NIGHT_MIN_QUERIES", default=5)
PORTAL_ALERT_SPIKE_FACTOR = env.int("PORTAL_ALERT_SPIKE_FACTOR", default=3)
PORTAL_ALERT_SPIKE_MIN_QUERIES = env.int("PORTAL_ALERT_SPIKE_MIN_QUERIES", default=50)
PORTAL_ALERT_SPIKE_BASELINE_DAYS = env.int("PORTAL_ALERT_SPIKE_BASELINE_DAYS", default=28)
PORTAL_ALERT_REPEAT_MIN_QUERIES = env.int("PORTAL_ALERT_REPEAT_MIN_QUERIES", default=5)
PORTAL_ALERT_REPEAT_DAYS = env.int("PORTAL_ALERT_REPEAT_DAYS", default=7)
# Queries that count as "queried for approval" before post-loan monitoring of a subject.
PORTAL_ALERT_APPROVAL_PURPOSES = ["loan_approval", "guarantor_check"]
PORTAL_ALERT_CATCH_UP_DAYS = env.int("PORTAL_ALERT_CATCH_UP_DAYS", default=3)
CELERY_BEAT_SCHEDULE["supervision-query-alerts"] = {
    "task": "supervision.evaluate_alerts",
    "schedule": crontab(hour=0, minute=20),
}
# The dashboard's pre-aggregated counts, each night after the expiry job; members'
# data-quality scores for the month just ended, on the 1st after the statements
# (supervision/dashboard.py, quality.py). These task modules are not named tasks.py, so they
# are imported explicitly.
CELERY_IMPORTS = ["supervision.tasks_dashboard", "supervision.tasks_quality"]
CELERY_BEAT_SCHEDULE["supervision-market-stats"] = {
    "task": "supervision.market_stats",
    "schedule": crontab(hour=2, minute=30),
}
CELERY_BEAT_SCHEDULE["supervision-quality-scores"] = {
    "task": "supervision.quality_scores",
    "schedule": crontab(day_of_month=1, hour=3, minute=0),
}
