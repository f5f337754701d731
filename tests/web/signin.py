"""Signing in to the screens as a browser would, with httpx: the form's CSRF token from the
page, then the session cookie."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tsunagu.store import Store
from tsunagu.users import create_user

PASSWORD = "correct horse 電池"


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


@contextmanager
def sign_in(url: str, login: str, password: str = PASSWORD) -> Iterator[httpx.Client]:
    """A client holding the session of `login` (who must exist)."""
    with httpx.Client(base_url=url, follow_redirects=False, timeout=30) as client:
        form = client.get("/login")
        answer = client.post(
            "/login",
            data={"login": login, "password": password, "csrf": form_token(form.text)},
        )
        assert answer.status_code == 303, answer.text[:400]
        yield client


def users(store: Store, shop: str | None) -> None:
    """One user of each role: admin, marketer, analyst, and staff of `shop` (if given)."""
    for role in ("admin", "marketer", "analyst"):
        create_user(store=store, login=role, role=role, password=PASSWORD)
    if shop:
        create_user(store=store, login="staff", role="staff", password=PASSWORD, store_id=shop)
