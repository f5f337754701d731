"""Settings, read from the environment (prefix ``TSUNAGU_``) and the CLI's ``--data-dir``."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tsunagu.exceptions import InvalidInput


class Settings(BaseSettings):
    """Everything a tsunagu process needs to know before it opens the store."""

    model_config = SettingsConfigDict(env_prefix="TSUNAGU_", extra="ignore")

    data_dir: Path = Path("./tsunagu-data")
    """Directory holding the DuckDB database, the server lock file and rejects."""

    host: str = "127.0.0.1"
    """Address `tsunagu serve` binds to."""

    port: int = Field(default=8000, ge=1, le=65535)
    """Port `tsunagu serve` listens on."""

    commit_interval_ms: int = Field(default=5, ge=0, le=1000)
    """How long the collector's writer waits for more events before a group commit."""

    max_commit_events: int = Field(default=20_000, ge=1)
    """Upper bound of events written in one group commit."""

    memory_limit: str = "4GB"
    """DuckDB's memory budget; beyond it, large imports and queries spill to disk."""

    hold_sweep_seconds: float = Field(default=60, gt=0, le=3600)
    """How often the server marks click-and-collect holds past their time as expired."""

    segment_refresh_seconds: float = Field(default=10, gt=0, le=3600)
    """How often the server looks for segments to refresh: those with event rules as soon as
    events arrived since their last refresh."""

    segment_schedule_seconds: float = Field(default=3600, gt=0, le=7 * 86400)
    """How often every segment is refreshed, new events or not (windows move with time)."""

    log_format: Literal["json", "text"] = "json"
    """The server's logs: one JSON object a line (personal data masked either way)."""

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """The largest request body taken (the collector's are smaller: Segment's 500 KB); a larger
    one is refused before it is read."""

    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1024)
    """The largest file uploaded for import (PUT /v1/imports/...), written to disk as it comes."""

    timezone: str = "Asia/Tokyo"
    """Zone for times given without an offset (tills) and for display."""

    # -- sending (activation/sends.py, activation/channels/) ------------------------------------
    line_channel_access_token: str | None = None
    line_channel_secret: str | None = None
    """Checks the signature of LINE's webhook calls (POST /v1/line/webhook)."""
    line_api_base: str = "https://api.line.me"
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = True
    mail_from: str | None = None
    mail_from_name: str | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    push_api_base: str | None = None
    """An FCM HTTP v1 compatible endpoint (the provider's, or a gateway's)."""
    push_project: str = "tsunagu"
    push_token: str | None = None
    public_url: str | None = None
    """Where customers reach this server (unsubscribe links); default http://host:port."""
    quiet_hours: str = "21:00-09:00"
    """Local hours (in `timezone`) in which marketing waits for the morning; empty for none."""
    cap_channel_day: int = Field(default=2, ge=0)
    """Marketing messages a customer gets on one channel in 24 hours (0: no cap)."""
    cap_channel_week: int = Field(default=5, ge=0)
    cap_all_day: int = Field(default=3, ge=0)
    """... on every channel together in 24 hours (0: no cap)."""
    cap_all_week: int = Field(default=10, ge=0)
    global_control_share: float = Field(default=0.0, ge=0, lt=1)
    """A share of all customers who get no campaign at all (the long-run holdout)."""
    send_interval_seconds: float = Field(default=30, gt=0, le=3600)
    """How often the server sends what waited (quiet hours, a restart)."""
    journey_tick_seconds: float = Field(default=0.5, gt=0, le=3600)
    """How often the server takes in journeys' triggers and moves customers along when nothing
    arrives; a commit of new events wakes it at once."""
    stale_send_seconds: float = Field(default=120, gt=0)
    """A send left `sending` this long was cut off (a crash) and is delivered again."""

    @field_validator(
        "line_channel_access_token", "line_channel_secret", "smtp_password", "webhook_secret",
        "push_token",
    )  # fmt: skip
    @classmethod
    def _secret(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A secret is the provider's or one made for this install, never a placeholder left
        from an example (the demo sets none)."""
        if value is None:
            return None
        name = info.field_name
        if value.strip().lower() in PLACEHOLDERS:
            raise ValueError(f"{name}: a placeholder, not a secret; set the real one")
        if len(value.strip()) < 8:
            raise ValueError(f"{name}: too short for a secret (at least 8 characters)")
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        if value.strip() and quiet_hours(value) is None:
            raise ValueError(f"quiet_hours: {value!r} is not HH:MM-HH:MM (e.g. 21:00-09:00)")
        return value

    @property
    def database_path(self) -> Path:
        return self.data_dir / "tsunagu.duckdb"

    @property
    def server_file(self) -> Path:
        """Written by a running server: where it listens, so the CLI can talk to it."""
        return self.data_dir / "server.json"


PLACEHOLDERS = frozenset({
    "changeme", "change-me", "change_me", "changethis", "secret", "password", "passw0rd",
    "default", "example", "demo", "test", "testing", "xxxxxxxx", "your-secret", "your_secret",
    "yoursecret", "replace-me", "replaceme", "todo", "none", "null", "12345678", "123456789",
})  # fmt: skip
"""Values that examples and tutorials use for secrets: refused (see Settings._secret)."""

_HOURS = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def quiet_hours(text: str) -> tuple[int, int, int, int] | None:
    """(start hour, minute, end hour, minute) of `HH:MM-HH:MM`, or None if it is not that."""
    m = _HOURS.match(text)
    if not m:
        return None
    h1, m1, h2, m2 = map(int, m.groups())
    return (h1, m1, h2, m2) if max(h1, h2) <= 23 and max(m1, m2) <= 59 else None


@lru_cache(maxsize=8)
def _cached(data_dir: str | None) -> Settings:
    try:
        return Settings(data_dir=Path(data_dir)) if data_dir else Settings()
    except ValidationError as exc:
        raise settings_error(exc) from None


def settings_error(exc: ValidationError) -> InvalidInput:
    """The first bad setting, named as it is set (its environment variable), without its value
    (it may be a secret)."""
    first = exc.errors()[0]
    name = "TSUNAGU_" + "_".join(str(part) for part in first["loc"]).upper()
    reason = str(first["msg"]).removeprefix("Value error, ")
    reason = reason.split(": ", 1)[1] if reason.startswith(f"{first['loc'][0]}: ") else reason
    return InvalidInput(f"{name}: {reason}", field=name)


def get_settings(data_dir: str | Path | None = None) -> Settings:
    """Settings for `data_dir` (or the environment's / the default one)."""
    return _cached(str(data_dir) if data_dir else None)
