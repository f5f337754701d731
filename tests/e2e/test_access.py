"""Who may do what: every operation in the OpenAPI schema and every page, with every kind of
credential, against the table below. A route that is not in the table fails the test, so a new
one must be given its level here.

Credentials: none; a wrong key; a source's write key (it may only send events), sent as HTTP
basic as Segment's clients send it and as a bearer key; read, admin and POS keys; a signed-in
admin, marketer, analyst and store staff; and staff of another store. "ok" means the request got
past the access check (whatever the answer to its made-up input: 2xx, 400, 404, 409, 422).
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import serve_app
from tsunagu.api import create_app
from tsunagu.catalog.products import StoreWrite, put_store
from tsunagu.config import Settings
from tsunagu.events.normalize import normalize
from tsunagu.events.sources import create_source
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.keys import create_key
from tsunagu.store import Store, utcnow
from tsunagu.users import create_user

KEYS = ("none", "wrong", "write_basic", "write_bearer", "read", "admin", "pos")
PEOPLE = ("u_admin", "u_marketer", "u_analyst", "u_staff", "u_staff_other")
CREDENTIALS = KEYS + PEOPLE
NOBODY = ("none", "wrong", "write_basic", "write_bearer")

# Level → credentials that get past the check; the others get 401 if they carry nothing the
# API knows (NOBODY) and 403 if they are known but not enough.
ALLOWED: dict[str, set[str]] = {
    "open": set(CREDENTIALS),
    "collector": {"write_basic"},
    "read": {"read", "admin", "u_admin", "u_marketer", "u_analyst"},
    "write": {"admin", "u_admin", "u_marketer"},
    "admin": {"admin", "u_admin"},
    "pos": {"pos", "admin", "u_admin", "u_staff", "u_staff_other"},
    "signed": set(),  # LINE's webhook: its signature, not a key (all 401 without it)
}

API: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "open",
    ("GET", "/readyz"): "open",
    ("GET", "/metrics"): "read",
    **{
        ("POST", f"/v1/{p}"): "collector"
        for p in (
            "batch",
            "track",
            "t",
            "identify",
            "i",
            "page",
            "p",
            "screen",
            "s",
            "group",
            "g",
            "alias",
            "a",
            "b",
        )
    },  # fmt: skip
    ("POST", "/v1/m"): "open",  # the browser library's own counters: nothing stored
    ("POST", "/v1/imports/{kind}"): "admin",
    ("PUT", "/v1/imports/{kind}/{filename}"): "admin",
    ("GET", "/v1/sources"): "admin",
    ("POST", "/v1/sources"): "admin",
    ("PUT", "/v1/sources/{name}/origins"): "admin",
    ("GET", "/v1/keys"): "admin",
    ("POST", "/v1/keys"): "admin",
    ("POST", "/v1/keys/{key_id}/revoke"): "admin",
    ("POST", "/v1/keys/{key_id}/rotate"): "admin",
    ("GET", "/v1/status"): "read",
    ("POST", "/v1/backup"): "admin",
    ("GET", "/v1/profiles/lookup"): "read",
    ("GET", "/v1/profiles/{profile_id}/timeline"): "read",
    ("POST", "/v1/profiles/{profile_id}/split"): "admin",
    ("DELETE", "/v1/profiles/{profile_id}"): "admin",
    ("GET", "/v1/profiles/{profile_id}"): "read",
    ("POST", "/v1/analytics/funnel"): "read",
    ("POST", "/v1/analytics/retention"): "read",
    ("POST", "/v1/analytics/paths"): "read",
    ("GET", "/v1/analytics/channels"): "read",
    ("GET", "/v1/analytics/kpis"): "read",
    ("POST", "/v1/analytics/ltv"): "write",
    ("POST", "/v1/analytics/ltv/evaluate"): "read",
    ("GET", "/v1/analytics/fans"): "read",
    ("POST", "/v1/analytics/fans/compute"): "write",
    ("GET", "/v1/analytics/assortment"): "read",
    ("GET", "/v1/products"): "read",
    ("GET", "/v1/products/{sku}"): "read",
    ("PUT", "/v1/products/{sku}"): "admin",
    ("GET", "/v1/stores"): "read",
    ("GET", "/v1/stores/{store_id}"): "read",
    ("PUT", "/v1/stores/{store_id}"): "admin",
    ("POST", "/v1/inventory"): "admin",
    ("GET", "/v1/stores/{store_id}/stock"): "read",
    ("GET", "/v1/inventory/availability"): "read",
    ("POST", "/v1/reservations"): "admin",
    ("GET", "/v1/reservations/{reservation_id}"): "read",
    ("POST", "/v1/reservations/{reservation_id}/pickup"): "admin",
    ("POST", "/v1/reservations/{reservation_id}/cancel"): "admin",
    ("GET", "/v1/profiles/{profile_id}/favourites/availability"): "read",
    ("GET", "/v1/profiles/{profile_id}/recommendations"): "read",
    ("GET", "/v1/clienteling"): "read",
    ("POST", "/v1/segments/preview"): "read",
    ("GET", "/v1/segments"): "read",
    ("POST", "/v1/segments"): "write",
    ("GET", "/v1/segments/{segment_id}"): "read",
    ("POST", "/v1/segments/{segment_id}/refresh"): "write",
    ("GET", "/v1/segments/{segment_id}/members"): "read",
    ("POST", "/v1/campaigns"): "write",
    ("GET", "/v1/campaigns/{campaign_id}"): "read",
    ("POST", "/v1/campaigns/{campaign_id}/assignments"): "write",
    ("GET", "/v1/campaigns/{campaign_id}/report"): "read",
    ("POST", "/v1/campaigns/{campaign_id}/coupons"): "write",
    ("POST", "/v1/campaigns/{campaign_id}/send"): "write",
    ("GET", "/v1/coupons/{code}"): "pos",
    ("POST", "/v1/coupons/{code}/redeem"): "pos",
    ("POST", "/v1/coupons/{code}/void"): "pos",
    ("POST", "/v1/line/webhook"): "signed",
    ("POST", "/v1/line/link-nonce"): "admin",
    ("GET", "/v1/open"): "open",  # a sent message's pixel: its token is the check
    ("GET", "/v1/unsubscribe"): "open",  # the link in a message: its token is the check
    ("POST", "/v1/unsubscribe"): "open",
    ("GET", "/v1/journeys"): "read",
    ("POST", "/v1/journeys"): "write",
    ("GET", "/v1/journeys/templates"): "read",
    ("GET", "/v1/journeys/{journey_id}"): "read",
    ("POST", "/v1/journeys/{journey_id}/pause"): "write",
    ("POST", "/v1/journeys/{journey_id}/resume"): "write",
    ("GET", "/v1/users"): "admin",
    ("POST", "/v1/users"): "admin",
    ("DELETE", "/v1/users/{login}"): "admin",
}
STORE_BOUND = {("POST", "/v1/coupons/{code}/redeem"), ("POST", "/v1/coupons/{code}/void")}
"""Staff act for their own store only: the coupon here was redeemed at S001."""

# Pages: who sees them. Not signed in (keys do not sign anyone in) → the sign-in page; store
# staff on a page that is not theirs → their screen; anyone else not allowed → 403.
DASHBOARD = {"u_admin", "u_marketer", "u_analyst"}
PAGES: dict[tuple[str, str], set[str]] = {
    ("GET", "/login"): set(CREDENTIALS),
    ("GET", "/static/plotly.min.js"): set(CREDENTIALS),
    ("GET", "/"): DASHBOARD,
    ("GET", "/segments"): DASHBOARD,
    ("GET", "/journeys"): DASHBOARD,
    ("POST", "/journeys/{journey_id}/pause"): {"u_admin", "u_marketer"},
    ("POST", "/journeys/{journey_id}/resume"): {"u_admin", "u_marketer"},
    ("GET", "/campaigns"): DASHBOARD,
    ("GET", "/campaigns/{campaign_id}"): DASHBOARD,
    ("GET", "/coupons"): DASHBOARD,
    ("GET", "/analytics/funnel"): DASHBOARD,
    ("GET", "/analytics/retention"): DASHBOARD,
    ("GET", "/analytics/paths"): DASHBOARD,
    ("GET", "/analytics/channels"): DASHBOARD,
    ("GET", "/analytics/fans"): DASHBOARD,
    ("GET", "/analytics/ltv"): DASHBOARD,
    ("GET", "/analytics/assortment"): DASHBOARD,
    ("GET", "/profiles"): DASHBOARD,
    ("GET", "/profiles/{profile_id}"): DASHBOARD,
    ("POST", "/profiles/{profile_id}/erase"): {"u_admin"},
    ("GET", "/staff"): {"u_admin", "u_staff", "u_staff_other"},
    ("GET", "/staff?store_id=S001"): {"u_admin", "u_staff", "u_staff_other"},
    ("POST", "/staff/redeem"): {"u_admin", "u_staff", "u_staff_other"},
    ("POST", "/staff/pickup"): {"u_admin", "u_staff", "u_staff_other"},
}
PAGE_STORE_BOUND = {
    ("GET", "/staff?store_id=S001"), ("POST", "/staff/redeem"), ("POST", "/staff/pickup")
}  # fmt: skip
"""They ask for S001's screen or act for S001: staff of S002 may not."""
PAGE_FORMS = {
    "/staff/redeem": {"code": "NOPE", "receipt_id": "R1", "store_id": "S001"},
    "/staff/pickup": {"reservation_id": "nope", "store_id": "S001"},
    "/profiles/{profile_id}/erase": {"confirm": "nobody"},
}


@dataclass
class World:
    url: str
    headers: dict[str, dict[str, str]]
    csrf: dict[str, str]
    ids: dict[str, str]
    schema: dict[str, Any]
    page_paths: set[tuple[str, str]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("access") / "data",
        line_channel_secret="s" * 32,
        quiet_hours="",
    )
    with Store(settings.database_path) as store:
        for store_id in ("S001", "S002"):
            put_store(store=store, store_id=store_id, body=StoreWrite(name=f"店舗{store_id}"))
        now = utcnow()
        store.insert_events(
            [normalize({"type": "identify", "userId": "M1", "traits": {"email": "m1@example.jp"},
                        "timestamp": now.isoformat()}, received_at=now, source="t")]
        )  # fmt: skip
        build_graph(store=store, rules=IdentityRules())
        (profile_id,) = store.query("SELECT DISTINCT profile_id FROM identity_nodes")[0]
        _, write_key = create_source(store=store, name="web")
        secrets = {s: create_key(store=store, name=s, scope=s)[1] for s in ("read", "admin", "pos")}
        people = {
            "u_admin": ("admin", None), "u_marketer": ("marketer", None),
            "u_analyst": ("analyst", None), "u_staff": ("staff", "S001"),
            "u_staff_other": ("staff", "S002"),
        }  # fmt: skip
        for login, (role, store_id) in people.items():
            create_user(
                store=store, login=login, role=role, password="pw-" + login, store_id=store_id
            )
        app = create_app(settings, store=store)
        with serve_app(app) as url:
            admin = {"Authorization": f"Bearer {secrets['admin']}"}
            campaign = httpx.post(url + "/v1/campaigns", headers=admin, json={
                "name": "春のクーポン", "channel": "line", "control_share": 0.0,
                "coupon": {"value_yen": 500, "valid_from": "2020-01-01", "valid_to": "2099-12-31",
                           "stores": ["S001"]},
            }).json()  # fmt: skip
            issued = httpx.post(
                url + f"/v1/campaigns/{campaign['campaign_id']}/coupons",
                headers=admin,
                json={"profile_ids": [profile_id]},
            )
            assert issued.status_code == 200, issued.text
            code = issued.json()["coupons"][0]["code"]
            redeemed = httpx.post(url + f"/v1/coupons/{code}/redeem", headers=admin,
                                  json={"store_id": "S001", "receipt_id": "R-first"})  # fmt: skip
            assert redeemed.status_code == 200, redeemed.text
            basic = base64.b64encode(f"{write_key}:".encode()).decode()
            headers = {
                "none": {},
                "wrong": {"Authorization": "Bearer tsk_" + "x" * 43},
                "write_basic": {"Authorization": f"Basic {basic}"},
                "write_bearer": {"Authorization": f"Bearer {write_key}"},
                **{s: {"Authorization": f"Bearer {secret}"} for s, secret in secrets.items()},
            }
            csrf = {}
            for login in people:
                session = app.state.sessions.sign_in(login, "pw-" + login, client="test")
                headers[login] = {"Cookie": f"tsunagu_session={session.token}"}
                csrf[login] = session.csrf
            yield World(
                url=url,
                headers=headers,
                csrf=csrf,
                ids={
                    "code": code,
                    "campaign_id": campaign["campaign_id"],
                    "profile_id": profile_id,
                },
                schema=httpx.get(url + "/openapi.json").json(),
                page_paths=_page_paths(app),
            )


def _page_paths(app: Any) -> set[tuple[str, str]]:
    """The routes outside the schema: pages (the static files' mount and /docs aside)."""
    documented = {path for path in app.openapi()["paths"]}
    found = set()
    for route in app.router.routes:
        for sub in getattr(getattr(route, "original_router", None), "routes", [route]):
            path, methods = getattr(sub, "path", None), getattr(sub, "methods", None) or set()
            if path and path not in documented and not path.startswith(("/docs", "/openapi")):
                found |= {(m, path) for m in methods if m != "HEAD"}
    return found


def _fill(path: str, ids: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "nope"), path)


def _body(method: str, path: str, who: str) -> dict[str, Any]:
    if path.endswith("/redeem"):
        return {"json": {"store_id": "S001", "receipt_id": f"R-{who}"}}
    if path.endswith("/void"):
        return {"json": {"receipt_id": "R-first"}}
    if path.startswith("/v1/") and path.split("/")[2] in ("batch", "b"):
        return {"json": {"batch": [_message()]}}
    if method in ("POST", "PUT"):
        return {"json": _message() if "collector" == API.get((method, path)) else {}}
    return {}


def _message() -> dict[str, Any]:
    return {"type": "track", "event": "Access Checked", "anonymousId": "a1",
            "messageId": uuid.uuid4().hex}  # fmt: skip


def _outcome(response: httpx.Response) -> str:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code in (401, 403):
        return str(response.status_code)
    location = response.headers.get("location", "")
    if response.status_code == 303 and location.startswith("/login"):
        return "login"
    if response.status_code == 303 and location == "/staff":
        return "staff"
    return "ok"


def _expected_api(op: tuple[str, str], who: str) -> str:
    level = API[op]
    if who in ALLOWED[level]:
        if who == "u_staff_other" and op in STORE_BOUND:
            return "403"
        return "ok"
    return "401" if who in NOBODY or level in ("collector", "signed") else "403"


def _expected_page(op: tuple[str, str], who: str) -> str:
    allowed = PAGES[op]
    if who in allowed:
        return "403" if who == "u_staff_other" and op in PAGE_STORE_BOUND else "ok"
    if who in KEYS:
        return "login"
    return "staff" if who.startswith("u_staff") else "403"


def test_the_table_covers_every_operation_and_page(world: World) -> None:
    documented = {
        (method.upper(), path) for path, ops in world.schema["paths"].items() for method in ops
    }
    assert documented == set(API), (documented - set(API), set(API) - documented)
    pages = {(method, path.split("?")[0]) for method, path in PAGES}
    assert world.page_paths == pages | {("POST", "/login"), ("POST", "/logout")}


def test_every_operation_with_every_credential(world: World) -> None:
    got: dict[tuple[str, str, str], str] = {}
    want: dict[tuple[str, str, str], str] = {}
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=60) as client:
        for method, path in API:
            for who in CREDENTIALS:
                headers = dict(world.headers[who])
                if who in world.csrf and method != "GET":
                    headers["X-CSRF-Token"] = world.csrf[who]
                if path.endswith("/void"):  # each void finds the coupon redeemed at S001
                    again = client.post(
                        f"/v1/coupons/{world.ids['code']}/redeem",
                        headers=world.headers["admin"],
                        json={"store_id": "S001", "receipt_id": "R-first"},
                    )
                    assert again.status_code == 200, again.text
                response = client.request(
                    method, _fill(path, world.ids), headers=headers, **_body(method, path, who)
                )
                got[(method, path, who)] = _outcome(response)
                want[(method, path, who)] = _expected_api((method, path), who)
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not wrong, wrong


def test_every_page_with_every_credential(world: World) -> None:
    got: dict[tuple[str, str, str], str] = {}
    want: dict[tuple[str, str, str], str] = {}
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=60) as client:
        for method, path in PAGES:
            for who in CREDENTIALS:
                form = dict(PAGE_FORMS.get(path, {}))
                if method == "POST":
                    form["csrf"] = world.csrf.get(who, "")
                response = client.request(
                    method,
                    _fill(path, world.ids),
                    headers=world.headers[who],
                    data=form if method == "POST" else None,
                )
                got[(method, path, who)] = _outcome(response)
                want[(method, path, who)] = _expected_page((method, path), who)
    wrong = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not wrong, wrong


def test_a_session_s_change_without_its_csrf_token_is_refused(world: World) -> None:
    for login in ("u_admin", "u_marketer"):
        response = httpx.post(
            world.url + "/v1/segments/preview", headers=world.headers[login], json={}
        )
        assert response.status_code == 403
        assert response.json()["error"]["field"] == "X-CSRF-Token"
