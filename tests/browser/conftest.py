"""Browser fixtures: Debian's Chromium driven by Playwright against `cortiware serve`.

The service runs as its own process (the real CLI) on a fresh PostgreSQL database and a
Redis key prefix of its own, with Stripe's API answered by the offline fake over HTTP.
Chromium is required: without it every test here fails and says how to install it; none
is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, Response, sync_playwright
from sqlalchemy.ext.asyncio import AsyncSession

from cortiware.db import migrate
from cortiware.db.engine import create_engine
from cortiware.seed import seed
from tests.conftest import TEST_ENV
from tests.integration.backends import Backends, scratch_database
from tests.integration.conftest import backends  # noqa: F401 - the integration suite's fixture
from tests.support.servers import free_port, wait_until_listening
from tests.support.stripe_fake import FakeStripe
from tests.support.stripe_server import serve_fake_stripe

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CORTIWARE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"]
INSTALL_HINT = (
    f"Chromium not found at {CHROMIUM}: the browser tests need Debian's Chromium. Install it "
    "with `apt-get install -y chromium` (or point CORTIWARE_CHROMIUM at a Chromium binary)."
)
DESKTOP = {"width": 1280, "height": 800}
_ERROR_STATUS_LOG = "Failed to load resource: the server responded with a status of "


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser carries the `browser` marker."""
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


@dataclass(frozen=True)
class Service:
    """A running `cortiware serve` and what it was started with."""

    base_url: str
    database_url: str
    env: dict[str, str]
    stripe: FakeStripe
    log: Path


def service_env(**extra: str) -> dict[str, str]:
    """The process environment of a served service: PATH and friends, the repository on
    PYTHONPATH (for the Stripe entry point), the test settings and `extra`."""
    keep = ("PATH", "HOME", "LANG", "VIRTUAL_ENV")
    base = {k: v for k, v in os.environ.items() if k in keep}
    return base | {"PYTHONPATH": str(REPO_ROOT), "STRIPE_SUPPRESS_NOTICES": "true"} | extra


@contextlib.contextmanager
def run_service(
    args: list[str], env: dict[str, str], port: int, cwd: Path, log: Path
) -> Iterator[None]:
    """Run `python -m <args>` until it listens on `port`; terminate it at the end."""
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=cwd,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_listening(process, port, log)
            yield
        finally:
            process.terminate()
            process.wait(timeout=30)


STANDARD_STRIPE_PRICE = "price_standard_monthly"
"""The Stripe price the journey links the seeded `standard` plan's monthly price to."""
PAYMENT_METHODS = "card,us_bank_account,sepa_debit"
"""`STRIPE_PAYMENT_METHODS` of the served service (as the staging and prod stacks set it)."""


async def _migrate_and_seed(url: str) -> None:
    await migrate.upgrade(url)
    engine = create_engine(url, pool_size=1)
    try:
        async with AsyncSession(engine) as session, session.begin():
            await seed(session)
    finally:
        await engine.dispose()


@pytest.fixture(scope="package")
def service(backends: Backends, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:  # noqa: F811
    """`cortiware serve` on a fresh, migrated and seeded database, Redis and fake Stripe."""
    workdir = tmp_path_factory.mktemp("browser-serve")
    with (
        scratch_database(backends.admin_database_url) as database_url,
        serve_fake_stripe() as (stripe_base, fake),
    ):
        # In a thread of its own: Playwright's sync API keeps an event loop on this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _migrate_and_seed(database_url)).result()
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        settings_env = TEST_ENV | {
            "DATABASE_URL": database_url,
            "REDIS_URL": backends.redis_url,
            "CORTIWARE_REDIS_PREFIX": f"cwtest:{uuid.uuid4().hex[:12]}:",
            "BASE_URL": base_url,
            # Each test logs in afresh from 127.0.0.1; the login limit is not under test here.
            "RATE_LIMIT_AUTH": "1000/minute",
            "RATE_LIMIT_AUTH_IP": "1000/minute",
            "CORTIWARE_TEST_STRIPE_API_BASE": stripe_base,
            "STRIPE_PAYMENT_METHODS": PAYMENT_METHODS,
        }
        log = workdir / "serve.log"
        args = ["tests.support.serve_on_fake_stripe", "serve", "--port", str(port)]
        with run_service(args, service_env(**settings_env), port, REPO_ROOT, log):
            yield Service(base_url, database_url, settings_env, fake, log)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver (it brings its own; the browser is Debian's)."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless Chromium; fails with install instructions when it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(INSTALL_HINT, pytrace=False)
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@dataclass
class Tab:
    """A page in a fresh browser context, with what it saw: console errors and every
    top-level document (URL, status, content type)."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    documents: list[tuple[str, int, str]] = field(default_factory=list)
    error_pages_expected: bool = False
    """Set by a test that opens an error page on purpose: Chromium logs the 4xx/5xx
    document as a failed load, which is then not counted as a console error."""
    expected_console: list[str] = field(default_factory=list)
    """Console errors a test provokes on purpose (each matched by its start)."""

    def on_console(self, message: ConsoleMessage) -> None:
        """Keep console errors (a CSP refusal, a failed load, a script error)."""
        if message.type != "error":
            return
        if self.error_pages_expected and message.text.startswith(_ERROR_STATUS_LOG):
            return
        if any(message.text.startswith(text) for text in self.expected_console):
            return
        self.console_errors.append(message.text)

    def on_response(self, response: Response) -> None:
        """Keep each main-frame document the browser was given."""
        request = response.request
        if request.is_navigation_request() and request.frame == self.page.main_frame:
            kind = response.headers.get("content-type", "")
            self.documents.append((response.url, response.status, kind))

    def non_html_documents(self) -> list[tuple[str, int, str]]:
        """Documents that were not HTML pages (a JSON body where a person expected a page)."""
        return [
            doc
            for doc in self.documents
            if not 300 <= doc[1] < 400 and not doc[2].startswith("text/html")
        ]


def open_tab(browser: Browser, base_url: str) -> tuple[Any, Tab]:
    """A fresh context (no cookies) at desktop size and its first page, instrumented."""
    context = browser.new_context(base_url=base_url, viewport=DESKTOP)  # type: ignore[arg-type]
    page = context.new_page()
    tab = Tab(page)
    page.on("console", tab.on_console)
    page.on("pageerror", lambda error: tab.console_errors.append(str(error)))
    page.on("response", tab.on_response)
    return context, tab


@pytest.fixture
def tab(service: Service, browser: Browser) -> Iterator[Tab]:
    """A fresh browser tab on the service; the test fails if the console showed an error or
    a top-level document was not HTML."""
    context, opened = open_tab(browser, service.base_url)
    yield opened
    context.close()
    assert opened.console_errors == [], opened.console_errors
    assert opened.non_html_documents() == [], opened.non_html_documents()
