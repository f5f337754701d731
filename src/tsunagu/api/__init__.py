"""FastAPI shell: routers that translate HTTP to domain calls and back.

`create_app` is imported on first use: the pages import `tsunagu.api.deps`, and the app imports
the pages, so loading the app with the package would make importing a page module first a
circular import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tsunagu.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from tsunagu.api.app import create_app

        return create_app
    raise AttributeError(f"module 'tsunagu.api' has no attribute {name!r}")
