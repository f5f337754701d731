"""FastAPI shell: routers that translate HTTP to domain calls and back."""

from __future__ import annotations

from tsunagu.api.app import create_app

__all__ = ["create_app"]
