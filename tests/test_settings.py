import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

BASE_DIR = Path(__file__).resolve().parent.parent


def test_time_is_kept_in_utc_and_shown_in_china_time():
    assert settings.USE_TZ is True
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.CELERY_TIMEZONE == "Asia/Shanghai"


def test_the_portal_speaks_chinese_first_and_english_on_request():
    assert settings.LANGUAGE_CODE == "zh-hans"
    assert [code for code, _ in settings.LANGUAGES] == ["zh-hans", "en"]


def html_lang(response) -> str:
    import re

    return re.search(r'<html lang="([^"]+)"', response.content.decode()).group(1)


def test_pages_are_in_chinese_by_default(client, db):
    response = client.get(reverse("accounts:login"))

    assert html_lang(response) == "zh-Hans"


def test_the_header_offers_english(client, db):
    html = client.get(reverse("accounts:login")).content.decode()

    assert f'action="{reverse("set_language")}"' in html
    assert 'name="language" value="en"' in html


def test_switching_to_english_applies_to_later_pages(client, db):
    response = client.post(
        reverse("set_language"), {"language": "en", "next": reverse("accounts:login")}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login")
    assert html_lang(client.get(reverse("accounts:login"))) == "en"


def test_a_signed_in_user_can_switch_language(client, login, lender_staff):
    login(client, lender_staff)
    home = reverse("accounts:role_home", args=["lender_staff"])

    client.post(reverse("set_language"), {"language": "en", "next": home})

    response = client.get(home)
    assert response.status_code == 200
    assert html_lang(response) == "en"


def test_an_unverified_two_factor_user_can_switch_language(client, review_officer):
    client.force_login(review_officer)
    verify = reverse("accounts:otp_verify")

    response = client.post(reverse("set_language"), {"language": "en", "next": verify})

    assert response["Location"] == verify
    assert html_lang(client.get(verify)) == "en"


def test_the_session_and_csrf_cookies_are_not_readable_by_scripts():
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.CSRF_COOKIE_HTTPONLY is True
    assert settings.X_FRAME_OPTIONS == "DENY"


def test_pages_carry_a_content_security_policy_without_third_parties(client, db):
    response = client.get(reverse("accounts:login"))

    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "http" not in policy


def test_healthz_answers_without_login(client, db):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def _clean_env(tmp_path, **extra) -> dict:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        # Keeps the run from touching the checkout's var/ (and from reading its .env).
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
    }
    env.update(extra)
    return env


def _manage(args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "blacklist_portal.settings.production",
    "SECRET_KEY": secrets.token_urlsafe(64),
    "FIELD_ENCRYPTION_KEYS": "p1:" + secrets.token_urlsafe(32),
    "BLIND_INDEX_KEY": secrets.token_urlsafe(32),
    "ALLOWED_HOSTS": "portal.example.cn",
}


def test_production_settings_pass_the_deployment_checks(tmp_path):
    result = _manage(
        ["check", "--deploy", "--fail-level", "WARNING"], _clean_env(tmp_path, **PRODUCTION_ENV)
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    assert not (tmp_path / "var" / ".env").exists()  # production generates no secrets


@pytest.mark.parametrize("missing", ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "ALLOWED_HOSTS"])
def test_production_settings_refuse_to_start_without_a_secret(tmp_path, missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}

    result = _manage(["check"], _clean_env(tmp_path, **env))

    assert result.returncode != 0
    assert missing in result.stderr


def test_ci_runs_on_the_real_services_it_was_given():
    """.ci/run sets PORTAL_EXPECT_REAL_SERVICES: the suite must then be on PostgreSQL and a real
    broker. (A Makefile that dropped DATABASE_URL once made CI pass quietly on SQLite.)"""
    import os

    from django.conf import settings
    from django.db import connection

    if not os.environ.get("PORTAL_EXPECT_REAL_SERVICES"):
        pytest.skip("only under .ci/run")
    assert connection.vendor == "postgresql"
    assert settings.PORTAL_TEST_BROKER
