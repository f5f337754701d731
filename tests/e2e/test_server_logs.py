"""`tsunagu serve`'s own log: JSON lines, a line per request with its route and request id,
and none of the personal data that the requests carried."""

from __future__ import annotations

import json
import time

import httpx

from tests.e2e.processes import ServerProcess, cli


def test_the_server_log_is_json_lines_without_personal_data(server: ServerProcess) -> None:
    admin = cli(server.data_dir, "keys", "create", "ops", "--scope", "admin").stdout.split()[-1]
    auth = {"Authorization": f"Bearer {admin}"}
    identify = {"type": "identify", "userId": "M1", "messageId": "i1",
                "traits": {"email": "taro@example.jp", "phone": "090-1234-5678",
                           "name": "山田 太郎"}}  # fmt: skip
    assert (
        httpx.post(
            server.url + "/v1/identify", json=identify, auth=(server.write_key, "")
        ).status_code
        == 200
    )
    lookup = httpx.get(
        server.url + "/v1/profiles/lookup",
        params={"type": "email", "value": "taro@example.jp"},
        headers={**auth, "X-Request-ID": "req-from-client-1"},
    )
    assert lookup.headers["x-request-id"] == "req-from-client-1"
    bad = httpx.post(server.url + "/v1/track", json={"userId": "hanako@example.jp"},
                     auth=(server.write_key, ""))  # fmt: skip
    assert bad.status_code == 400
    own_id = httpx.get(server.url + "/readyz").headers["x-request-id"]
    time.sleep(0.5)
    server.stop()
    lines = [line for line in server.log.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    requests = [e for e in entries if e["logger"] == "tsunagu.access"]
    by_id = {e["request_id"]: e for e in requests}
    assert by_id["req-from-client-1"]["route"] == "/v1/profiles/lookup"
    assert by_id["req-from-client-1"]["status"] in (200, 404)
    assert by_id[own_id]["route"] == "/readyz" and by_id[own_id]["status"] == 200
    assert any(e["route"] == "/v1/track" and e["status"] == 400 for e in requests)
    assert any(e["logger"].startswith("uvicorn") for e in entries)  # the server's own, too
    text = "\n".join(lines)
    for personal in ("taro@example.jp", "hanako", "090-1234-5678", "山田", "taro%40"):
        assert personal not in text
