"""Administration over HTTP: imports, sources, keys and the store's overview.

The CLI uses these when a server holds the store (DuckDB has one writer process).
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from tsunagu.api.deps import AdminKey, ReadKey, SettingsDep, StoreDep, scratch_dir, uploaded_answer
from tsunagu.catalog.overview import overview
from tsunagu.events.sources import create_source, list_sources, set_origins
from tsunagu.exceptions import InvalidInput
from tsunagu.imports import KINDS, run_import
from tsunagu.keys import create_key, duration, list_keys, revoke_key, rotate_key
from tsunagu.store import utcnow
from tsunagu.store.backup import backup

router = APIRouter(prefix="/v1", tags=["admin"])


class ImportRequest(BaseModel):
    path: str = Field(description="A file on the server's machine.")
    encoding: str | None = None
    store_id: str | None = None


class SourceCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    origins: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="web origins whose browsers may send with the key: https://shop.example.jp, "
        "https://*.example.jp, or * (any)",
    )


class SourceOrigins(BaseModel):
    origins: list[str] = Field(max_length=100)


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scope: str = Field(pattern="^(read|admin|pos)$")
    expires_in: str | None = Field(
        default=None, max_length=20, description="e.g. 90d, 1y; none: the key does not expire"
    )


class BackupRequest(BaseModel):
    dir: str = Field(
        min_length=1,
        max_length=4096,
        description="A new or empty directory on the server's machine, outside the data dir",
    )


class KeyRotate(BaseModel):
    grace: str = Field(
        default="24h",
        max_length=20,
        description="how long the old key still works (e.g. 24h, 7d; 0: not at all)",
    )


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(KINDS)}", field="kind")


@router.post("/imports/{kind}", summary="Import a file that is on the server's machine")
def import_path(
    kind: str, body: ImportRequest, store: StoreDep, settings: SettingsDep, _: AdminKey
) -> dict[str, Any]:
    _check_kind(kind)
    result = run_import(
        store=store,
        kind=kind,
        path=Path(body.path),
        encoding=body.encoding,
        store_id=body.store_id,
        timezone=settings.timezone,
    )
    return dataclasses.asdict(result)


@router.put("/imports/{kind}/{filename}", summary="Upload a file and import it")
async def import_upload(
    kind: str,
    filename: str,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    _: AdminKey,
    encoding: str | None = None,
    store_id: str | None = None,
) -> dict[str, Any]:
    """The body is the file. Rejected rows come back in `rejects` (CSV text) as well."""
    from starlette.concurrency import run_in_threadpool

    _check_kind(kind)
    name = Path(filename).name
    if not name or name.startswith("."):
        raise InvalidInput("filename: not a file name", field="filename")
    upload_dir = Path(tempfile.mkdtemp(prefix="upload-", dir=scratch_dir(settings)))
    target = upload_dir / name
    try:
        with target.open("wb") as fh:
            async for chunk in request.stream():
                fh.write(chunk)
        result = await run_in_threadpool(
            run_import,
            store=store,
            kind=kind,
            path=target,
            encoding=encoding,
            store_id=store_id,
            timezone=settings.timezone,
        )
        return uploaded_answer(result, name)
    finally:
        shutil.rmtree(upload_dir, ignore_errors=True)


@router.post("/sources", summary="Create a source; the write key is in the answer, once")
def sources_create(
    body: SourceCreate, request: Request, store: StoreDep, _: AdminKey
) -> dict[str, Any]:
    source, key = create_source(store=store, name=body.name, origins=body.origins)
    request.app.state.source_keys.forget()
    return {**dataclasses.asdict(source), "write_key": key}


@router.put("/sources/{name}/origins", summary="Set the web origins a source accepts browsers from")
def sources_origins(
    name: str, body: SourceOrigins, request: Request, store: StoreDep, _: AdminKey
) -> dict[str, Any]:
    source = set_origins(store=store, name=name, origins=body.origins)
    request.app.state.source_keys.forget()
    return dataclasses.asdict(source)


@router.get("/sources", summary="List sources (keys are not shown) and the origins refused")
def sources_list(request: Request, store: StoreDep, _: AdminKey) -> list[dict[str, Any]]:
    """`refused`: requests from pages of origins the source does not allow, per origin, since
    the server started."""
    refused = request.app.state.refused_origins
    return [
        {
            **dataclasses.asdict(s),
            "refused": {o: n for (name, o), n in sorted(refused.items()) if name == s.name},
        }
        for s in list_sources(store=store)
    ]


@router.post("/keys", summary="Create an API key; the secret is in the answer, once")
def keys_create(body: KeyCreate, store: StoreDep, _: AdminKey) -> dict[str, Any]:
    expires = None
    if body.expires_in is not None:
        expires = utcnow() + duration(body.expires_in, field="expires_in")
    key, secret = create_key(store=store, name=body.name, scope=body.scope, expires_at=expires)
    return {**dataclasses.asdict(key), "key": secret}


@router.get("/keys", summary="List API keys (never their secrets)")
def keys_list(store: StoreDep, _: AdminKey) -> list[dict[str, Any]]:
    return [{**dataclasses.asdict(k), "active": k.active} for k in list_keys(store=store)]


@router.post("/keys/{key_id}/revoke", summary="Refuse an API key from now on")
def keys_revoke(key_id: str, request: Request, store: StoreDep, _: AdminKey) -> dict[str, Any]:
    key = revoke_key(store=store, key_id=key_id)
    request.app.state.key_ring.forget()
    return {**dataclasses.asdict(key), "active": key.active}


@router.post(
    "/keys/{key_id}/rotate",
    summary="A new secret for a key; the old one works for a grace period (the new is in the "
    "answer, once)",
)
def keys_rotate(
    key_id: str, request: Request, store: StoreDep, _: AdminKey, body: KeyRotate | None = None
) -> dict[str, Any]:
    grace = duration((body or KeyRotate()).grace, field="grace")
    key, secret = rotate_key(store=store, key_id=key_id, grace=grace)
    request.app.state.key_ring.forget()
    return {**dataclasses.asdict(key), "key": secret, "replaces": key_id}


@router.get("/status", summary="Counts of members, stores, products and events by channel")
def status(store: StoreDep, _: ReadKey) -> dict[str, Any]:
    return dataclasses.asdict(overview(store=store))


@router.post(
    "/backup",
    summary="Back up the whole data dir into a directory on the server's machine, while it runs",
)
def backup_now(
    body: BackupRequest, store: StoreDep, settings: SettingsDep, _: AdminKey
) -> dict[str, Any]:
    """A consistent snapshot of every table and the data dir's files (store/backup.py);
    `tsunagu restore DIR` puts it back."""
    done = backup(store=store, data_dir=settings.data_dir, target=Path(body.dir))
    return dataclasses.asdict(done)
