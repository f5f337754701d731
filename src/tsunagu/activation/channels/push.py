"""App push through a provider, in the shape of Firebase Cloud Messaging's HTTP v1 API:
`POST {api_base}/v1/projects/{project}/messages:send` with a bearer token and
`{"message": {"token", "notification": {"title", "body"}, "data": {...}}}`. The device's token
is the address. A provider gateway of another vendor takes the same adapter's shape: a class
with `name` and `send`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from tsunagu.activation.channels import Delivery, OutgoingMessage, post_json, with_retries


class FcmPush:
    name = "push"

    def __init__(
        self,
        *,
        api_base: str,
        project: str,
        token: str,
        timeout: float = 10,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = f"{api_base.rstrip('/')}/v1/projects/{project}/messages:send"
        self.token, self.timeout, self._sleep = token, timeout, sleep

    def send(self, message: OutgoingMessage) -> Delivery:
        data = {"send_key": message.send_key, "retry_key": message.retry_key}
        if message.url:
            data["url"] = message.url
        body = orjson.dumps(
            {
                "message": {
                    "token": message.to,
                    "notification": {"title": message.subject or "", "body": message.text},
                    "data": data,
                }
            }
        )
        headers = {"authorization": f"Bearer {self.token}"}

        def attempt() -> str | None:
            answer = post_json(self.url, body, headers, self.timeout)
            try:
                return str(answer.json().get("name"))
            except ValueError:
                return None

        return with_retries(attempt, sleep=self._sleep)
