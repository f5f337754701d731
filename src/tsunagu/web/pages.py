"""The marketer's pages: sign-in and out, Home (KPIs with their trend, per period and store).

Pages call the same runners as the API (analytics, catalog); charts are plotly figures drawn by
`plotly.min.js` from the plotly package (served at /static/plotly.min.js), nothing from a CDN.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import plotly
from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from tsunagu.analytics.channels import ChannelsQuery, channel_mix
from tsunagu.analytics.filters import parse
from tsunagu.analytics.kpis import KpiQuery, Kpis, run_kpis
from tsunagu.analytics.vocabulary import last_day
from tsunagu.api.deps import SESSION_COOKIE, SettingsDep, StoreDep, analytics_engine
from tsunagu.catalog.overview import overview, store_names
from tsunagu.exceptions import AuthError, InvalidInput, TooManyAttempts
from tsunagu.web import charts
from tsunagu.web.i18n import translator
from tsunagu.web.session import (
    DASHBOARD,
    From,
    To,
    check_csrf,
    language,
    page,
    sessions_of,
    set_cookie,
    signed_in,
)

router = APIRouter(include_in_schema=False)
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
STATIC = Path(__file__).parent / "static"
LOGIN_CSRF = "tsunagu_login_csrf"


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(
        PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"}
    )


def _next(target: str | None) -> str:
    """Only a path of this site (never another site: an open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next, error=None)


def _login_page(
    request: Request, target: str | None, error: str | None, status: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(
        request,
        "login.html",
        {"next": _next(target), "error": error, "form_csrf": token},
        status_code=status,
    )
    set_cookie(request, response, LOGIN_CSRF, token, max_age=3600)
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    login: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF, "")
    if not csrf or not secrets.compare_digest(csrf, expected):
        return _login_page(request, next, "expired_form", status=403)
    client = request.client.host if request.client else "unknown"
    try:
        session = sessions_of(request).sign_in(login, password, client=client)
    except TooManyAttempts as exc:
        response = _login_page(request, next, "too_many", status=429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except AuthError:
        return _login_page(request, next, "wrong_login", status=401)
    target = _next(next)
    if session.user.role == "staff" and not target.startswith("/staff"):
        target = "/staff"
    response = RedirectResponse(target, status_code=303)
    assert session.token is not None
    set_cookie(request, response, SESSION_COOKIE, session.token)
    response.delete_cookie(LOGIN_CSRF, path="/")
    return response


@router.post("/logout")
def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    sessions = sessions_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    session = sessions.session_of(token)
    if session is not None and token is not None:
        check_csrf(session, csrf)
        sessions.sign_out(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def home(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    start: From = None,
    to: To = None,
    grain: str = "week",
    store_id: str | None = Query(default=None, max_length=200),
) -> Response:
    session = signed_in(request, DASHBOARD)
    t = translator(language(request))
    totals = overview(store=store)
    stores = store_names(store=store)
    context: dict[str, Any] = {
        "session": session, "o": totals, "stores": stores, "store_id": store_id or "",
        "grain": grain if grain in ("day", "week", "month") else "week", "error": None,
    }  # fmt: skip
    engine = analytics_engine(store, settings)
    present = last_day(engine=engine) if totals.events else None
    if present is None:
        return page(request, "home.html", {**context, "kpis": None})
    to = to or present
    start = start or to - timedelta(days=83)
    context.update({"from": start, "to": to})
    try:
        query = {"from": start, "to": to, "store_id": store_id or None}
        now = run_kpis(engine=engine, query=parse(KpiQuery, {**query, "grain": context["grain"]}))
        days = (to - start).days + 1
        before = {"from": start - timedelta(days=days), "to": start - timedelta(days=1)}
        then = run_kpis(engine=engine, query=parse(KpiQuery, {**query, **before}), periods=False)
        mix, mix_before = (
            channel_mix(engine=engine, query=parse(ChannelsQuery, span), timezone=settings.timezone)
            for span in ({"from": start, "to": to}, before)
        )
    except InvalidInput as exc:
        return page(
            request, "home.html", {**context, "kpis": None, "error": exc.message}, status_code=400
        )
    total = now.totals[0] if now.totals else None
    previous = then.totals[0] if then.totals else None
    context.update(
        kpis=_cards(
            total,
            previous,
            (mix.omnichannel_share(), mix_before.omnichannel_share()),
            (mix.o2o_lift, mix_before.o2o_lift),
        ),
        customers_chart=charts.active_by_channel(now.periods, t),
        revenue_chart=charts.revenue_split(now.periods, t),
    )
    return page(request, "home.html", context)


def _cards(
    now: Kpis | None,
    before: Kpis | None,
    omni: tuple[float | None, float | None],
    o2o: tuple[float | None, float | None],
) -> list[dict[str, Any]]:
    """The KPI cards: label key, value, its format, the change on the previous period."""

    def change(a: float | None, b: float | None) -> float | None:
        return (a - b) / b if a is not None and b else None

    def card(key: str, value: float | None, kind: str, was: float | None) -> dict[str, Any]:
        return {"key": key, "value": value, "kind": kind, "change": change(value, was)}

    def figure(key: str, kind: str) -> dict[str, Any]:
        was = getattr(before, key) if before is not None else None
        return card(f"kpi_{key}", getattr(now, key), kind, was)

    if now is None:
        return []
    return [
        figure("active_customers", "count"),
        figure("revenue_online", "yen"),
        figure("revenue_store", "yen"),
        figure("aov", "yen"),
        figure("repeat_rate", "rate"),
        card("kpi_omni", omni[0], "rate", omni[1]),
        card("kpi_o2o", o2o[0], "ratio", o2o[1]),
    ]
