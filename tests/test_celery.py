"""The Celery app: eager in the default test run; a real round trip when a broker is set (CI)."""

import pytest
from django.conf import settings

from blacklist_portal.celery import app, ping


def test_the_app_reads_its_settings_from_django():
    assert app.conf.broker_url == settings.CELERY_BROKER_URL
    assert app.conf.timezone == "Asia/Shanghai"
    assert app.conf.task_acks_late is True
    assert "portal.ping" in app.tasks


def test_the_default_broker_needs_no_server():
    from blacklist_portal.settings import base

    if base.env.str("CELERY_BROKER_URL", default="") == "":
        assert settings.CELERY_BROKER_URL == "filesystem://"
        assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"].startswith(
            str(base.VAR_DIR)
        )
    else:
        pytest.skip("CELERY_BROKER_URL is set: the default is not in use")


@pytest.mark.skipif(settings.PORTAL_TEST_BROKER, reason="a real broker is configured")
def test_tasks_run_eagerly_without_a_broker():
    result = ping.delay()

    assert result.get(timeout=1) == "pong"


@pytest.mark.broker
def test_a_task_round_trips_through_the_real_broker():
    from celery.contrib.testing.worker import start_worker
    from celery.result import EagerResult

    if not settings.PORTAL_TEST_BROKER:
        pytest.skip("no real broker: set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/14)")
    if not settings.CELERY_RESULT_BACKEND:
        pytest.skip("the round trip needs CELERY_RESULT_BACKEND to read the answer")

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            result = ping.delay()
            assert not isinstance(result, EagerResult)  # it went over the broker
            assert result.get(timeout=20) == "pong"
            assert result.state == "SUCCESS"
    finally:
        app.conf.task_always_eager = eager
