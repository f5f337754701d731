"""LINE Messaging API push and multicast, through line-bot-sdk.

Every request carries an `X-Line-Retry-Key` kept with the send: LINE accepts a key once, so a
retry after a timeout or a crash never sends twice, and its 409 ("already accepted") means the
first attempt was delivered. 429 and 5xx are retried with back-off; other 4xx are failures.
"""

from __future__ import annotations

from collections.abc import Sequence

import urllib3
from linebot.v3.messaging import (
    ApiClient,
    ApiException,
    Configuration,
    MessagingApi,
    MulticastRequest,
    PushMessageRequest,
    TextMessage,
)

from tsunagu.activation.channels import Delivery, Failed, OutgoingMessage, Retryable, with_retries

MULTICAST_MAX = 500
"""LINE's limit of recipients per multicast request."""
TEXT_MAX = 5000


def text_of(message: OutgoingMessage) -> str:
    text = message.text if not message.url else f"{message.text}\n{message.url}"
    return text[:TEXT_MAX]


class LineChannel:
    name = "line"
    multicast_max = MULTICAST_MAX

    def __init__(
        self, *, access_token: str, api_base: str = "https://api.line.me", timeout: float = 10
    ) -> None:
        self._config = Configuration(host=api_base.rstrip("/"), access_token=access_token)
        self._config.connection_pool_maxsize = 32  # as many as pushes go out at once, and more
        self._timeout = timeout
        # One client (its connection pool is thread-safe): connections are kept, not opened
        # for every push.
        self._client = ApiClient(self._config)

    def send(self, message: OutgoingMessage) -> Delivery:
        request = PushMessageRequest(to=message.to, messages=[TextMessage(text=text_of(message))])

        def attempt() -> str | None:
            answer = self._call(
                lambda: MessagingApi(self._client).push_message_with_http_info(
                    request, x_line_retry_key=message.retry_key, _request_timeout=self._timeout
                )
            )
            return _sent_id(answer)

        return with_retries(attempt)

    def multicast(self, to: Sequence[str], text: str, retry_key: str) -> Delivery:
        """One text to up to 500 users in one request (no per-user link)."""
        if not 1 <= len(to) <= MULTICAST_MAX:
            raise ValueError(f"to: between 1 and {MULTICAST_MAX} users")
        request = MulticastRequest(to=list(to), messages=[TextMessage(text=text[:TEXT_MAX])])

        def attempt() -> str | None:
            self._call(
                lambda: MessagingApi(self._client).multicast_with_http_info(
                    request, x_line_retry_key=retry_key, _request_timeout=self._timeout
                )
            )
            return None

        return with_retries(attempt)

    @staticmethod
    def _call(request):  # type: ignore[no-untyped-def]
        try:
            return request()
        except ApiException as exc:
            if exc.status == 409 and _accepted(exc):
                return None  # this retry key was accepted before: delivered then
            if exc.status == 429 or (exc.status or 0) >= 500:
                raise Retryable(f"LINE answered {exc.status}", after=_retry_after(exc)) from None
            raise Failed(f"LINE answered {exc.status}: {(exc.body or '')[:300]}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Retryable(f"LINE did not answer: {exc}") from None


def _accepted(exc: ApiException) -> bool:
    headers = exc.headers or {}
    return any(k.lower() == "x-line-accepted-request-id" for k in headers)


def _retry_after(exc: ApiException) -> float | None:
    for key, value in (exc.headers or {}).items():
        if key.lower() == "retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _sent_id(answer: object) -> str | None:
    data = getattr(answer, "data", None)
    sent = getattr(data, "sent_messages", None) or []
    return getattr(sent[0], "id", None) if sent else None
