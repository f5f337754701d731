"""`tsunagu serve` as a real process: acknowledged events survive `kill -9`, and the CLI says
clearly that the running server holds the store."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import httpx

from tests.e2e.processes import ServerProcess, cli
from tsunagu.store import Store


def test_cli_import_while_the_server_runs_names_the_server(
    server: ServerProcess, tmp_path: Path
) -> None:
    """DESIGN: a CLI command run while the server is up must still work (by talking to the
    server) or say clearly what to do; either way it names the running server, never a
    traceback, and the server is unharmed."""
    members = tmp_path / "members.csv"
    members.write_text(
        "member_id,name,email\nM000001,山田 太郎,taro@example.jp\n", encoding="utf-8"
    )
    done = cli(server.data_dir, "import", "members", str(members), "--json")
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    message = re.sub(r"\s+", " ", done.stderr)
    assert "server" in message, message
    assert str(server.process.pid) in message or server.url in message, message
    if done.returncode == 0:
        # it went through the server: the member is really there, and --json is one document
        assert json.loads(done.stdout)["imported"] == 1, done.stdout
        status = cli(server.data_dir, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["members"] == 1, status.stdout
    else:
        assert done.stdout.strip() == "", done.stdout  # nothing half-printed

    # the server is unharmed and still takes events
    resp = httpx.post(
        f"{server.url}/v1/track",
        json={"userId": "M000001", "event": "Store Visited", "messageId": "after-import"},
        auth=(server.write_key, ""),
    )
    assert resp.status_code == 200, resp.text


def test_acknowledged_events_survive_kill_9(server: ServerProcess) -> None:
    target, threads_n, per_batch = 2000, 4, 25
    acked: set[str] = set()
    sent: set[str] = set()
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def post_batches(t: int) -> None:
        seq = 0
        with httpx.Client(base_url=server.url, auth=(server.write_key, ""), timeout=20) as c:
            while not stop.is_set():
                ids = [f"d-{t}-{seq}-{i}" for i in range(per_batch)]
                seq += 1
                batch = [
                    {
                        "type": "track",
                        "event": "Order Completed",
                        "userId": f"M{t}{seq:05d}",
                        "anonymousId": f"anon-{t}-{seq}",
                        "messageId": m,
                        "properties": {"store_id": f"S{t:03d}", "total": 1200 + i, "品目": "傘"},
                    }
                    for i, m in enumerate(ids)
                ]
                with lock:
                    sent.update(ids)
                try:
                    resp = c.post("/v1/batch", json={"batch": batch})
                except httpx.TransportError:
                    return  # the server is gone: this batch was never acknowledged
                if resp.status_code != 200:
                    with lock:
                        failures.append(f"{resp.status_code} {resp.text[:300]}")
                    return
                with lock:
                    acked.update(ids)

    workers = [
        threading.Thread(target=post_batches, args=(t,), daemon=True) for t in range(threads_n)
    ]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 120
    while True:
        with lock:
            enough = len(acked) >= target
        if enough or failures or not any(w.is_alive() for w in workers):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.001)
    # kill -9 while the posting threads still have requests in flight
    server.kill()
    with lock:
        acknowledged = set(acked)
    stop.set()
    for w in workers:
        w.join(timeout=30)

    assert failures == [], failures[:3]
    assert len(acknowledged) >= target, (
        f"only {len(acknowledged)} acknowledged before the deadline; server log:\n"
        + server.log.read_text()
    )

    with Store(server.data_dir / "tsunagu.duckdb") as store:
        stored_ids = [r[0] for r in store.query("SELECT message_id FROM events")]
    stored = set(stored_ids)
    assert len(stored_ids) == len(stored), "a messageId is stored twice"
    lost = acknowledged - stored
    assert not lost, f"{len(lost)} acknowledged events lost after kill -9, e.g. {sorted(lost)[:5]}"
    assert stored <= sent  # nothing invented

    # the store opens normally afterwards: the CLI sees the events (the stale server.json
    # of the killed server does not block it)
    status = cli(server.data_dir, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["events"] == len(stored)
