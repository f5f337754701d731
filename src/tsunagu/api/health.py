"""GET /healthz: open, for load balancers and `make demo`."""

from __future__ import annotations

from fastapi import APIRouter

from tsunagu.api.deps import StoreDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(store: StoreDep) -> dict[str, object]:
    return {"status": "ok", "schema_version": store.schema_version}
