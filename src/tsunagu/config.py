"""Settings, read from the environment (prefix ``TSUNAGU_``) and the CLI's ``--data-dir``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    timezone: str = "Asia/Tokyo"
    """Zone for times given without an offset (tills) and for display."""

    @property
    def database_path(self) -> Path:
        return self.data_dir / "tsunagu.duckdb"

    @property
    def server_file(self) -> Path:
        """Written by a running server: where it listens, so the CLI can talk to it."""
        return self.data_dir / "server.json"


@lru_cache(maxsize=8)
def _cached(data_dir: str | None) -> Settings:
    return Settings(data_dir=Path(data_dir)) if data_dir else Settings()


def get_settings(data_dir: str | Path | None = None) -> Settings:
    """Settings for `data_dir` (or the environment's / the default one)."""
    return _cached(str(data_dir) if data_dir else None)
