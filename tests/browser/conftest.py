"""Real-browser tests: Playwright for Python drives Debian's Chromium against pytest-django's
live server, on the demo data (seed_demo).

Nothing is downloaded: the browser is the system's (/usr/bin/chromium, which `make test`
installs with apt when it runs as root) and axe-core comes from node_modules (`npm ci`).
Whatever is missing makes these tests skip with the reason, or fail with it when
BROWSER_TESTS=required (CI), so a CI run can never pass without them.
"""

import io
import os

import pytest
from django.core.management import call_command
from pytest_django.live_server_helper import LiveServer

from tests.browser.support import AXE, CHROMIUM, CHROMIUM_ARGS, WIDE, sync_playwright
from tests.factories import PASSWORD


def unavailable(reason):
    """Skip the test for ``reason``, or fail it when the browser tests are required."""
    if os.environ.get("BROWSER_TESTS") == "required":
        pytest.fail(f"{reason} (BROWSER_TESTS=required)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def live_server():
    """pytest-django's live server on 127.0.0.1 (its default, "localhost", may resolve to
    another address); a free port is picked."""
    server = LiveServer("127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        unavailable(
            f"Chromium not found at {CHROMIUM}: run `make test` as root, which installs it with apt"
        )
    if sync_playwright is None:
        unavailable("Playwright is not installed: `make test` installs requirements-dev.txt")
    # Playwright's sync API keeps an asyncio loop in this thread, so Django would refuse the
    # tests' own database access as "async" while the browser runs. Nothing here is async.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()


@pytest.fixture(scope="package")
def axe_source(browser):
    if not AXE.exists():
        unavailable(f"axe-core not found at {AXE}: run `npm ci` (which `make test` does)")
    return AXE


@pytest.fixture
def demo(live_server):
    """The demo projects and people (all with the test password) in the test database."""
    call_command("seed_demo", password=PASSWORD, stdout=io.StringIO())


@pytest.fixture
def new_page(browser, live_server):
    """new_page(viewport=...) -> a page in a fresh browser context (its own cookies, so
    its own login); a JavaScript error on any of them fails the test."""
    contexts, errors = [], []

    def make(viewport=WIDE, **options):
        context = browser.new_context(base_url=live_server.url, viewport=viewport, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.on("pageerror", lambda error: errors.append(str(error)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def page(new_page, demo):
    """A wide browser page on the demo data, not logged in yet."""
    return new_page()
