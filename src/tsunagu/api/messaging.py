"""What customers' messages need over HTTP: LINE's webhook (POST /v1/line/webhook, signed by
LINE, no API key), a nonce for LINE's account-link dialog (POST /v1/line/link-nonce, admin),
the unsubscribe link of every e-mail (GET shows a button, POST, as RFC 8058's one-click
does, records it; the signed token is the key), and the image in every HTML e-mail whose
loading records that it was opened (GET /v1/open, the same token)."""

from __future__ import annotations

import base64
import dataclasses
import html
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from tsunagu.activation import line_webhook, links
from tsunagu.activation.protections import record_consent
from tsunagu.activation.sends import EVENT_CHANNEL
from tsunagu.api.deps import AdminKey, SettingsDep, StoreDep
from tsunagu.events.normalize import normalize
from tsunagu.exceptions import NotConfigured
from tsunagu.store import utcnow

router = APIRouter(prefix="/v1", tags=["messaging"])


class NonceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    member_id: str = Field(min_length=1, max_length=100)


@router.post("/line/webhook", summary="LINE's webhook (follow, unfollow, account link, ...)")
async def line_webhook_receive(
    request: Request, store: StoreDep, settings: SettingsDep
) -> dict[str, Any]:
    if not settings.line_channel_secret:
        raise NotConfigured(
            "line_channel_secret: TSUNAGU_LINE_CHANNEL_SECRET is not set",
            field="line_channel_secret",
        )
    body = await request.body()
    done = await run_in_threadpool(
        line_webhook.receive,
        store=store,
        body=body,
        signature=request.headers.get("x-line-signature"),
        secret=settings.line_channel_secret,
    )
    return dataclasses.asdict(done)


@router.post("/line/link-nonce", summary="A nonce for LINE's account-link dialog")
def line_link_nonce(body: NonceRequest, store: StoreDep, _: AdminKey) -> dict[str, Any]:
    """After LINE gave the shop a link token for a logged-in member: send the member to
    `https://access.line.me/dialog/bot/accountLink?linkToken=...&nonce=NONCE`."""
    return {"nonce": line_webhook.link_nonce(store=store, member_id=body.member_id)}


_PAGE = """<!doctype html><html lang="ja"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto; padding: 0 1rem">
<h1 style="font-size: 1.3rem">{title}</h1><p>{text}</p>{form}</body></html>"""


class _NoLink(Exception):
    """The unsubscribe link's token is missing, broken or not ours."""


def _gone() -> HTMLResponse:
    return HTMLResponse(
        _PAGE.format(
            title="このリンクは無効です",
            text="配信停止のリンクが正しくないか、古くなっています。メールに記載のリンクをもう一度"
            "お試しください。 (This unsubscribe link is not valid.)",
            form="",
        ),
        status_code=404,
    )


_UNSUBSCRIBE_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "Not a valid or current unsubscribe link (a page saying so)",
          "content": {"text/html": {}}},
}  # fmt: skip


def _token(request: Request) -> links.LinkToken:
    token = request.query_params.get(links.PARAM)
    found = links.verify(request.app.state.link_secret, token) if token else None
    if found is None:
        raise _NoLink
    return found


_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A transparent 1×1 GIF."""


@router.get("/open", response_class=Response, summary="An e-mail was opened (a 1×1 image)")
def opened(request: Request, store: StoreDep) -> Response:
    """Records "Message Opened" on the customer's timeline, once per send (a mail reader that
    loads the image again adds nothing); answers the image whatever the token, so a mail never
    shows a broken picture."""
    token = request.query_params.get(links.PARAM)
    found = links.verify(request.app.state.link_secret, token) if token else None
    sent = (
        store.query("SELECT campaign_id, channel FROM sends WHERE send_key = ?", [found.send_key])
        if found
        else []
    )
    if found and sent:
        campaign_id, channel = sent[0]
        message = links.attach({
            "type": "track", "event": "Message Opened",
            "messageId": f"Message Opened:{found.send_key}",
            "properties": {"send_key": found.send_key, "campaign_id": campaign_id,
                           "channel": channel},
            "context": {"channel": EVENT_CHANNEL.get(channel, channel)},
        }, found)  # fmt: skip
        store.insert_events([normalize(message, received_at=utcnow(), source="tsunagu")])
    return Response(_PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@router.get(
    "/unsubscribe",
    response_class=HTMLResponse,
    summary="Unsubscribe (asks first)",
    responses=_UNSUBSCRIBE_RESPONSES,
)
def unsubscribe_page(request: Request) -> HTMLResponse:
    try:
        _token(request)  # a link scanner's GET changes nothing
    except _NoLink:
        return _gone()
    form = (
        f'<form method="post" action="?{links.PARAM}={html.escape(request.query_params[links.PARAM])}">'
        '<button type="submit" name="List-Unsubscribe" value="One-Click" '
        'style="font-size: 1rem; padding: .6rem 1.2rem">配信を停止する</button></form>'
    )
    return HTMLResponse(
        _PAGE.format(
            title="メール配信の停止", text="このアドレスへのお知らせメールを停止します。", form=form
        )
    )


@router.post(
    "/unsubscribe",
    response_class=HTMLResponse,
    summary="Unsubscribe (one click)",
    responses=_UNSUBSCRIBE_RESPONSES,
)
def unsubscribe(request: Request, store: StoreDep) -> HTMLResponse:
    try:
        token = _token(request)
    except _NoLink:
        return _gone()
    found = store.query("SELECT channel FROM sends WHERE send_key = ?", [token.send_key])
    channel = found[0][0] if found else "email"
    record_consent(store, token.identifier, channel, ("marketing",), False, utcnow(), "unsubscribe")
    return HTMLResponse(
        _PAGE.format(title="配信を停止しました", text="今後、お知らせはお送りしません。", form="")
    )
