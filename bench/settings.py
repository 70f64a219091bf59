"""Settings of the benchmark server: production settings, plus the floor view's URL.

``bench.run`` starts gunicorn with ``DJANGO_SETTINGS_MODULE=bench.settings`` and fills the
environment that production requires (SECRET_KEY, FIELD_ENCRYPTION_KEYS, BLIND_INDEX_KEY,
ALLOWED_HOSTS, DATABASE_URL) with bench-only values. Everything else is production as it
ships: DEBUG off, persistent database connections, the manifest static storage, the security
middleware. The benchmark runs over plain http on 127.0.0.1, so ``bench.run`` also sets
``SECURE_SSL_REDIRECT=false`` (production redirects http to https), and it raises
``PORTAL_API_RATE_LIMIT`` (600 requests a minute per key by default), which a load test with
one key would otherwise hit within seconds. Both are environment variables production reads;
no setting is changed here except the URL configuration.
"""

from blacklist_portal.settings.production import *  # noqa: F403

# The portal's URLs plus /bench/floor (bench/urls.py); the application's urls.py is untouched.
ROOT_URLCONF = "bench.urls"
