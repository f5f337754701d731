"""The collector's write path: validate messages, group-commit them, acknowledge when durable.

HTTP is not needed here: `Collector.submit` takes decoded messages and returns once they are
committed. Concurrent submitters share commits (group commit), so throughput does not depend on
one fsync per request.
"""

from __future__ import annotations

import asyncio
import gzip
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import numpy as np
import orjson
import pyarrow as pa

from tsunagu.activation import links
from tsunagu.events.normalize import EventRow, message_row, normalize, parse_time
from tsunagu.exceptions import InvalidEvent, PayloadTooLarge, TsunaguError
from tsunagu.store import Store
from tsunagu.store.db import events_table

MAX_BATCH_BYTES = 500 * 1024
MAX_BATCH_EVENTS = 2500
MAX_MESSAGE_BYTES = 32 * 1024


@dataclass(slots=True)
class Rejection:
    index: int
    field: str | None
    message: str


def inflate(body: bytes, *, encoding: str | None, limit: int) -> bytes:
    """The request body decompressed (gzip), refusing more than `limit` bytes of JSON."""
    if encoding and encoding.lower() == "gzip":
        inflater = zlib.decompressobj(wbits=31)
        try:
            body = inflater.decompress(body, limit + 1)
        except zlib.error:
            raise InvalidEvent("body: not valid gzip", field="body") from None
        if len(body) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"body: larger than {limit // 1024} KB", field="body")
    elif encoding and encoding.lower() not in ("identity", ""):
        raise InvalidEvent(
            f"Content-Encoding: {encoding!r} is not supported", field="Content-Encoding"
        )
    if len(body) > limit:
        raise PayloadTooLarge(f"body: larger than {limit // 1024} KB", field="body")
    return body


def decode_body(body: bytes, *, encoding: str | None, limit: int) -> Any:
    """A request body (maybe gzip) parsed, refusing more than `limit` bytes of JSON."""
    data = inflate(body, encoding=encoding, limit=limit)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"body: not valid JSON ({exc})", field="body") from None


def gzip_body(data: bytes) -> bytes:
    """The inverse of `decode_body` for gzip, for clients and tests."""
    return gzip.compress(data)


class _Envelope(msgspec.Struct, rename={"sent_at": "sentAt", "write_key": "writeKey"}):
    """A /v1/batch body; each message is kept as its JSON bytes, read by the rules one by one."""

    batch: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET
    sent_at: Any = None
    context: Any = None
    write_key: Any = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_LINK_TOKEN = f"{links.PARAM}=".encode()
"""In a message's bytes where a tracked link's token may be (then it is read as an object)."""


@dataclass(slots=True)
class Batch:
    """A /v1/batch body: its messages (JSON bytes, or objects when the batch's own context had
    to be merged into each), its sentAt and the write key it carries, if any."""

    messages: list[bytes] | list[Any]
    sent_at: Any
    """As sent: `batch_sent_at` reads it."""
    write_key: str | None

    @property
    def batch_sent_at(self) -> datetime | None:
        if self.sent_at is not None and not isinstance(self.sent_at, str | int | float):
            raise InvalidEvent("sentAt: must be an ISO 8601 time", field="sentAt")
        return parse_time(self.sent_at, "sentAt")


def decode_batch(data: bytes) -> Batch:
    """A /v1/batch body read and checked against Segment's limits; the messages are not read
    yet (`validate_messages` does, one by one, so one bad message rejects only itself)."""
    try:
        data.decode()  # the messages' text is checked here once, not by each reader
        envelope = _ENVELOPE.decode(data)
    except msgspec.ValidationError as exc:
        if "`$.batch" in str(exc):
            raise InvalidEvent("batch: must be a list of messages", field="batch") from None
        raise InvalidEvent("body: must be a JSON object", field="body") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidEvent(f"body: not valid JSON ({exc})", field="body") from None
    batch = envelope.batch
    if batch is msgspec.UNSET:
        raise InvalidEvent("batch: must be a list of messages", field="batch")
    if len(batch) > MAX_BATCH_EVENTS:
        raise PayloadTooLarge(
            f"batch: {len(batch)} messages, more than {MAX_BATCH_EVENTS}", field="batch"
        )
    sent_at = envelope.sent_at  # parsed once the key is checked (batch_sent_at)
    key = write_key_of(envelope.write_key)
    context = envelope.context
    if context is not None and not isinstance(context, dict):
        raise InvalidEvent("context: must be an object", field="context")
    if context:
        # Batch-level context fills in what a message's own context leaves out.
        return Batch([_with_context(m, context) for m in batch], sent_at, key)
    return Batch([bytes(m) for m in batch], sent_at, key)


def write_key_of(value: Any) -> str | None:
    """The body's write key (an empty one is none)."""
    if value is None or isinstance(value, str):
        return value or None
    raise InvalidEvent("writeKey: must be a string", field="writeKey")


def _with_context(raw: msgspec.Raw, context: dict[str, Any]) -> Any:
    try:
        message = _loads(bytes(raw))
    except InvalidEvent as exc:
        return exc  # rejected on its own
    if isinstance(message, dict) and isinstance(message.get("context") or {}, dict):
        return {**message, "context": {**context, **(message.get("context") or {})}}
    return message  # a message whose context is not an object is rejected on its own


def _loads(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"message: not valid JSON ({exc})", field="message") from None


def validate_messages(
    messages: list[bytes] | list[Any],
    *,
    source: str,
    received_at: datetime,
    sent_at: datetime | None = None,
    default_type: str | None = None,
    link_secret: bytes | None = None,
) -> tuple[list[EventRow], list[Rejection]]:
    """Each message's row (a message is its JSON bytes, or an object); the invalid ones come
    back as rejections with their index.

    With `link_secret`, a page that carries a valid token of a link tsunagu sent gets the
    customer's identifier and adds a "Message Clicked" (activation/links.py).
    """
    rows: list[EventRow] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(messages):
        try:
            if isinstance(raw, bytes):
                if link_secret is None or _LINK_TOKEN not in raw:
                    rows.append(
                        message_row(
                            raw,
                            received_at=received_at,
                            source=source,
                            batch_sent_at=sent_at,
                            default_type=default_type,
                        )
                    )
                    continue
                raw = _loads(raw)  # a link's token, maybe: read it as an object
            elif isinstance(raw, InvalidEvent):
                raise raw
            if link_secret is not None and (token := links.token_in(raw)) is not None:
                raw, clicked = _clicked(raw, token, link_secret)
                if clicked is not None:
                    rows.append(normalize(clicked, received_at=received_at, source=source))
            rows.append(
                normalize(
                    raw,
                    received_at=received_at,
                    source=source,
                    batch_sent_at=sent_at,
                    default_type=default_type,
                )
            )
        except TsunaguError as exc:
            rejected.append(Rejection(index=index, field=exc.field, message=exc.message))
    return rows, rejected


def _clicked(raw: Any, text: str, secret: bytes) -> tuple[Any, dict[str, Any] | None]:
    """The page with the customer's identifier, and their "Message Clicked" (once per send)."""
    token = links.verify(secret, text)
    if token is None:
        return raw, None
    linked = links.attach(raw, token)
    clicked: dict[str, Any] = {
        key: linked[key]
        for key in ("userId", "anonymousId", "context", "timestamp")
        if key in linked
    }
    clicked.update(
        type="track",
        event="Message Clicked",
        messageId=f"Message Clicked:{token.send_key}",
        properties={"send_key": token.send_key},
    )
    return linked, clicked


_Write = tuple[pa.Table, np.ndarray, "asyncio.Future[int]", asyncio.AbstractEventLoop]
"""A queued write: the rows, their messageIds' hashes, and whom to answer."""


class Collector:
    """Group-commits event rows from many concurrent submitters in one writer thread."""

    def __init__(
        self,
        store: Store,
        *,
        interval_ms: int = 5,
        max_events: int = 20_000,
        on_commit: Callable[[], None] | None = None,
        on_timed: Callable[[float, int], None] | None = None,
    ) -> None:
        """`on_commit`: called in the writer after each commit that stored new events;
        `on_timed`: after each commit, with its seconds and its rows (the metrics)."""
        self._store = store
        self._on_commit = on_commit
        self._on_timed = on_timed
        self._interval = interval_ms / 1000
        self._max_events = max_events
        self._queue: queue.Queue[_Write | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="tsunagu-writer", daemon=True)
        self.commits = 0
        self.events_written = 0

    def start(self) -> None:
        """Load the messageId index, then take writes: the server answers once it is loaded,
        so the first commits do not wait seconds for it on a store of millions."""
        self._store.warm()
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether its thread runs (GET /readyz)."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Write everything queued, then end the writer."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    async def write(self, rows: list[EventRow]) -> int:
        """Queue rows and wait until they are committed (durable); returns how many were queued."""
        if not rows:
            return 0
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        # Columns and hashes made here, where the cores are less busy than in the one writer.
        table = events_table(rows)
        self._queue.put((table, self._store.message_hashes(table), future, loop))
        return await future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            pending = [item]
            count = item[0].num_rows
            deadline = self._interval
            while count < self._max_events:
                try:
                    nxt = (
                        self._queue.get(timeout=deadline) if deadline else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                pending.append(nxt)
                count += nxt[0].num_rows
                deadline = 0  # after the first wait, take only what is already queued
            self._commit(pending)

    @property
    def queue_depth(self) -> int:
        """Writes waiting for the writer."""
        return self._queue.qsize()

    def _commit(self, pending: list[_Write]) -> None:
        started = time.perf_counter()
        rows = pa.concat_tables([table for table, _, _, _ in pending])
        hashes = np.concatenate([hashes for _, hashes, _, _ in pending])
        try:
            stored = self._store.insert_events(rows, hashes=hashes)
        except BaseException as exc:  # noqa: BLE001 - every waiter must hear of the failure
            for _, _, future, loop in pending:
                loop.call_soon_threadsafe(_fail, future, exc)
            return
        self.commits += 1
        self.events_written += rows.num_rows
        if self._on_timed is not None:
            self._on_timed(time.perf_counter() - started, rows.num_rows)
        for batch, _, future, loop in pending:
            loop.call_soon_threadsafe(_succeed, future, batch.num_rows)
        if stored and self._on_commit is not None:
            self._on_commit()


def _succeed(future: asyncio.Future[int], value: int) -> None:
    if not future.done():
        future.set_result(value)


def _fail(future: asyncio.Future[int], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
