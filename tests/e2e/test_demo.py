"""`tsunagu demo` as `make demo` runs it: generate, import, resolve identities, serve."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.web.signin import sign_in
from tsunagu.server import free_port

BIN = str(Path(sys.executable).parent / "tsunagu")


def test_demo_serves_the_sample_retailer_with_working_keys(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        demo = subprocess.Popen(
            [
                BIN,
                "--data-dir",
                str(tmp_path / "data"),
                "demo",
                "--customers",
                "300",
                "--days",
                "60",
                "--out",
                str(tmp_path / "files"),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert demo.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        printed = log.read_text()
        write_key = re.search(r"demo write key: (\S+)", printed)
        read_key = re.search(r"demo read API key: (\S+)", printed)
        member = re.search(r"type=user_id&value=(\S+?)'", printed)
        assert write_key and read_key and member, printed
        logins = dict(
            (role, (login, password))
            for role, login, password in re.findall(r"^ +(\w+) +(demo-\w+) / (\S+)$", printed, re.M)
        )
        assert set(logins) == {"admin", "marketer", "analyst", "staff"}, printed
        assert httpx.get(base + "/").status_code == 303  # to sign in
        for role, where in (("marketer", "会員数"), ("staff", "店舗画面")):
            with sign_in(base, *logins[role]) as client:
                home = client.get("/", follow_redirects=True)
                assert home.status_code == 200 and where in home.text, role
        sent = httpx.post(
            base + "/v1/track",
            json={"userId": member.group(1), "event": "Product Viewed"},
            auth=(write_key.group(1), ""),
        )
        assert sent.status_code == 200
        profile = httpx.get(
            base + "/v1/profiles/lookup",
            params={"type": "user_id", "value": member.group(1)},
            headers={"Authorization": f"Bearer {read_key.group(1)}"},
        )
        assert profile.status_code == 200, profile.text
        assert profile.json()["identifiers"]["user_id"] == [member.group(1)]
        # The sample's randomised campaign is there, assigned, with its report.
        report_url = re.search(r"a campaign: +curl -H '[^']+' '([^']+)'", printed)
        assert report_url, printed
        report = httpx.get(
            report_url.group(1), headers={"Authorization": f"Bearer {read_key.group(1)}"}
        )
        assert report.status_code == 200, report.text
        assert [v["variant"] for v in report.json()["variants"]] == ["control", "catalog"]
    finally:
        demo.terminate()
        demo.wait(timeout=30)
