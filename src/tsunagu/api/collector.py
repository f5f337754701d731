"""Segment-compatible collector: POST /v1/track|identify|page|screen|group|alias|batch, and the
short forms Segment's browser and mobile libraries post to (/v1/t|i|p|s|g|a|b; /v1/m, the
browser library's own metrics, taken and dropped).

Browsers post cross-origin, with the write key in a `text/plain` body (no preflight); the
source's allowed origins decide (events/sources.py): a page of another origin is refused (403)
and counted, and gets no CORS headers. `Cors` answers preflights and adds the headers.
"""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tsunagu.api.collector_schema import batch_body, single_body
from tsunagu.api.deps import CollectorDep, SourceKeysDep
from tsunagu.api.errors import error_body
from tsunagu.events.collector import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    Batch,
    Rejection,
    decode_batch,
    decode_body,
    inflate,
    validate_messages,
    write_key_of,
)
from tsunagu.events.model import MESSAGE_TYPES
from tsunagu.events.sources import SourceKeys
from tsunagu.exceptions import AuthError, InvalidEvent, OriginRefused, PayloadTooLarge
from tsunagu.store import utcnow

router = APIRouter(prefix="/v1", tags=["collector"])

_OK = b'{"success":true}'


def _basic_user(header: str | None) -> str | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body: larger than {limit // 1024} KB", field="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body: larger than {limit // 1024} KB", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


async def _collect(
    request: Request,
    keys: SourceKeysDep,
    collector: CollectorDep,
    kind: str | None,
) -> Response:
    limit = MAX_BATCH_BYTES if kind is None else MAX_MESSAGE_BYTES
    # A key in the header is checked before the body is read (one in the body, as browsers
    # send it, only after).
    header = request.headers.get("authorization")
    basic = _basic_user(header)
    if header is not None and basic is None:
        raise AuthError(
            "Authorization: not HTTP basic with a source's write key as the user name",
            field="Authorization",
        )
    source = keys.authenticate(basic) if basic else None
    body = await _read_body(request, limit)
    encoding = request.headers.get("content-encoding")
    batch: Batch | None = None
    payload: Any = None
    if kind is None:
        batch = decode_batch(inflate(body, encoding=encoding, limit=limit))
        key = batch.write_key
    else:
        payload = decode_body(body, encoding=encoding, limit=limit)
        key = write_key_of(payload.get("writeKey")) if isinstance(payload, dict) else None
    if source is None:
        source = keys.authenticate(key)
    origin = request.headers.get("origin")
    if origin is not None and not source.allows(origin):
        refused: Counter[tuple[str, str]] = request.app.state.refused_origins
        refused[(source.name, origin)] += 1
        raise OriginRefused(
            f"origin: {origin} is not among the origins source {source.name} accepts browsers "
            "from (tsunagu sources origins sets them)",
            field="origin",
        )
    request.state.cors_origin = origin

    received_at = utcnow()
    messages: list[Any]
    if batch is not None:
        messages, sent_at = batch.messages, batch.batch_sent_at
    else:
        if not isinstance(payload, dict):
            raise InvalidEvent("body: must be a JSON object", field="body")
        # The write key authenticates; it is not part of the event (and never stored).
        message = {k: v for k, v in payload.items() if k != "writeKey"}
        messages, sent_at = [{**message, "type": kind}], None
    rows, rejected = validate_messages(
        messages, source=source.name, received_at=received_at, sent_at=sent_at,
        link_secret=request.app.state.link_secret,
    )  # fmt: skip
    await collector.write(rows)
    metrics = request.app.state.metrics
    metrics.ingested.inc(len(rows))
    if not rejected:
        return Response(_OK, media_type="application/json")
    metrics.rejected.inc(len(rejected))
    return _rejected(rejected, accepted=len(rows), single=kind is not None)


def _rejected(rejected: list[Rejection], *, accepted: int, single: bool) -> JSONResponse:
    first = rejected[0]
    if single:
        return JSONResponse(
            error_body("invalid_event", first.message, first.field), status_code=400
        )
    message = f"{len(rejected)} of {len(rejected) + accepted} messages rejected; first: batch[{first.index}] {first.message}"
    return JSONResponse(
        error_body(
            "invalid_event",
            message,
            f"batch[{first.index}].{first.field}" if first.field else f"batch[{first.index}]",
            accepted=accepted,
            rejected=[{"index": r.index, "field": r.field, "message": r.message} for r in rejected],
        ),
        status_code=400,
    )


@router.post(
    "/batch",
    summary="Send up to 2,500 messages (500 KB) at once",
    openapi_extra=batch_body(),
)
async def batch(request: Request, keys: SourceKeysDep, collector: CollectorDep) -> Response:
    return await _collect(request, keys, collector, None)


def _single(kind: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request, keys: SourceKeysDep, collector: CollectorDep) -> Response:
        return await _collect(request, keys, collector, kind)

    endpoint.__name__ = kind
    return endpoint


for _kind in MESSAGE_TYPES:
    router.add_api_route(
        f"/{_kind}",
        _single(_kind),
        methods=["POST"],
        summary=f"Send one {_kind} message",
        openapi_extra=single_body(_kind),
    )
    router.add_api_route(
        f"/{_kind[0]}",
        _single(_kind),
        methods=["POST"],
        summary=f"Send one {_kind} message (the browser library's path)",
        openapi_extra=single_body(_kind),
    )
router.add_api_route(
    "/b",
    batch,
    methods=["POST"],
    summary="Send a batch (the browser library's path)",
    openapi_extra=batch_body(),
)

SHORT_PATHS = {f"/v1/{k[0]}" for k in MESSAGE_TYPES} | {"/v1/b", "/v1/m"}
COLLECTOR_PATHS = SHORT_PATHS | {f"/v1/{k}" for k in (*MESSAGE_TYPES, "batch")}


@router.post("/m", summary="The browser library's own metrics: taken and dropped")
async def metrics(request: Request) -> Response:
    await _read_body(request, MAX_MESSAGE_BYTES)
    return Response(_OK, media_type="application/json")


class Cors:
    """CORS for the collector's paths (plain ASGI: nothing in the way of other requests): a
    preflight from an origin some source allows is answered; a response carries
    `Access-Control-Allow-Origin` for an allowed origin only. Credentials are never allowed:
    the write key is not a secret, the origin is the check."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in COLLECTOR_PATHS:
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            return await self.app(scope, receive, send)
        keys: SourceKeys = scope["app"].state.source_keys
        if scope["method"] == "OPTIONS":
            if keys.any_allows(origin) and "access-control-request-method" in headers:
                answer = {
                    **_allow(origin),
                    "Access-Control-Allow-Methods": "POST, OPTIONS",
                    "Access-Control-Max-Age": "86400",
                }
                if asked := headers.get("access-control-request-headers"):
                    answer["Access-Control-Allow-Headers"] = asked
                response = Response(status_code=204, headers=answer)
            else:
                response = Response(status_code=403, headers={"Vary": "Origin"})
            return await response(scope, receive, send)

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The key's source checked the origin (cors_origin), or the request never got
                # that far (a bad key, bad JSON, the metrics): then any source allowing the
                # origin lets the page read the answer. A refused origin gets nothing.
                checked = scope.get("state", {}).get("cors_origin")
                allowed = checked == origin or (
                    message["status"] != 403 and keys.any_allows(origin)
                )
                added = _allow(origin) if allowed else {"Vary": "Origin"}
                message["headers"] = [
                    *message.get("headers", []),
                    *((k.lower().encode(), v.encode()) for k, v in added.items()),
                ]
            await send(message)

        await self.app(scope, receive, with_cors)


def _allow(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
