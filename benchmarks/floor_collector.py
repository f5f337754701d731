"""The floor for `ingest_http.py`: the least a collector can do and still acknowledge durably.

A bare ASGI app under uvicorn: `POST /v1/batch` reads the body, parses it with orjson, pulls the
columns out of each message (message id, type, event, user and anonymous ids, timestamp,
channel, the message as JSON), makes an Arrow table, and hands it to one writer thread that
inserts everything waiting into DuckDB in one transaction (group commit) and only then answers
each request 200. No validation, no normalisation, no dedupe, no authentication: what is left
when everything that makes tsunagu's collector correct is taken away. Never part of the product.

    .venv/bin/python benchmarks/floor_collector.py --port 8123 --db /tmp/floor.duckdb
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import uvicorn

from tsunagu.store.db import CHECKPOINT_THRESHOLD

COLUMNS = ("message_id", "type", "event", "user_id", "anonymous_id", "timestamp", "channel", "raw")
SCHEMA = """CREATE TABLE IF NOT EXISTS events (
    message_id VARCHAR, type VARCHAR, event VARCHAR, user_id VARCHAR, anonymous_id VARCHAR,
    timestamp TIMESTAMP, channel VARCHAR, raw JSON, received_at TIMESTAMP)"""

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class Writer:
    """One thread, one connection: everything queued goes in by one transaction."""

    def __init__(self, path: str) -> None:
        # DuckDB set as tsunagu's store sets it (store/db.py), so the floor is not slowed by
        # what tsunagu tuned away.
        self.db = duckdb.connect(path, config={"checkpoint_threshold": CHECKPOINT_THRESHOLD})
        self.db.execute(SCHEMA)
        self.waiting: queue.Queue[tuple[pa.Table, asyncio.AbstractEventLoop, asyncio.Future[None]]]
        self.waiting = queue.Queue()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            items = [self.waiting.get()]
            while not self.waiting.empty():
                items.append(self.waiting.get_nowait())
            batch = pa.concat_tables([table for table, _, _ in items])  # noqa: F841 (by name)
            self.db.execute("BEGIN")
            self.db.execute("INSERT INTO events SELECT *, now()::TIMESTAMP FROM batch")
            self.db.execute("COMMIT")
            for _, loop, done in items:
                loop.call_soon_threadsafe(done.set_result, None)


def columns(body: bytes) -> pa.Table:
    messages = orjson.loads(body)["batch"]
    cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for m in messages:
        cols["message_id"].append(m.get("messageId"))
        cols["type"].append(m.get("type"))
        cols["event"].append(m.get("event"))
        cols["user_id"].append(m.get("userId"))
        cols["anonymous_id"].append(m.get("anonymousId"))
        cols["timestamp"].append(
            datetime.fromisoformat(m["timestamp"]).astimezone(UTC).replace(tzinfo=None)
        )
        cols["channel"].append((m.get("context") or {}).get("channel"))
        cols["raw"].append(orjson.dumps(m).decode())
    return pa.table(cols)


def app_for(writer: Writer) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] == "/healthz":
            status, answer = 200, b'{"ok":true}'
        elif scope["method"] == "POST" and scope["path"] == "/v1/batch":
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()
            writer.waiting.put((columns(body), loop, done))
            await done
            status, answer = 200, b'{"success":true}'
        else:
            status, answer = 404, b"{}"
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    uvicorn.run(app_for(Writer(args.db)), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
