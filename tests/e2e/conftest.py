"""Browser journeys: headless Debian Chromium driven by Playwright for Python, against
pytest-django's `live_server` and the real test database (SQLite, or PostgreSQL when
DATABASE_URL is set).

Without /usr/bin/chromium or the `playwright` package the whole folder is skipped, with the
reason in the summary (`-rs`) and on its own line at the end of the run. Under CI (the CI
environment variable set to anything but "", "0", "false" or "no") a skip here is a failure:
CI must run the journeys, not quietly pass without them.

Screenshots go to $SCREENSHOT_DIR, else <repo>/screenshots/<timestamp>/, one sub-folder per
journey; the folder is printed at the end of the run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from helpers import BROWSER_ARGS, BROWSER_ENV, CHROMIUM, Shots

E2E_DIR = Path(__file__).resolve().parent
REPO = E2E_DIR.parents[1]

# Install hint shown with every skip or CI failure.
HOW_TO_INSTALL = (
    "apt-get update && apt-get install -y chromium fonts-noto-cjk; "
    ".venv/bin/pip install -r requirements-dev.txt"
)

_screenshot_dir_key = pytest.StashKey[Path]()
_missing_key = pytest.StashKey[str]()
_async_unsafe_key = pytest.StashKey["str | None"]()
_failed_key = pytest.StashKey[bool]()


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _missing_requirement() -> str:
    """Why the journeys cannot run here, or "" when they can."""
    problems = []
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"{CHROMIUM} not found")
    if importlib.util.find_spec("playwright") is None:
        problems.append("the playwright package is not installed")
    if not problems:
        return ""
    return f"e2e browser tests need Chromium and Playwright: {' and '.join(problems)} ({HOW_TO_INSTALL})"


def _is_e2e(item: pytest.Item) -> bool:
    return E2E_DIR in item.path.resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = _missing_requirement()
    if not missing:
        return
    config.stash[_missing_key] = missing
    for item in items:
        if _is_e2e(item):
            item.add_marker(pytest.mark.skip(reason=missing))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    """Under CI a skipped journey is a failed journey. Failed journeys are noted so that
    new_context can take a picture of where each person got stuck."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        item.stash[_failed_key] = True
    if report.skipped and in_ci() and _is_e2e(item) and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"CI is set, so the e2e journeys must run, but they were skipped: {reason}"
        )


# Playwright's sync API keeps an asyncio loop running in the main thread while a browser is
# open, and Django then refuses ORM calls from that thread (SynchronousOnlyOperation). The
# journeys set data up and tear the database down from this thread while no coroutine runs,
# so Django's guard is lifted around each journey only (fixture set-up and teardown included)
# and restored for the rest of the suite. The browser is module-scoped, so no loop outlives
# the journeys.
_ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    if _is_e2e(item):
        item.stash[_async_unsafe_key] = os.environ.get(_ASYNC_UNSAFE)
        os.environ[_ASYNC_UNSAFE] = "true"
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem):
    yield
    if _async_unsafe_key in item.stash:
        previous = item.stash[_async_unsafe_key]
        if previous is None:
            os.environ.pop(_ASYNC_UNSAFE, None)
        else:
            os.environ[_ASYNC_UNSAFE] = previous


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    missing = config.stash.get(_missing_key, "")
    if missing:
        verdict = "FAILED (CI is set)" if in_ci() else "SKIPPED"
        terminalreporter.write_sep("-", f"e2e browser journeys {verdict}")
        terminalreporter.write_line(missing)
    folder = config.stash.get(_screenshot_dir_key, None)
    if folder is not None:
        terminalreporter.write_sep("-", "e2e screenshots")
        terminalreporter.write_line(f"Screenshots of the journeys: {folder}")


# --- Fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def screenshot_dir(pytestconfig: pytest.Config) -> Path:
    """Created once per run; pytest_terminal_summary prints it."""
    configured = os.environ.get("SCREENSHOT_DIR")
    if configured:
        folder = Path(configured).resolve()
    else:
        folder = REPO / "screenshots" / datetime.now().strftime("%Y%m%d-%H%M%S")  # noqa: DTZ005 (a local folder name)
    folder.mkdir(parents=True, exist_ok=True)
    pytestconfig.stash[_screenshot_dir_key] = folder
    return folder


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per journey module; every person gets their own context."""
    missing = _missing_requirement()
    if missing and in_ci():
        pytest.fail(missing)
    if missing:
        pytest.skip(missing)
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # While Playwright's loop runs in this thread, Django's connection handler (an asgiref
    # Local, thread-critical) keeps connections in a separate per-context storage and would
    # open a second connection per database: one that lacks the serialized test data, so
    # serialized_rollback would silently stop restoring the roles after the first journey.
    # The thread's own connections are put in that storage too.
    own = {alias: connections[alias] for alias in connections}
    with sync_playwright() as playwright:
        for alias, connection in own.items():
            connections[alias] = connection
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=BROWSER_ARGS,
            env={**os.environ, **BROWSER_ENV},
        )
        yield browser
        browser.close()


@pytest.fixture
def new_context(request, browser, shots):
    """new_context(): a fresh browser profile (cookies, language), like another person's PC.
    When the journey fails, each person's last page is saved as failure-<n>.png."""
    contexts = []

    def make(**options):
        options.setdefault("viewport", {"width": 1280, "height": 900})
        options.setdefault("locale", "zh-CN")
        options.setdefault("timezone_id", "Asia/Shanghai")
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        # No favicon request racing the next page on the server's shared SQLite connection.
        context.route("**/favicon.ico", lambda route: route.abort())
        contexts.append(context)
        return context

    yield make
    if request.node.stash.get(_failed_key, False):
        for n, context in enumerate(contexts, start=1):
            for page in context.pages:
                page.screenshot(path=str(shots.folder / f"failure-{n}.png"), full_page=True)
    for context in contexts:
        context.close()


@pytest.fixture
def shots(request, screenshot_dir) -> Shots:
    """Numbered full-page screenshots of this journey, in <screenshot_dir>/<journey>[-<param>]/."""
    name = request.module.__name__.removeprefix("test_journey_")
    if hasattr(request.node, "callspec"):
        name += "-" + request.node.callspec.id
    folder = screenshot_dir / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return Shots(folder)


@pytest.fixture
def password(request) -> str:
    """PASSWORD of tests/conftest.py (every conftest is module "conftest", so no import)."""
    root = request.config.pluginmanager.get_plugin(str(REPO / "tests" / "conftest.py"))
    return root.PASSWORD
