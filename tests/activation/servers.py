"""Real servers on loopback for the channels' tests: LINE's Messaging API as LINE answers it,
a webhook receiver that checks signatures, an FCM-shaped push endpoint. Each keeps what it was
sent and can be told to fail the next requests."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tsunagu.activation.channels.webhook import verify
from tsunagu.server import serve_in_thread

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass
class Recorder:
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    """What was accepted (each once)."""
    requests: int = 0
    fail_next: list[int] = field(default_factory=list)
    """Statuses to answer the next requests with (429, 500, ...), in order."""
    delay_next: list[float] = field(default_factory=list)
    """Seconds to wait before answering the next requests (timeouts)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_receive: Callable[[dict[str, Any]], None] | None = None
    """Called with each message accepted (a benchmark stamps the time)."""

    def messages(self) -> list[tuple[str, str]]:
        """Each recipient and the first text they were sent, in order: a push's one, each of a
        multicast's."""
        out = []
        for body in self.received:
            to = body["to"]
            for user in [to] if isinstance(to, str) else to:
                out.append((user, body["messages"][0]["text"]))
        return out

    def recipients(self) -> list[str]:
        return [to for to, _ in self.messages()]

    def _take(self) -> tuple[int | None, float]:
        with self.lock:
            self.requests += 1
            status = self.fail_next.pop(0) if self.fail_next else None
            delay = self.delay_next.pop(0) if self.delay_next else 0.0
        return status, delay


@contextmanager
def line_api(token: str = "line-token") -> Iterator[Recorder]:
    """POST /v2/bot/message/push and /multicast as LINE answers: the bearer token, the shape of
    the body, a retry key in UUID form accepted once (the same key again: 409 with
    x-line-accepted-request-id), 429 when told."""
    rec = Recorder()
    accepted: dict[str, str] = {}
    app = FastAPI()

    async def handle(request: Request, kind: str) -> JSONResponse:
        status, delay = rec._take()
        if delay:
            await asyncio.sleep(delay)
        if request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"message": "Authentication failed"}, status_code=401)
        if status:
            return JSONResponse({"message": "try later"}, status_code=status,
                                headers={"retry-after": "0"} if status == 429 else {})  # fmt: skip
        body = await request.json()
        key = request.headers.get("x-line-retry-key")
        to = body.get("to")
        texts = body.get("messages")
        ok_to = (
            isinstance(to, str) if kind == "push" else isinstance(to, list) and 0 < len(to) <= 500
        )
        if (
            not ok_to
            or not isinstance(texts, list)
            or not 1 <= len(texts) <= 5
            or any(m.get("type") != "text" or not m.get("text") for m in texts)
        ):
            return JSONResponse({"message": "The request body has 1 error(s)"}, status_code=400)
        if key is not None and not _UUID.match(key):
            return JSONResponse({"message": "The retry key is invalid"}, status_code=400)
        with rec.lock:
            if key is not None and key in accepted:
                return JSONResponse(
                    {"message": "The retry key is already accepted"},
                    status_code=409,
                    headers={"x-line-accepted-request-id": accepted[key]},
                )
            request_id = str(uuid.uuid4())
            if key is not None:
                accepted[key] = request_id
            rec.received.append({"kind": kind, "retry_key": key, **body})
            if rec.on_receive is not None:
                rec.on_receive(rec.received[-1])
        answer = (
            {"sentMessages": [{"id": request_id[:18], "quoteToken": "q"}]} if kind == "push" else {}
        )
        return JSONResponse(answer, headers={"x-line-request-id": request_id})

    @app.post("/v2/bot/message/push")
    async def push(request: Request) -> JSONResponse:
        return await handle(request, "push")

    @app.post("/v2/bot/message/multicast")
    async def multicast(request: Request) -> JSONResponse:
        return await handle(request, "multicast")

    with serve_in_thread(app) as url:
        rec.url = url
        yield rec


@contextmanager
def webhook_receiver(secret: str = "hook-secret") -> Iterator[Recorder]:
    """POST /hook: checks the signature and drops an id seen before (as a receiver should)."""
    rec = Recorder()
    seen: set[str] = set()
    app = FastAPI()

    @app.post("/hook")
    async def hook(request: Request) -> JSONResponse:
        status, delay = rec._take()
        if delay:
            await asyncio.sleep(delay)
        if status:
            return JSONResponse({"error": "down"}, status_code=status)
        raw = await request.body()
        if not verify(secret, request.headers.get("x-tsunagu-timestamp", ""), raw,
                      request.headers.get("x-tsunagu-signature", "")):  # fmt: skip
            return JSONResponse({"error": "bad signature"}, status_code=401)
        key = request.headers.get("x-tsunagu-id", "")
        with rec.lock:
            if key not in seen:
                seen.add(key)
                rec.received.append(await request.json())
        return JSONResponse({"ok": True}, headers={"x-request-id": key})

    @app.post("/v1/projects/{project}/messages:send")
    async def fcm(project: str, request: Request) -> JSONResponse:
        status, _ = rec._take()
        if status:
            return JSONResponse({"error": {"code": status}}, status_code=status)
        if request.headers.get("authorization") != f"Bearer {secret}":
            return JSONResponse({"error": {"code": 401}}, status_code=401)
        body = await request.json()
        message = body.get("message") or {}
        if not message.get("token") or "body" not in (message.get("notification") or {}):
            return JSONResponse({"error": {"code": 400}}, status_code=400)
        with rec.lock:
            rec.received.append({"project": project, **message})
        return JSONResponse({"name": f"projects/{project}/messages/{len(rec.received)}"})

    with serve_in_thread(app) as url:
        rec.url = url
        yield rec
