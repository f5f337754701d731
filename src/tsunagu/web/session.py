"""Who is looking at a page, in which language, and rendering it.

Pages are for people who signed in (users.py): one without a session goes to `/login`, store
staff who open the dashboard go to `/staff`, anyone else a page is not for gets 403. Forms
carry the session's CSRF token; the language comes from `?lang=` (then kept in a cookie) or the
cookie, Japanese by default.
"""

from __future__ import annotations

import hmac
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BeforeValidator

from tsunagu.api.deps import CSRF_HEADER, SESSION_COOKIE
from tsunagu.users import Session, Sessions
from tsunagu.web.i18n import (
    LANG_COOKIE,
    LANGS,
    duration,
    jst,
    lang_of,
    percent,
    translator,
    yen,
)


def _blank(value: Any) -> Any:
    return None if value == "" else value


Blank = BeforeValidator(_blank)
"""A form's empty field is no value (a cleared date or number box sends `from=`)."""
From = Annotated[date | None, Blank, Query(alias="from", description="first day (local)")]
To = Annotated[date | None, Blank, Query(description="last day (local)")]
Day = Annotated[date | None, Blank, Query()]

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters.update(yen=yen, jst=jst, percent=percent, duration=duration)

DASHBOARD = ("admin", "marketer", "analyst")
STAFF = ("staff", "admin")
YEAR_S = 365 * 24 * 3600


class Away(Exception):
    """Leave the page for `response` (a redirect to sign in, a refusal)."""

    def __init__(self, response: Response) -> None:
        self.response = response


def install(app: FastAPI) -> None:
    async def away(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Away)
        return exc.response

    app.add_exception_handler(Away, away)


def language(request: Request) -> str:
    asked = request.query_params.get("lang")
    return lang_of(asked if asked in LANGS else request.cookies.get(LANG_COOKIE))


def sessions_of(request: Request) -> Sessions:
    return request.app.state.sessions


def signed_in(request: Request, roles: tuple[str, ...]) -> Session:
    """The page's viewer, if their role may see it; else Away (to sign in, to their own
    screen, or 403)."""
    session = sessions_of(request).session_of(request.cookies.get(SESSION_COOKIE))
    if session is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise Away(RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303))
    if session.user.role not in roles:
        if session.user.role == "staff":
            raise Away(RedirectResponse("/staff", status_code=303))
        raise Away(page(request, "denied.html", {"session": session}, status_code=403))
    return session


def check_csrf(session: Session, token: str | None) -> None:
    if not token or not hmac.compare_digest(token, session.csrf):
        raise Away(HTMLResponse("CSRF token missing or wrong: reload the page", status_code=403))


def page(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render `name` in the viewer's language, keeping a `?lang=` choice in a cookie."""
    lang = language(request)
    response = templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "other_lang": "en" if lang == "ja" else "ja",
            "t": translator(lang),
            "csrf_header": CSRF_HEADER,
            **context,
        },
        status_code=status_code,
    )
    if request.query_params.get("lang") in LANGS:
        set_cookie(request, response, LANG_COOKIE, lang, max_age=YEAR_S, http_only=False)
    response.headers["Cache-Control"] = "no-store"
    return response


def set_cookie(
    request: Request,
    response: Response,
    name: str,
    value: str,
    *,
    max_age: int | None = None,
    http_only: bool = True,
) -> None:
    """A first-party cookie: SameSite=Lax, Secure when the page came over HTTPS."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=http_only,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
