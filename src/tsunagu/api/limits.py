"""Request bodies bounded before they are read: a body over the limit answers 413.

A declared `Content-Length` over the limit is refused before a byte is read; a body that comes
without one (chunked) is counted as it arrives and cut off where it passes the limit, so no
request can make the server hold more than the limit in memory. File uploads for import
(`PUT /v1/imports/...`) are written to disk as they come and have a limit of their own.
"""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tsunagu.api.errors import error_body

_UPLOADS = "/v1/imports/"


def _too_large(limit: int) -> tuple[Message, Message]:
    body = orjson.dumps(
        error_body("payload_too_large", f"body: larger than {_size(limit)}", "body")
    )
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, {"type": "http.response.body", "body": body}


def _size(limit: int) -> str:
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if limit >= size:
            return f"{limit / size:g} {unit}"
    return f"{limit} bytes"


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_body: int, max_upload: int) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["method"] == "PUT" and scope["path"].startswith(_UPLOADS)
        limit = self.max_upload if upload else self.max_body
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            for message in _too_large(limit):
                await send(message)
            return
        received = 0
        refused = False
        started = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        for reply in _too_large(limit):
                            await send(reply)
                    return {"type": "http.disconnect"}
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is sent; what the app answers to the cut-off body is not
            started = True
            await send(message)

        await self.app(scope, counted, guarded)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
