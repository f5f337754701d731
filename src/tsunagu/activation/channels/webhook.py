"""A webhook: the message as JSON POSTed to the retailer's endpoint, signed.

Headers: `X-Tsunagu-Id` (the retry key, the same on every attempt: the receiver drops what it
saw), `X-Tsunagu-Timestamp` (Unix seconds) and `X-Tsunagu-Signature: v1=<hex>`, the
HMAC-SHA256 of `"{timestamp}.{body}"` with the shared secret (a receiver checks it in constant
time and refuses old timestamps, so a captured request cannot be replayed later). 5xx, 429 and
timeouts are retried with back-off; other answers are final.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import orjson

from tsunagu.activation.channels import Delivery, OutgoingMessage, post_json, with_retries


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "v1=" + digest.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, given: str, *, tolerance: float = 300) -> bool:
    """What a receiver does (and tsunagu's tests)."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(signature(secret, timestamp, body), given)


class WebhookChannel:
    name = "webhook"

    def __init__(
        self,
        *,
        url: str,
        secret: str,
        timeout: float = 10,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url, self.secret, self.timeout, self._sleep = url, secret, timeout, sleep

    def send(self, message: OutgoingMessage) -> Delivery:
        body = orjson.dumps(
            {
                "id": message.retry_key,
                "send_key": message.send_key,
                "campaign_id": message.campaign_id,
                "profile_id": message.profile_id,
                "to": message.to,
                "text": message.text,
                "subject": message.subject,
                "url": message.url,
                **({"extra": message.extra} if message.extra else {}),
            }
        )

        def attempt() -> str | None:
            stamp = str(int(time.time()))
            headers = {
                "x-tsunagu-id": message.retry_key,
                "x-tsunagu-timestamp": stamp,
                "x-tsunagu-signature": signature(self.secret, stamp, body),
            }
            answer = post_json(self.url, body, headers, self.timeout)
            return answer.headers.get("x-request-id")

        return with_retries(attempt, sleep=self._sleep)
