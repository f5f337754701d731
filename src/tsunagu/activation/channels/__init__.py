"""The channels tsunagu sends on, behind one interface: `Channel.send(message) -> Delivery`.

Each is a real protocol: LINE's Messaging API (line.py), SMTP (smtp.py), a signed webhook
(webhook.py), an app push provider (push.py), and a print house's CSV for direct mail
(direct_mail.py). A channel does not decide whether to send (consent, caps, quiet hours:
sends.py); it delivers one message to one address, retrying what the protocol says may be
retried, and says what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

Status = Literal["sent", "failed"]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to one customer on one channel."""

    send_key: str
    """Unique per campaign (or journey step), customer and trigger: a send happens once."""
    retry_key: str
    """The same on every attempt of this send (LINE's X-Line-Retry-Key, a webhook's id)."""
    profile_id: str
    to: str
    """The address on the channel: a LINE user id, an e-mail address, a device id, ..."""
    text: str
    subject: str | None = None
    html: str | None = None
    url: str | None = None
    """The message's link, already carrying its signed token."""
    unsubscribe_url: str | None = None
    open_url: str | None = None
    """An image whose loading records "Message Opened" (e-mail's HTML part carries it)."""
    campaign_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """What a channel needs beyond the address (a postal address for direct mail)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    status: Status
    attempts: int = 1
    provider_id: str | None = None
    """The provider's id of the message (a Message-ID, LINE's sentMessages id)."""
    error: str | None = None


class Channel(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> Delivery: ...


class Retryable(Exception):
    """An attempt that may be repeated (429, 5xx, a timeout); `after` seconds if the far end
    said so."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


def with_retries(
    attempt: Callable[[], str | None],
    *,
    tries: int = 4,
    first_wait: float = 0.5,
    max_wait: float = 8.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Delivery:
    """Run `attempt` until it returns (the provider's id) or raises something other than
    `Retryable`, waiting twice as long each time (or as long as the far end asked)."""
    wait = first_wait
    for n in range(1, tries + 1):
        try:
            return Delivery("sent", attempts=n, provider_id=attempt())
        except Retryable as exc:
            if n == tries:
                return Delivery("failed", attempts=n, error=str(exc))
            sleep(min(max_wait, exc.after if exc.after is not None else wait))
            wait *= 2
        except Failed as exc:
            return Delivery("failed", attempts=n, error=str(exc))
    raise AssertionError("unreachable")


class Failed(Exception):
    """An attempt that must not be repeated (a 4xx other than 429: the request is wrong)."""


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> httpx.Response:
    """One POST; 429, 5xx and no answer are `Retryable`, other answers of 300 and up `Failed`."""
    try:
        answer = httpx.post(
            url, content=body, headers={"content-type": "application/json", **headers},
            timeout=timeout,
        )  # fmt: skip
    except httpx.HTTPError as exc:
        raise Retryable(f"{type(exc).__name__}: {exc}") from None
    if answer.status_code == 429 or answer.status_code >= 500:
        after = answer.headers.get("retry-after")
        raise Retryable(
            f"{url} answered {answer.status_code}",
            after=float(after) if after and after.isdigit() else None,
        )
    if answer.status_code >= 300:
        raise Failed(f"{url} answered {answer.status_code}: {answer.text[:300]}")
    return answer


def configured(settings: Any) -> dict[str, Channel]:
    """The channels the settings give what they need (a token, a host, a URL); direct mail
    always (its files go to the data dir's direct-mail/)."""
    from tsunagu.activation.channels.direct_mail import DirectMail

    out: dict[str, Channel] = {"dm": DirectMail(directory=settings.data_dir / "direct-mail")}
    if settings.line_channel_access_token:
        from tsunagu.activation.channels.line import LineChannel

        out["line"] = LineChannel(
            access_token=settings.line_channel_access_token, api_base=settings.line_api_base
        )
    if settings.smtp_host and settings.mail_from:
        from tsunagu.activation.channels.smtp import SmtpChannel

        out["email"] = SmtpChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            user=settings.smtp_user,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            sender=settings.mail_from,
            sender_name=settings.mail_from_name,
        )
    if settings.webhook_url and settings.webhook_secret:
        from tsunagu.activation.channels.webhook import WebhookChannel

        out["webhook"] = WebhookChannel(url=settings.webhook_url, secret=settings.webhook_secret)
    if settings.push_api_base and settings.push_token:
        from tsunagu.activation.channels.push import FcmPush

        out["push"] = FcmPush(
            api_base=settings.push_api_base,
            project=settings.push_project,
            token=settings.push_token,
        )
    return out
