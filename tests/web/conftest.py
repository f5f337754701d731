"""The screens in Debian's Chromium (Playwright, no browser download): a server over the sample
retailer with a user of each role, and pages that fail the test on any console error, page
error or request off this machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import LiveServer, serve_app
from tests.e2e.browser import CHROMIUM_ARGS, Watched, chromium
from tests.web.signin import PASSWORD, users

from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.store import Store

SHOTS = os.environ.get("TSUNAGU_SCREENSHOTS")
"""A folder to write screenshots of the main screens to (`make screenshots`)."""


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def shop(sample_copy: Store, settings: Settings) -> Iterator[LiveServer]:
    """The sample retailer served, with users admin, marketer, analyst and staff (of the first
    store)."""
    users(sample_copy, sample_copy.scalar("SELECT min(store_id) FROM stores"))
    with serve_app(create_app(settings, store=sample_copy)) as url:
        yield LiveServer(url=url, write_key="", store=sample_copy, settings=settings)


class Screen(Watched):
    """A watched page on the shop's server that signs in through the form."""

    def __init__(self, context: Any, url: str) -> None:
        super().__init__(context)
        self.url = url

    def sign_in(self, login: str, password: str = PASSWORD) -> None:
        self.page.goto(f"{self.url}/login")
        self.page.fill('input[name="login"]', login)
        self.page.fill('input[name="password"]', password)
        self.page.click('button[type="submit"]')
        self.page.wait_for_load_state()

    def shot(self, name: str, *, full_page: bool = True) -> None:
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full_page)

    def refused(self, status: int) -> None:
        """The page just answered `status` on purpose: the browser's note of it is no error."""
        assert self.errors and all(f"status of {status}" in e for e in self.errors), self.errors
        self.errors.clear()

    def clean(self) -> None:
        """Nothing went wrong in the page and nothing left the machine."""
        assert self.errors == [], self.errors
        assert self.outside == [], self.outside


@contextmanager
def _watched(chrome: Any, url: str, **options: Any) -> Iterator[Screen]:
    """A Screen in a browser context of its own; clean when the test is done."""
    context = chrome.new_context(locale="ja-JP", **options)
    watched = Screen(context, url)
    try:
        yield watched
        watched.clean()
    finally:
        context.close()


@pytest.fixture
def screen(chrome: Any, shop: LiveServer) -> Iterator[Screen]:
    with _watched(chrome, shop.url, viewport={"width": 1280, "height": 900}) as watched:
        yield watched


@pytest.fixture
def tablet(chrome: Any, shop: LiveServer) -> Iterator[Screen]:
    """The store screen's device: a 1024×768 tablet with touch."""
    with _watched(
        chrome, shop.url, viewport={"width": 1024, "height": 768}, has_touch=True
    ) as watched:
        yield watched
