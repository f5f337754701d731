"""The CLI as a user runs it: a real process, with and without a running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tsunagu.server import free_port

BIN = str(Path(sys.executable).parent / "tsunagu")


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=120
    )


def test_import_prints_counts_and_json(tmp_path: Path) -> None:
    csv = tmp_path / "stores.csv"
    csv.write_text(
        "store_id,name,lat,lon\nS1,渋谷店,35.66,139.70\nS2,梅田店,999,135.5\n", encoding="utf-8"
    )
    done = run(tmp_path / "d", "import", "stores", str(csv), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["read"], result["imported"], result["rejected"]) == (2, 1, 1)
    assert Path(result["rejects_file"]).exists()
    bad = run(tmp_path / "d", "import", "stores", str(tmp_path / "missing.csv"))
    assert bad.returncode != 0
    assert "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_commands_go_through_the_running_server(tmp_path: Path) -> None:
    data = tmp_path / "d"
    port = free_port()
    server = subprocess.Popen(
        [BIN, "--data-dir", str(data), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        csv = tmp_path / "products.csv"
        csv.write_text("sku,name,price\nP1,靴,5000\nP2,鞄,abc\n", encoding="utf-8")
        done = run(data, "import", "products", str(csv), "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["imported"] == 1
        assert (tmp_path / "products.csv.rejects.csv").exists()
        key = run(data, "sources", "create", "app")
        assert key.returncode == 0, key.stderr
        write_key = key.stdout.strip()
        sent = httpx.post(
            f"http://127.0.0.1:{port}/v1/track",
            json={"userId": "M1", "event": "Product Viewed"},
            auth=(write_key, ""),
        )
        assert sent.status_code == 200
        status = run(data, "status", "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["products"] == 1
        assert json.loads(status.stdout)["events"] == 1
        # A source for the shop's pages, through the server: browsers of its origin only.
        shop = run(data, "sources", "create", "ec", "--origin", "https://Shop.example.jp/")
        assert shop.returncode == 0, shop.stderr
        assert "https://shop.example.jp" in shop.stderr
        page = {"event": "Product Viewed", "userId": "M1", "writeKey": shop.stdout.strip()}
        url = f"http://127.0.0.1:{port}/v1/t"
        for origin, status_code in (("https://shop.example.jp", 200), ("https://x.example", 403)):
            answer = httpx.post(url, content=json.dumps(page), headers={"Origin": origin})
            assert answer.status_code == status_code, answer.text
        moved = run(data, "sources", "origins", "ec", "https://x.example")
        assert moved.returncode == 0, moved.stderr
        answer = httpx.post(url, content=json.dumps(page), headers={"Origin": "https://x.example"})
        assert answer.status_code == 200
        listed = run(data, "sources", "list", "--json")
        ec = next(s for s in json.loads(listed.stdout) if s["name"] == "ec")
        assert ec["origins"] == ["https://x.example"]
        assert ec["refused"] == {"https://x.example": 1}  # once, before it was allowed
        bad = run(data, "sources", "create", "lp", "--origin", "shop.example.jp")
        assert bad.returncode == 2 and "origin" in bad.stderr and "Traceback" not in bad.stderr
        # A campaign's assignment from elsewhere, and its report, through the server.
        made = run(data, "campaign", "create", "DM", "--channel", "dm", "--json")
        assert made.returncode == 0, made.stderr
        campaign_id = json.loads(made.stdout)["campaign_id"]
        mailed = tmp_path / "mailed.csv"
        mailed.write_text("user_id,variant\nM1,catalog\nM404,control\n", encoding="utf-8")
        assigned = run(data, "campaign", "assign", campaign_id, str(mailed), "--json")
        assert assigned.returncode == 0, assigned.stderr
        assert (
            json.loads(assigned.stdout)["assigned"],
            json.loads(assigned.stdout)["rejected"],
        ) == (1, 1)
        assert "M404" in (tmp_path / "mailed.csv.rejects.csv").read_text(encoding="utf-8")
        report = run(data, "campaign", "report", campaign_id, "--json")
        assert report.returncode == 0, report.stderr
        assert [v["customers"] for v in json.loads(report.stdout)["variants"]] == [1]
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert not (data / "server.json").exists()


def test_identity_match_reads_phones_as_the_default_country_says(tmp_path: Path) -> None:
    records = tmp_path / "orders.csv"
    records.write_text(
        "record_id,name,address,phone\n"
        "A,Blue Door,12 Bleecker St New York,212/555-0134\n"
        "B,Blue Door,12 Bleecker St New York,+1 212-555-0134\n"
        "C,Green Door,12 Bleecker St New York,+1 212-555-0199\n",
        encoding="utf-8",
    )

    def profiles(*extra: str) -> dict[str, str]:
        done = run(tmp_path / f"d{len(extra)}", "identity", "match", str(records), "--json", *extra)
        assert done.returncode == 0, done.stderr
        return {m["record_id"]: m["profile_id"] for m in json.loads(done.stdout)["matches"]}

    # Read as American, 212/555-0134 is +12125550134: the same phone as B's.
    american = profiles("--default-country", "US")
    assert american["A"] == american["B"] != american["C"]
    # Read as Japanese it keeps its national digits, which still meet B's national number.
    japanese = profiles()
    assert japanese["A"] == japanese["B"] != japanese["C"]
    bad = run(tmp_path / "d", "identity", "match", str(records), "--default-country", "XX")
    assert bad.returncode == 2
    assert "default-country" in bad.stderr and "Traceback" not in bad.stderr


def test_a_rules_file_that_does_not_validate_is_named_not_a_traceback(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir()
    (data / "identity-rules.json").write_text('{"default_country": "ZZ"}', encoding="utf-8")
    records = tmp_path / "r.csv"
    records.write_text("record_id,name\n1,Blue Door\n", encoding="utf-8")
    for args in (("identity", "match", str(records)), ("identity", "build"), ("status",)):
        done = run(data, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "default_country" in done.stderr and "Traceback" not in done.stderr
