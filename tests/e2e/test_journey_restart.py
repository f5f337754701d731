"""A journey inside `tsunagu serve`, killed with SIGKILL while it sends on LINE and started
again: every customer gets their message once, none twice, none never."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.activation.servers import line_api
from tests.e2e.processes import ENV, TSUNAGU, cli, free_port

MEMBERS = 40


def _serve(data_dir: Path, port: int, api_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **ENV,
        "TSUNAGU_LINE_CHANNEL_ACCESS_TOKEN": "line-token",
        "TSUNAGU_LINE_API_BASE": api_url,
        "TSUNAGU_QUIET_HOURS": "",
        "TSUNAGU_CAP_CHANNEL_DAY": "0",
        "TSUNAGU_CAP_ALL_DAY": "0",
        "TSUNAGU_JOURNEY_TICK_SECONDS": "0.2",
        "TSUNAGU_SEND_INTERVAL_SECONDS": "0.5",
        "TSUNAGU_STALE_SEND_SECONDS": "1",
    }
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(TSUNAGU), "--data-dir", str(data_dir), "serve", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def test_a_journey_sends_once_across_kill_9(tmp_path: Path) -> None:
    data = tmp_path / "data"
    members = tmp_path / "members.csv"
    members.write_text(
        "member_id,name,line_user_id,line_opt_in\n"
        + "".join(f"M{n:04d},会員{n},U{n:032x},true\n" for n in range(MEMBERS)),
        encoding="utf-8",
    )
    assert cli(data, "import", "members", str(members)).returncode == 0
    assert cli(data, "identity", "build").returncode == 0
    write_key = cli(data, "sources", "create", "web").stdout.strip().splitlines()[-1]
    admin = cli(data, "keys", "create", "ops", "--scope", "admin").stdout.strip().splitlines()[-1]
    log = tmp_path / "server.log"
    with line_api() as api:
        api.delay_next = [0.25] * MEMBERS  # LINE answers slowly: the kill lands mid-send
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        process = _serve(data, port, api.url, log)
        try:
            made = httpx.post(f"{url}/v1/journeys", headers={"Authorization": f"Bearer {admin}"},
                              json={"name": "即時", "control_share": 0, "channel": "line",
                                    "trigger": {"event": {"event": "Product Added"}},
                                    "steps": [{"send": {"message": {
                                        "text": "カートの商品",  # a link each: a push each
                                        "url": "https://shop.example.jp/cart"}}}]})  # fmt: skip
            assert made.status_code == 201, made.text
            time.sleep(1.5)  # the journey's cursor starts at its creation
            batch = [{"type": "track", "event": "Product Added", "userId": f"M{n:04d}",
                      "messageId": f"add-{n}"} for n in range(MEMBERS)]  # fmt: skip
            sent = httpx.post(f"{url}/v1/batch", json={"batch": batch}, auth=(write_key, ""))
            assert sent.status_code == 200, sent.text
            deadline = time.monotonic() + 60
            while len(api.received) < 8:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.02)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        at_kill = len(api.received)
        assert at_kill < MEMBERS, "the kill came too late to test anything"
        process = _serve(data, port, api.url, log)
        try:
            deadline = time.monotonic() + 90
            while len(api.received) < MEMBERS and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(2)  # anything more would be a repeat
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    to = [r["to"] for r in api.received]
    assert len(to) == MEMBERS, (at_kill, len(to), log.read_text()[-3000:])
    assert sorted(set(to)) == sorted(f"U{n:032x}" for n in range(MEMBERS))
