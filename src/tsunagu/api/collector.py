"""Segment-compatible collector: POST /v1/track|identify|page|screen|group|alias|batch."""

from __future__ import annotations

import base64
import binascii

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from tsunagu.api.deps import CollectorDep, SourceKeysDep
from tsunagu.api.errors import error_body
from tsunagu.events.collector import (
    MAX_BATCH_BYTES,
    MAX_MESSAGE_BYTES,
    Rejection,
    decode_body,
    messages_of_batch,
    validate_messages,
)
from tsunagu.events.model import MESSAGE_TYPES
from tsunagu.exceptions import InvalidEvent, PayloadTooLarge
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
    body = await _read_body(request, limit)
    payload, size = decode_body(body, encoding=request.headers.get("content-encoding"), limit=limit)
    key = _basic_user(request.headers.get("authorization"))
    if key is None and isinstance(payload, dict) and isinstance(payload.get("writeKey"), str):
        key = payload["writeKey"]
    source = keys.authenticate(key)

    received_at = utcnow()
    if kind is None:
        messages, sent_at = messages_of_batch(payload)
    else:
        if not isinstance(payload, dict):
            raise InvalidEvent("body: must be a JSON object", field="body")
        # The write key authenticates; it is not part of the event (and never stored).
        message = {k: v for k, v in payload.items() if k != "writeKey"}
        messages, sent_at = [{**message, "type": kind}], None
    rows, rejected = validate_messages(
        messages, source=source.name, received_at=received_at, sent_at=sent_at, body_size=size
    )
    await collector.write(rows)
    if not rejected:
        return Response(_OK, media_type="application/json")
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


@router.post("/batch", summary="Send up to 2,500 messages (500 KB) at once")
async def batch(request: Request, keys: SourceKeysDep, collector: CollectorDep) -> Response:
    return await _collect(request, keys, collector, None)


def _single(kind: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request, keys: SourceKeysDep, collector: CollectorDep) -> Response:
        return await _collect(request, keys, collector, kind)

    endpoint.__name__ = kind
    return endpoint


for _kind in MESSAGE_TYPES:
    router.add_api_route(
        f"/{_kind}", _single(_kind), methods=["POST"], summary=f"Send one {_kind} message"
    )
