"""Each channel against a real server on loopback: LINE's API, SMTP (aiosmtpd), a webhook
receiver, an FCM-shaped push endpoint; direct mail's file as a print house opens it."""

from __future__ import annotations

import csv
import dataclasses
import email
import email.policy
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.activation.servers import line_api, webhook_receiver
from tsunagu.activation.channels import OutgoingMessage
from tsunagu.activation.channels.direct_mail import DirectMail
from tsunagu.activation.channels.line import LineChannel
from tsunagu.activation.channels.push import FcmPush
from tsunagu.activation.channels.smtp import SmtpChannel
from tsunagu.activation.channels.webhook import WebhookChannel
from tsunagu.server import free_port


def _message(to: str, **extra: Any) -> OutgoingMessage:
    return OutgoingMessage(
        send_key=f"cmp_1:send:{to}",
        retry_key=str(uuid.uuid4()),
        profile_id="p_1",
        to=to,
        text="秋の新作が入荷しました。店頭でもお試しいただけます。",
        subject="【つなぐ】秋の新作のご案内",
        url="https://shop.example.jp/new?tg=abc",
        unsubscribe_url="http://127.0.0.1:8000/v1/unsubscribe?tg=abc",
        campaign_id="cmp_1",
        **extra,
    )


def test_line_push_sends_once_per_retry_key() -> None:
    with line_api() as api:
        line = LineChannel(access_token="line-token", api_base=api.url)
        message = _message("U" + "a" * 32)
        done = line.send(message)
        assert done.status == "sent" and done.attempts == 1 and done.provider_id
        # The same send again (a retry after a crash): LINE answers 409, it was delivered.
        again = line.send(message)
        assert again.status == "sent"
        assert len(api.received) == 1
        sent = api.received[0]
        assert sent["to"] == message.to and sent["retry_key"] == message.retry_key
        assert sent["messages"][0]["text"].endswith(message.url or "")
        # Too many requests twice: waited and tried again, with the same key.
        api.fail_next = [429, 429]
        busy = line.send(_message("U" + "b" * 32))
        assert busy.status == "sent" and busy.attempts == 3
        api.fail_next = [500, 500, 500, 500]
        down = line.send(_message("U" + "c" * 32))
        assert down.status == "failed" and "500" in (down.error or "")
        wrong = LineChannel(access_token="other", api_base=api.url).send(_message("U" + "d" * 32))
        assert wrong.status == "failed" and wrong.attempts == 1 and "401" in (wrong.error or "")
        assert len(api.received) == 2


def test_line_multicast_reaches_many_in_one_request() -> None:
    with line_api() as api:
        line = LineChannel(access_token="line-token", api_base=api.url)
        users = [f"U{n:032x}" for n in range(500)]
        key = str(uuid.uuid4())
        assert line.multicast(users, "セールのお知らせ", key).status == "sent"
        assert line.multicast(users, "セールのお知らせ", key).status == "sent"  # 409
        assert [len(r["to"]) for r in api.received] == [500]
        with pytest.raises(ValueError):
            line.multicast(users + ["U1"], "x", key)


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append(envelope)
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append(parsed)  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_email_over_smtp_in_japanese(smtp_server: tuple[_Inbox, int]) -> None:
    inbox, port = smtp_server
    mail = SmtpChannel(host="127.0.0.1", port=port, starttls=False, sender="info@shop.example.jp",
                       sender_name="つなぐストア")  # fmt: skip
    message = _message("yamada@example.jp")
    done = mail.send(message)
    assert done.status == "sent" and done.provider_id
    got = inbox.messages[0]
    assert got["Subject"] == "【つなぐ】秋の新作のご案内"
    assert "=?utf-8?" in inbox.envelopes[0].original_content.decode("ascii").lower()
    assert str(got["From"]) == "つなぐストア <info@shop.example.jp>"
    assert got["List-Unsubscribe"] == f"<{message.unsubscribe_url}>"
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    body = got.get_body(("plain",))
    assert body is not None and "秋の新作が入荷しました" in body.get_content()
    assert message.url in body.get_content()
    assert inbox.envelopes[0].rcpt_tos == ["yamada@example.jp"]
    rich = dataclasses.replace(message, html="<p>秋の<b>新作</b></p>")
    assert mail.send(rich).status == "sent"
    part = inbox.messages[1].get_body(("html",))
    assert part is not None and "<b>新作</b>" in part.get_content()


def test_email_to_a_server_that_is_not_there_fails_after_retries() -> None:
    mail = SmtpChannel(host="127.0.0.1", port=free_port(), starttls=False,
                       sender="info@shop.example.jp", timeout=2)  # fmt: skip
    started = time.monotonic()
    done = mail.send(_message("a@example.jp"))
    assert done.status == "failed" and done.attempts == 4
    assert time.monotonic() - started < 30


def test_webhooks_are_signed_and_retried() -> None:
    with webhook_receiver("hook-secret") as hook:
        channel = WebhookChannel(url=hook.url + "/hook", secret="hook-secret", timeout=1,
                                 sleep=lambda s: None)  # fmt: skip
        hook.fail_next = [503]
        done = channel.send(_message("p_1"))
        assert done.status == "sent" and done.attempts == 2
        hook.delay_next = [2.5]  # longer than the timeout: tried again
        slow = channel.send(_message("p_2"))
        assert slow.status == "sent" and slow.attempts == 2
        assert [r["to"] for r in hook.received] == ["p_1", "p_2"]
        assert hook.received[0]["text"].startswith("秋の新作")
        forged = WebhookChannel(url=hook.url + "/hook", secret="guess", sleep=lambda s: None)
        refused = forged.send(_message("p_3"))
        assert (
            refused.status == "failed" and refused.attempts == 1 and "401" in (refused.error or "")
        )


def test_app_push_in_fcm_shape() -> None:
    with webhook_receiver("push-token") as provider:
        push = FcmPush(api_base=provider.url, project="shop", token="push-token",
                       sleep=lambda s: None)  # fmt: skip
        provider.fail_next = [500]
        done = push.send(_message("device-123"))
        assert done.status == "sent" and done.attempts == 2
        assert done.provider_id == "projects/shop/messages/1"
        got = provider.received[0]
        assert got["token"] == "device-123"
        assert got["notification"] == {"title": "【つなぐ】秋の新作のご案内",
                                       "body": "秋の新作が入荷しました。店頭でもお試しいただけます。"}  # fmt: skip
        assert got["data"]["url"].endswith("tg=abc")


def test_direct_mail_rows_for_the_print_house(tmp_path: Path) -> None:
    dm = DirectMail(directory=tmp_path / "direct-mail")
    address = {"name": "中川　花子", "postcode": "4670803", "prefecture": "愛知県",
               "address": "名古屋市瑞穂区瑞穂通５－１０－１３ ヴィラ白樺304"}  # fmt: skip
    threads = [
        threading.Thread(target=lambda n=n: dm.send(_message(f"M{n}", extra=address)))
        for n in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    no_address = dm.send(_message("M99", extra={"name": "x", "postcode": "12"}))
    assert no_address.status == "failed" and "postcode" in (no_address.error or "")
    raw = (tmp_path / "direct-mail" / "cmp_1.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel reads it as UTF-8
    rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    assert len(rows) == 20
    assert rows[0]["郵便番号"] == "〒467-0803"
    assert (rows[0]["市区町村"], rows[0]["住所1"], rows[0]["住所2"]) == (
        "名古屋市瑞穂区", "瑞穂通5-10-13", "ヴィラ白樺304",
    )  # fmt: skip
    assert rows[0]["宛名"] == "中川　花子 様"
