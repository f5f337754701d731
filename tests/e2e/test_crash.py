"""Crash safety, measured: `tsunagu serve` killed with SIGKILL at random moments while clients
send events and redeem coupons, and a bulk import killed midway. What was acknowledged is
stored exactly once; what was not is retried by its client and stored once too; an import run
again after its kill ends with the store one clean import makes.

(A journey killed mid-send is tests/e2e/test_journey_restart.py.)
"""

from __future__ import annotations

import json
import random
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.e2e.processes import ENV, TSUNAGU, ServerProcess, cli, new_source, start_server
from tsunagu.store import Store

KILLS = 20
PER_BATCH = 50


def _retrying_sender(
    server: ServerProcess, sent: list[str], acked: set[str], stop: threading.Event, name: str
) -> None:
    """Send batches; a batch not acknowledged (the server died) is sent again, the same
    messageIds, until it is."""
    number = 0
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            ids = [f"{name}-{number}-{i}" for i in range(PER_BATCH)]
            sent.extend(ids)
            batch = [{"type": "track", "event": "Product Viewed", "anonymousId": f"{name}-{number}",
                      "messageId": m, "properties": {"sku": "SKU-1"}} for m in ids]  # fmt: skip
            while True:
                try:
                    answer = client.post(
                        server.url + "/v1/batch", json={"batch": batch}, auth=(server.write_key, "")
                    )
                except httpx.TransportError:
                    time.sleep(0.05)  # the server is down: try again when it is back
                    continue
                if answer.status_code == 200:
                    acked.update(ids)
                    break
                assert answer.status_code == 503, answer.text  # only "busy" may be retried
                time.sleep(0.05)
            number += 1


def test_acknowledged_events_are_stored_once_across_20_sigkills(server: ServerProcess) -> None:
    rng = random.Random(20261204)
    sent: list[str] = []
    acked: set[str] = set()
    stop = threading.Event()
    senders = [
        threading.Thread(target=_retrying_sender, args=(server, sent, acked, stop, f"c{n}"))
        for n in range(3)
    ]
    for thread in senders:
        thread.start()
    acked_at_kill = []
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.2, 1.0))
            acked_at_kill.append(len(acked))
            server.restart()  # SIGKILL, then up again on the same data dir
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in senders:
            thread.join(timeout=60)
    server.stop()
    with Store(server.data_dir / "tsunagu.duckdb") as store:
        stored = Counter(m for (m,) in store.query("SELECT message_id FROM events"))
    duplicates = {m: n for m, n in stored.items() if n > 1}
    lost = acked - set(stored)
    print(
        f"\ncrash test: {KILLS} kills, {len(sent)} sent, {len(acked)} acknowledged, "
        f"{len(stored)} stored, {len(lost)} lost, {len(duplicates)} duplicates"
    )
    assert not lost
    assert not duplicates
    assert set(stored) <= set(sent)
    assert len(acked) == len(sent)  # every batch got through in the end
    assert len(set(acked_at_kill)) > KILLS // 2  # the kills landed while events came in


def _receipt(n: int) -> str:
    return f"R-{n:05d}"


def test_coupon_redemptions_in_flight_are_neither_lost_nor_doubled(tmp_path: Path) -> None:
    data = tmp_path / "data"
    members = tmp_path / "members.csv"
    members.write_text(
        "member_id,name\n" + "".join(f"M{n:04d},会員{n}\n" for n in range(60)), encoding="utf-8"
    )
    assert cli(data, "import", "members", str(members)).returncode == 0
    assert cli(data, "identity", "build").returncode == 0
    admin = cli(data, "keys", "create", "ops", "--scope", "admin").stdout.strip().splitlines()[-1]
    till = cli(data, "keys", "create", "till", "--scope", "pos").stdout.strip().splitlines()[-1]
    server = start_server(data, tmp_path / "server.log", new_source(data))
    try:
        _redeem_across_kills(server, admin, till)
    finally:
        server.kill()


def _redeem_across_kills(server: ServerProcess, admin: str, till: str) -> None:
    data = server.data_dir
    auth = {"Authorization": f"Bearer {admin}"}
    stores = httpx.put(server.url + "/v1/stores/S001", json={"name": "渋谷店"}, headers=auth)
    assert stores.status_code == 200, stores.text
    campaign = httpx.post(server.url + "/v1/campaigns", headers=auth, json={
        "name": "500円引き", "channel": "line", "control_share": 0.0,
        "coupon": {"value_yen": 500, "valid_from": "2020-01-01", "valid_to": "2099-12-31"},
    }).json()  # fmt: skip
    profiles = [
        httpx.get(server.url + "/v1/profiles/lookup", params={"type": "user_id", "value": f"M{n:04d}"},
                  headers=auth).json()["profile_id"]
        for n in range(60)
    ]  # fmt: skip
    issued = httpx.post(
        server.url + f"/v1/campaigns/{campaign['campaign_id']}/coupons",
        json={"profile_ids": profiles},
        headers=auth,
    )
    assert issued.status_code == 200, issued.text
    codes = [c["code"] for c in issued.json()["coupons"]]
    answers: dict[str, str] = {}  # code → redemption_id the till was given
    lock = threading.Lock()

    def till_worker(mine: list[tuple[int, str]]) -> None:
        with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {till}"}) as client:
            for n, code in mine:
                while True:  # the till retries the same receipt until it hears an answer
                    try:
                        answer = client.post(
                            server.url + f"/v1/coupons/{code}/redeem",
                            json={
                                "store_id": "S001",
                                "receipt_id": _receipt(n),
                                "amount_yen": 3000,
                            },
                        )
                    except httpx.TransportError:
                        time.sleep(0.05)
                        continue
                    assert answer.status_code in (200, 503), answer.text
                    if answer.status_code == 200:
                        with lock:
                            answers[code] = answer.json()["redemption_id"]
                        break
                time.sleep(0.03)

    work = list(enumerate(codes))
    tills = [threading.Thread(target=till_worker, args=(work[k::4],)) for k in range(4)]
    for thread in tills:
        thread.start()
    rng = random.Random(7)
    for _ in range(5):
        time.sleep(rng.uniform(0.1, 0.4))
        server.restart()
    for thread in tills:
        thread.join(timeout=120)
    assert len(answers) == len(codes)
    with httpx.Client(headers={"Authorization": f"Bearer {till}"}) as client:
        for code, redemption in answers.items():  # what the till was told is what is stored
            coupon = client.get(server.url + f"/v1/coupons/{code}").json()
            assert coupon["redemption_id"] == redemption, coupon
    server.stop()
    with Store(data / "tsunagu.duckdb") as store:
        redeemed = store.query(
            "SELECT count(*), count(DISTINCT message_id) FROM events WHERE event = 'Coupon Redeemed'"
        )[0]
    assert redeemed == (len(codes), len(codes))  # one event each: none lost, none doubled


def _events_file(path: Path, lines: int) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for n in range(lines):
            fh.write(json.dumps({
                "type": "track", "event": "Product Viewed", "messageId": f"imp-{n}",
                "anonymousId": f"v{n % 5000}", "timestamp": f"2026-11-{1 + n % 28:02d}T10:00:00Z",
                "properties": {"sku": f"SKU-{n % 300}", "price": 1000 + n % 7},
                "context": {"channel": "web"},
            }, ensure_ascii=False) + "\n")  # fmt: skip


def _events(data: Path) -> list[tuple[object, ...]]:
    """The stored events, as an import makes them (the time it ran, receivedAt, aside)."""
    with Store(data / "tsunagu.duckdb") as store:
        rows = store.query(
            "SELECT message_id, type, event, anonymous_id, channel, timestamp, source, "
            "raw::VARCHAR FROM events ORDER BY message_id"
        )
    return [(*row[:-1], {k: v for k, v in json.loads(str(row[-1])).items() if k != "receivedAt"})
            for row in rows]  # fmt: skip


def test_an_import_killed_midway_and_run_again_equals_one_clean_import(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    _events_file(events, 300_000)
    clean = tmp_path / "clean"
    started = time.monotonic()
    assert cli(clean, "import", "events", str(events), timeout=300).returncode == 0
    took = time.monotonic() - started
    expected = _events(clean)
    assert len(expected) == 300_000

    data = tmp_path / "data"
    assert cli(data, "sources", "create", "web").returncode == 0  # the store exists
    killed_at = []
    for share in (0.3, 0.55):  # of the time a whole import takes: midway
        delay = took * share
        process = subprocess.Popen(
            [str(TSUNAGU), "--data-dir", str(data), "import", "events", str(events)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV,
        )  # fmt: skip
        time.sleep(delay)
        assert process.poll() is None, "the import ended before the kill"
        process.kill()
        process.wait(timeout=30)
        with Store(data / "tsunagu.duckdb") as store:
            killed_at.append(store.scalar("SELECT count(*) FROM events"))
    again = cli(data, "import", "events", str(events), "--json", timeout=300)
    assert again.returncode == 0, again.stderr
    print(f"\nimport ({took:.1f} s) killed twice midway, with {killed_at} of 300,000 stored")
    assert max(killed_at) < 300_000  # killed midway
    assert _events(data) == expected
