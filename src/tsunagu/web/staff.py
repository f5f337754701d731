"""The store-staff screen (`/staff`), for a tablet at the counter: look the customer up by
what they show or say (`q`: member card, the app's QR code, phone, e-mail; the camera reads a
code where the browser has a barcode detector), then see who they are, what they did online,
what this store has of their favourites and to recommend, their coupons with a redeem button
(the till's redemption) and their holds to hand over.

Staff see their own store only; an admin picks the store.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tsunagu.activation import coupons
from tsunagu.api.deps import SettingsDep, StoreDep, analytics_engine
from tsunagu.api.errors import status_of
from tsunagu.catalog.overview import store_names
from tsunagu.catalog.reservations import get_reservation, pick_up
from tsunagu.clienteling import clienteling
from tsunagu.config import Settings
from tsunagu.exceptions import NotFound, TsunaguError
from tsunagu.identity.rules import load_rules
from tsunagu.store import Store
from tsunagu.users import Session
from tsunagu.web.session import STAFF, Away, check_csrf, page, signed_in

router = APIRouter(include_in_schema=False)


def _store_of(request: Request, session: Session, asked: str | None, stores: list[Any]) -> str:
    """Staff's own store; an admin's pick (or the first store)."""
    if session.user.store_id is not None:
        if asked and asked != session.user.store_id:
            raise Away(page(request, "denied.html", {"session": session}, status_code=403))
        return session.user.store_id
    known = [str(s) for s, _ in stores]
    if asked is not None and asked in known:
        return asked
    return known[0] if known else ""


@router.get("/staff", response_class=HTMLResponse)
def staff(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    q: str | None = Query(default=None, max_length=1000),
    store_id: str | None = Query(default=None, max_length=200),
    done: str | None = Query(default=None, max_length=40),
) -> Response:
    session = signed_in(request, STAFF)
    return _screen(request, store, settings, session, store_id, q or "", done=done)


def _screen(
    request: Request,
    store: Store,
    settings: Settings,
    session: Session,
    asked: str | None,
    q: str,
    *,
    done: str | None = None,
    error: TsunaguError | None = None,
) -> Response:
    """The screen for the customer `q` at the viewer's store, with what was just done or the
    reason it was refused."""
    stores = store_names(store=store)
    here = _store_of(request, session, asked, stores)
    view = None
    status = status_of(error) if error else 200
    if q.strip() and here:
        try:
            analytics_engine(store, settings)
            view = clienteling(
                store=store, rules=load_rules(settings.data_dir), data_dir=settings.data_dir,
                store_id=here, q=q, timezone=settings.timezone,
            )  # fmt: skip
        except TsunaguError as exc:
            error, status = exc, status_of(exc)
    context = {
        "session": session, "nav": "staff", "stores": stores, "store_id": here,
        "store_name": dict(stores).get(here) or here, "q": q, "view": view, "error": error,
        "done": done,
    }  # fmt: skip
    return page(request, "staff.html", context, status_code=status)


def _acting(request: Request, store: Store, store_id: str, csrf: str) -> tuple[Session, str]:
    """Who sent a form of the screen (its CSRF token checked) and the store they act for."""
    session = signed_in(request, STAFF)
    check_csrf(session, csrf)
    return session, _store_of(request, session, store_id, store_names(store=store))


def _back(q: str, store_id: str, done: str) -> RedirectResponse:
    query = urlencode({"q": q, "store_id": store_id, "done": done})
    return RedirectResponse(f"/staff?{query}", status_code=303)


@router.post("/staff/redeem", response_class=HTMLResponse)
def staff_redeem(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    code: Annotated[str, Form(max_length=100)],
    receipt_id: Annotated[str, Form(max_length=200)],
    store_id: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    amount_yen: Annotated[int | None, Form(ge=0, le=100_000_000)] = None,
    q: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    session, here = _acting(request, store, store_id, csrf)
    try:
        coupons.redeem(
            store=store, code=code, store_id=here, receipt_id=receipt_id,
            amount_yen=amount_yen, timezone=settings.timezone, rules=load_rules(settings.data_dir),
        )  # fmt: skip
    except TsunaguError as exc:
        return _screen(request, store, settings, session, here, q, error=exc)
    return _back(q, here, "redeemed")


@router.post("/staff/pickup", response_class=HTMLResponse)
def staff_pickup(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    reservation_id: Annotated[str, Form(max_length=200)],
    store_id: Annotated[str, Form(max_length=200)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    q: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    session, here = _acting(request, store, store_id, csrf)
    try:
        if get_reservation(store=store, reservation_id=reservation_id).store_id != here:
            raise NotFound(
                f"reservation_id: no hold {reservation_id} at this store", field="reservation_id"
            )
        pick_up(store=store, reservation_id=reservation_id)
    except TsunaguError as exc:
        return _screen(request, store, settings, session, here, q, error=exc)
    return _back(q, here, "picked_up")
