"""What operators watch: /readyz says whether the server can take work and what is wrong when
not; /metrics counts what the collector took and refused, times commits and queries, and reads
the messages sent and suppressed per channel from the store."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import serve_app
from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.events.sources import create_source
from tsunagu.identity.graph import build_graph
from tsunagu.identity.rules import IdentityRules
from tsunagu.keys import create_key
from tsunagu.store import Store

MEMBERS = (
    "member_id,name,postcode,address,dm_opt_in\n"
    "M1,山田 太郎,150-0002,東京都渋谷区渋谷2-21-1 ヒカリエ 8F,true\n"
    "M2,佐藤 花子,530-0001,大阪府大阪市北区梅田3-1-1,false\n"
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Store, object]]:
    settings = Settings(data_dir=tmp_path / "data", quiet_hours="")
    with Store(settings.database_path) as store:
        app = create_app(settings, store=store)
        _, read = create_key(store=store, name="prometheus", scope="read")
        _, admin = create_key(store=store, name="ops", scope="admin")
        keys = {"read": read, "admin": admin}
        with serve_app(app) as url:
            yield url, keys, store, app


def _sample(text: str, name: str, **labels: str) -> float:
    """A sample's value in the exposition text (0 when it is not there)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_ready_when_everything_runs_and_not_when_a_worker_stopped(server) -> None:  # type: ignore[no-untyped-def]
    url, _, _, app = server
    response = httpx.get(url + "/readyz")  # open, like /healthz
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {
        "store", "collector", "scheduler", "segment_refresher", "hold_sweeper", "disk"
    }  # fmt: skip
    assert all(value is True for value in body["checks"].values())
    app.state.scheduler.stop()  # type: ignore[attr-defined]
    response = httpx.get(url + "/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["scheduler"] == "not running"
    assert response.json()["checks"]["collector"] is True


def test_metrics_count_what_came_in_and_what_was_sent(server) -> None:  # type: ignore[no-untyped-def]
    url, keys, store, _ = server
    assert httpx.get(url + "/metrics").status_code == 401
    _, write_key = create_source(store=store, name="web")
    batch = {
        "batch": [
            *(
                {
                    "type": "track",
                    "event": "Product Viewed",
                    "anonymousId": f"a{i}",
                    "messageId": f"m{i}",
                    "timestamp": "2026-11-01T00:00:00Z",
                }
                for i in range(3)
            ),  # fmt: skip
            {"type": "track", "anonymousId": "a9", "messageId": "bad"},  # no event name
        ]
    }
    answer = httpx.post(url + "/v1/batch", json=batch, auth=(write_key, ""))
    assert answer.status_code == 400 and answer.json()["accepted"] == 3
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    funnel = {"steps": [{"event": "Product Viewed"}, {"event": "Order Completed"}], "window": "7d"}
    assert httpx.post(url + "/v1/analytics/funnel", json=funnel, headers=admin).status_code == 200

    imported = httpx.put(url + "/v1/imports/members/m.csv", content=MEMBERS.encode(), headers=admin)
    assert imported.status_code == 200 and imported.json()["imported"] == 2, imported.text
    build_graph(store=store, rules=IdentityRules())
    profiles = [
        httpx.get(
            url + "/v1/profiles/lookup", params={"type": "user_id", "value": m}, headers=admin
        ).json()["profile_id"]
        for m in ("M1", "M2")
    ]
    campaign = httpx.post(
        url + "/v1/campaigns",
        json={"name": "秋のカタログ", "channel": "dm", "control_share": 0.0,
              "message": {"text": "秋の新作"}},
        headers=admin,
    ).json()  # fmt: skip
    sent = httpx.post(
        url + f"/v1/campaigns/{campaign['campaign_id']}/send",
        json={"profile_ids": profiles},
        headers=admin,
    )
    assert sent.status_code == 200, sent.text
    assert (sent.json()["sent"], sent.json()["suppressed"]) == (1, 1)

    scraped = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {keys['read']}"})
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert _sample(text, "tsunagu_events_ingested_total") == 3
    assert _sample(text, "tsunagu_events_rejected_total") == 1
    assert _sample(text, "tsunagu_commit_seconds_count") >= 1
    assert _sample(text, "tsunagu_committed_rows_total") == 3
    assert _sample(text, "tsunagu_writer_queue_depth") == 0
    assert _sample(text, "tsunagu_query_seconds_count", analysis="funnel") == 1
    assert _sample(text, "tsunagu_messages_sent_total", channel="dm") == 1
    assert _sample(text, "tsunagu_messages_suppressed_total", channel="dm") == 1
    assert (
        _sample(
            text,
            "tsunagu_http_request_seconds_count",
            method="POST",
            route="/v1/campaigns/{campaign_id}/send",
            status="200",
        )
        == 1
    )
    assert "/v1/campaigns/" + campaign["campaign_id"] not in text  # routes, not paths
