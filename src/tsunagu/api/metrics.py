"""Prometheus metrics at GET /metrics: what comes in, how fast it is committed and answered,
and what is sent.

Each app has its own registry (tests and benchmarks run several apps in one process). Counters
of this process: events ingested and rejected by the collector, commits and their latency,
requests and their latency per route (analytics queries among them); read when scraped: the
writer's queue depth and the messages sent and suppressed per channel, from the store's sends
(so they survive a restart). `/metrics` takes a read key, like the other reads.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector as PromCollector
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tsunagu.api.deps import ReadKey

if TYPE_CHECKING:
    from prometheus_client import Metric
    from starlette.datastructures import State

router = APIRouter(tags=["health"])

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ingested = Counter(
            "tsunagu_events_ingested", "Events the collector acknowledged", registry=r
        )
        self.rejected = Counter(
            "tsunagu_events_rejected", "Messages the collector refused (invalid)", registry=r
        )
        self.commits = Histogram(
            "tsunagu_commit_seconds",
            "Time of a group commit of collected events",
            buckets=_LATENCY,
            registry=r,
        )
        self.committed_rows = Counter(
            "tsunagu_committed_rows", "Event rows written by group commits", registry=r
        )
        self.requests = Histogram(
            "tsunagu_http_request_seconds",
            "Time to answer an HTTP request, per route and status",
            ["method", "route", "status"],
            buckets=_LATENCY,
            registry=r,
        )
        self.queries = Histogram(
            "tsunagu_query_seconds",
            "Time to answer an analytics query (HTTP), per analysis",
            ["analysis"],
            buckets=_LATENCY,
            registry=r,
        )

    def commit(self, seconds: float, rows: int) -> None:
        self.commits.observe(seconds)
        self.committed_rows.inc(rows)

    def watch(self, state: State) -> None:
        """Read the writer's queue and the store's sends when scraped."""
        self.registry.register(_Live(state))


class _Live(PromCollector):
    def __init__(self, state: State) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        collector = getattr(self._state, "collector", None)
        depth = GaugeMetricFamily(
            "tsunagu_writer_queue_depth", "Writes waiting for the collector's writer"
        )
        depth.add_metric([], collector.queue_depth if collector is not None else 0)
        yield depth
        sent = CounterMetricFamily(
            "tsunagu_messages_sent", "Messages delivered to their channel", labels=["channel"]
        )
        suppressed = CounterMetricFamily(
            "tsunagu_messages_suppressed",
            "Messages held back (consent, caps, withdrawal, no address)",
            labels=["channel"],
        )
        failed = CounterMetricFamily(
            "tsunagu_messages_failed", "Messages their channel refused", labels=["channel"]
        )
        store = getattr(self._state, "store", None)
        rows = (
            store.query("SELECT channel, status, count(*) FROM sends GROUP BY ALL ORDER BY ALL")
            if store is not None
            else []
        )
        families = {"sent": sent, "suppressed": suppressed, "failed": failed}
        for channel, status, count in rows:
            if status in families:
                families[status].add_metric([channel], count)
        yield from families.values()


access_log = logging.getLogger("tsunagu.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Timing:
    """Times every request by its route's path template (not its path: ids would make a
    series each), and logs it (`tsunagu.access`: the template too, no query string) with a
    request id: the client's `X-Request-ID` if it sent a sane one, else a new one, returned in
    the answer's `X-Request-ID`."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        asked = Headers(scope=scope).get("x-request-id", "")
        request_id = asked if _REQUEST_ID.match(asked) else uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id

        async def noted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, noted)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            seconds = time.perf_counter() - started
            self.metrics.requests.labels(scope["method"], route, str(status)).observe(seconds)
            if route.startswith("/v1/analytics/") and status < 400:
                self.metrics.queries.labels(route.removeprefix("/v1/analytics/")).observe(seconds)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d", scope["method"], route, status,
                    extra={"request_id": request_id, "method": scope["method"], "route": route,
                           "status": status, "seconds": round(seconds, 4),
                           "client": _client(scope)},
                )  # fmt: skip


def _client(scope: Scope) -> str | None:
    """The client's address without its last part (an address can point at a person)."""
    client = scope.get("client")
    if not client:
        return None
    host = str(client[0])
    if ":" in host:
        return ":".join(host.split(":")[:3]) + "::"
    return ".".join(host.split(".")[:3] + ["0"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=PlainTextResponse,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
def metrics(request: Request, _: ReadKey) -> Response:
    registry = request.app.state.metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
