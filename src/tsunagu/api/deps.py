"""Dependencies routes share, as `Annotated` aliases."""

from __future__ import annotations

import dataclasses
import hmac
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from tsunagu.analytics.engine import Engine
from tsunagu.analytics.facts import fresh_engine
from tsunagu.config import Settings
from tsunagu.events.collector import Collector
from tsunagu.events.sources import SourceKeys
from tsunagu.exceptions import AuthError, Forbidden
from tsunagu.keys import ApiKey, KeyRing, Needs, Scope, allowed
from tsunagu.store import Store
from tsunagu.users import Session, Sessions

_bearer = HTTPBearer(auto_error=False, description="An API key from `tsunagu keys create`.")


# The dependencies are coroutines: a sync one would cost each request a trip to the thread
# pool and back for what takes microseconds.


async def get_store(request: Request) -> Store:
    return request.app.state.store


async def get_collector(request: Request) -> Collector:
    return request.app.state.collector


async def get_source_keys(request: Request) -> SourceKeys:
    return request.app.state.source_keys


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


StoreDep = Annotated[Store, Depends(get_store)]
CollectorDep = Annotated[Collector, Depends(get_collector)]
SourceKeysDep = Annotated[SourceKeys, Depends(get_source_keys)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def _key_ring(request: Request) -> KeyRing:
    return request.app.state.key_ring


SESSION_COOKIE = "tsunagu_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
_ROLE_SCOPE: dict[str, Scope] = {
    "admin": "admin",
    "marketer": "write",
    "analyst": "read",
    "staff": "pos",
}


def session_key(session: Session) -> ApiKey:
    """What a signed-in person may do through the API, as the key that would allow it."""
    user = session.user
    return ApiKey(
        key_id=f"user:{user.login}",
        name=user.login,
        scope=_ROLE_SCOPE[user.role],
        key_prefix="session",
        store_id=user.store_id,
    )


def _from_session(request: Request, sessions: Sessions, needs: Needs) -> ApiKey:
    session = sessions.session_of(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise AuthError(
            "API key missing: send it as 'Authorization: Bearer KEY' "
            "(create one with `tsunagu keys create NAME --scope read|admin|pos`), or sign in",
            field="Authorization",
        )
    if request.method not in _SAFE and not hmac.compare_digest(
        request.headers.get(CSRF_HEADER, ""), session.csrf
    ):
        raise Forbidden(f"{CSRF_HEADER}: missing or wrong (reload the page)", field=CSRF_HEADER)
    return allowed(session_key(session), needs)


async def _authenticated(
    request: Request, credentials: HTTPAuthorizationCredentials | None, needs: Needs
) -> ApiKey:
    """The bearer key, or else the session cookie of a signed-in person (whose changes must
    carry the session's CSRF token)."""
    ring, secret = _key_ring(request), credentials.credentials if credentials else None
    if secret is None and SESSION_COOKIE in request.cookies:
        sessions: Sessions = request.app.state.sessions
        if sessions.knows(request.cookies[SESSION_COOKIE]):
            return _from_session(request, sessions, needs)
        return await run_in_threadpool(_from_session, request, sessions, needs)
    if ring.knows(secret):
        return ring.authenticate(secret, needs=needs)
    return await run_in_threadpool(ring.authenticate, secret, needs=needs)  # reads the store


async def require_read(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    return await _authenticated(request, credentials, "read")


async def require_write(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    return await _authenticated(request, credentials, "write")


async def require_admin(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    return await _authenticated(request, credentials, "admin")


async def require_pos(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    return await _authenticated(request, credentials, "pos")


ReadKey = Annotated[ApiKey, Depends(require_read)]
PosKey = Annotated[ApiKey, Depends(require_pos)]
WriteKey = Annotated[ApiKey, Depends(require_write)]
AdminKey = Annotated[ApiKey, Depends(require_admin)]


def analytics_engine(store: Store, settings: Settings) -> Engine:
    """An engine over the analytics table brought up to date. Routes call it after their input
    is validated (a dependency would run first, and bad input could cost a rebuild)."""
    return fresh_engine(store=store, data_dir=settings.data_dir, timezone=settings.timezone)


def scratch_dir(settings: Settings) -> Path:
    """Where uploads wait while they are imported (the data dir's tmp/)."""
    path = settings.data_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def uploaded_answer(result: Any, file: str | None) -> dict[str, Any]:
    """An import's result for the client that uploaded the file: the rejects file's rows in
    `rejects` (the file itself stays on the server only until the upload is cleaned up)."""
    answer = dataclasses.asdict(result)
    answer["file"] = file
    if result.rejects_file:
        answer["rejects"] = Path(result.rejects_file).read_text(encoding="utf-8")
        answer["rejects_file"] = None
    return answer
