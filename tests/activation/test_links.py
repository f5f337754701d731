"""Link tokens: signed by the data dir's secret, naming the send and the customer, expiring."""

from __future__ import annotations

import time

from tsunagu.activation import links

SECRET = b"k" * 32


def test_a_token_holds_until_it_expires_and_only_with_our_secret() -> None:
    now = time.time()
    token = links.sign(SECRET, "cmp_1:send:p1", ("user_id", "M1"), now=now, lifetime=60)
    got = links.verify(SECRET, token, now=now + 59)
    assert got is not None and got.send_key == "cmp_1:send:p1"
    assert got.identifier == ("user_id", "M1")
    assert links.verify(SECRET, token, now=now + 61) is None  # expired
    assert links.verify(b"x" * 32, token, now=now) is None  # not our secret
    body, mac = token.split(".", 1)
    altered = body[:-1] + ("A" if body[-1] != "A" else "B")
    assert links.verify(SECRET, f"{altered}.{mac}", now=now) is None
    assert links.verify(SECRET, "garbage", now=now) is None
