"""People who sign in to the screens: a login, a role and, for store staff, their store.

Roles: `admin` (everything), `marketer` (reads, and builds segments, journeys and campaigns),
`analyst` (reads only), `staff` (the store-staff screen of their own store only).

Passwords are kept as Argon2id hashes (argon2-cffi). A session is a random token in an HttpOnly
cookie, kept as its SHA-256 with a CSRF token of its own that every form and state-changing call
must carry. Failed sign-ins are limited per login and per client address.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tsunagu.exceptions import AuthError, Conflict, InvalidInput, NotFound, TooManyAttempts
from tsunagu.store import Store, utcnow

Role = Literal["admin", "marketer", "analyst", "staff"]
ROLES: tuple[str, ...] = ("admin", "marketer", "analyst", "staff")
MIN_PASSWORD = 8
SESSION_HOURS = 12
FAILURES_PER_LOGIN = 5
FAILURES_PER_CLIENT = 20
FAILURE_WINDOW_S = 15 * 60

_hasher = PasswordHasher()
_NOBODY = _hasher.hash(secrets.token_hex(16))
"""Checked against when the login is unknown, so that an unknown login takes as long."""


@dataclass(frozen=True, slots=True)
class User:
    login: str
    role: Role
    store_id: str | None = None


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    expires_at: datetime
    token: str | None = None
    """The cookie's value: only in the answer to a sign-in (the store keeps its hash)."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def clean_login(login: str) -> str:
    """A login as typed, full-width folded and lower-cased (`ＹＡＭＡＤＡ` is `yamada`)."""
    return unicodedata.normalize("NFKC", login).strip().lower()


def create_user(
    *, store: Store, login: str, role: str, password: str, store_id: str | None = None
) -> User:
    login = clean_login(login)
    if not login or len(login) > 100 or any(c.isspace() for c in login):
        raise InvalidInput("login: 1 to 100 characters, no spaces", field="login")
    if role not in ROLES:
        raise InvalidInput(f"role: must be one of {', '.join(ROLES)}", field="role")
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"password: at least {MIN_PASSWORD} characters", field="password")
    if role == "staff" and not store_id:
        raise InvalidInput("store: store staff belong to a store (--store ID)", field="store_id")
    if role != "staff" and store_id:
        raise InvalidInput("store: only store staff belong to a store", field="store_id")
    if store_id and not store.query("SELECT 1 FROM stores WHERE store_id = ?", [store_id]):
        raise InvalidInput(
            f"store: no store {store_id!r} (import the stores first)", field="store_id"
        )
    hashed = _hasher.hash(password)
    with store.transaction() as cur:
        if cur.execute("SELECT 1 FROM users WHERE login = ?", [login]).fetchall():
            raise Conflict(f"login: {login} exists already", field="login")
        cur.execute(
            "INSERT INTO users VALUES (?, ?, ?, ?, ?, NULL)",
            [login, role, store_id, hashed, utcnow()],
        )
    return User(login, cast(Role, role), store_id)


def list_users(*, store: Store) -> list[User]:
    return [
        User(login, role, shop)
        for login, role, shop in store.query(
            "SELECT login, role, store_id FROM users WHERE disabled_at IS NULL ORDER BY login"
        )
    ]


def disable_user(*, store: Store, login: str) -> None:
    """The user can no longer sign in, and their sessions end."""
    login = clean_login(login)
    with store.transaction() as cur:
        if not cur.execute(
            "SELECT 1 FROM users WHERE login = ? AND disabled_at IS NULL", [login]
        ).fetchall():
            raise NotFound(f"login: no user {login}", field="login")
        cur.execute("UPDATE users SET disabled_at = ? WHERE login = ?", [utcnow(), login])
        cur.execute("DELETE FROM web_sessions WHERE login = ?", [login])


class _Failures:
    """Failed sign-ins in the last `window` seconds, per key (a login, a client address)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._at: dict[str, deque[float]] = {}

    def wait(self, key: str) -> int:
        """Seconds until `key` may try again: 0 if it may now."""
        recent = self._recent(key)
        if len(recent) < self.limit:
            return 0
        return max(1, int(recent[0] + self.window - self.clock()) + 1)

    def add(self, key: str) -> None:
        self._recent(key).append(self.clock())

    def clear(self, key: str) -> None:
        self._at.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        recent = self._at.setdefault(key, deque())
        while recent and recent[0] <= self.clock() - self.window:
            recent.popleft()
        if not recent and len(self._at) > 10_000:  # forget the quiet ones
            self._at = {k: v for k, v in self._at.items() if v}
            recent = self._at.setdefault(key, deque())
        return recent


class Sessions:
    """Sign-in, sign-out and the session behind a cookie, for one server process (which owns
    the store, so what it caches cannot change behind it)."""

    def __init__(
        self,
        store: Store,
        *,
        hours: float = SESSION_HOURS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.lifetime = store, timedelta(hours=hours)
        self._lock = threading.Lock()
        self._by_login = _Failures(FAILURES_PER_LOGIN, FAILURE_WINDOW_S, clock)
        self._by_client = _Failures(FAILURES_PER_CLIENT, FAILURE_WINDOW_S, clock)
        self._cache: dict[str, Session] = {}

    def sign_in(self, login: str, password: str, *, client: str) -> Session:
        """A new session, or AuthError (wrong login or password, told apart by no one) or
        TooManyAttempts."""
        login = clean_login(login)
        with self._lock:
            wait = max(self._by_login.wait(login), self._by_client.wait(client))
        if wait:
            raise TooManyAttempts(
                f"login: too many failed sign-ins; try again in {wait} s",
                field="login",
                retry_after=wait,
            )
        rows = self.store.query(
            "SELECT role, store_id, password_hash FROM users "
            "WHERE login = ? AND disabled_at IS NULL",
            [login],
        )
        try:
            _hasher.verify(rows[0][2] if rows else _NOBODY, password)
            ok = bool(rows)
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:
            with self._lock:
                self._by_login.add(login)
                self._by_client.add(client)
            raise AuthError("login: wrong login or password", field="login")
        with self._lock:
            self._by_login.clear(login)
        role, store_id, hashed = rows[0]
        token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(24), utcnow()
        with self.store.transaction() as cur:
            if _hasher.check_needs_rehash(hashed):  # the library's parameters were raised
                cur.execute(
                    "UPDATE users SET password_hash = ? WHERE login = ?",
                    [_hasher.hash(password), login],
                )
            cur.execute("DELETE FROM web_sessions WHERE expires_at < ?", [now])
            cur.execute(
                "INSERT INTO web_sessions VALUES (?, ?, ?, ?, ?)",
                [_token_hash(token), login, csrf, now, now + self.lifetime],
            )
        return Session(User(login, role, store_id), csrf, now + self.lifetime, token)

    def session_of(self, token: str | None) -> Session | None:
        """The live session behind a cookie's token, or None."""
        if not token or len(token) > 200:
            return None
        key = _token_hash(token)
        session = self._cache.get(key)
        if session is None:
            rows = self.store.query(
                "SELECT u.login, u.role, u.store_id, s.csrf, s.expires_at FROM web_sessions s "
                "JOIN users u USING (login) WHERE s.token_hash = ? AND u.disabled_at IS NULL",
                [key],
            )
            if not rows:
                return None
            login, role, store_id, csrf, expires = rows[0]
            session = Session(User(login, role, store_id), csrf, expires)
            with self._lock:
                self._cache[key] = session
        if session.expires_at <= utcnow():
            self.sign_out(token)
            return None
        return session

    def knows(self, token: str | None) -> bool:
        """Whether `session_of` can answer without reading or writing the store."""
        if not token or len(token) > 200:
            return True
        cached = self._cache.get(_token_hash(token))
        return cached is not None and cached.expires_at > utcnow()

    def sign_out(self, token: str) -> None:
        key = _token_hash(token)
        with self._lock:
            self._cache.pop(key, None)
        with self.store.transaction() as cur:
            cur.execute("DELETE FROM web_sessions WHERE token_hash = ?", [key])

    def forget(self, login: str) -> None:
        """Drop what is cached of `login`'s sessions (after `disable_user`)."""
        login = clean_login(login)
        with self._lock:
            self._cache = {k: s for k, s in self._cache.items() if s.user.login != login}
