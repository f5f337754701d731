"""GET /healthz (the process answers) and GET /readyz (it can take work): both open, for load
balancers, orchestrators and `make demo`; neither says anything about customers."""

from __future__ import annotations

import shutil
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tsunagu.api.deps import StoreDep

router = APIRouter(tags=["health"])

MIN_FREE_BYTES = 256 * 1024 * 1024
"""Below this much free disk in the data dir, commits may fail: not ready."""

_WORKERS = ("collector", "scheduler", "segment_refresher", "hold_sweeper")


@router.get("/healthz")
def healthz(store: StoreDep) -> dict[str, object]:
    return {"status": "ok", "schema_version": store.schema_version}


@router.get(
    "/readyz",
    summary="Whether the server can take events and requests now",
    responses={503: {"description": "not ready: `checks` says what is not"}},
)
def readyz(request: Request) -> JSONResponse:
    """200 when the store answers, the event writer and the background workers run and the data
    dir has room; else 503. `checks` has each, true or the reason it is not."""
    state = request.app.state
    checks: dict[str, Any] = {}
    store = getattr(state, "store", None)
    try:
        checks["store"] = store is not None and store.query("SELECT 1") == [(1,)]
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; it is reported
        checks["store"] = f"{type(exc).__name__}: {exc}"
    for name in _WORKERS:
        worker = getattr(state, name, None)
        checks[name] = True if worker is not None and worker.alive else "not running"
    free = shutil.disk_usage(state.settings.data_dir).free if store is not None else 0
    checks["disk"] = True if free >= MIN_FREE_BYTES else f"{free // 2**20} MB free"
    ready = all(value is True for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )
