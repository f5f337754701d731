"""Customers: find one by any identifier, then their profile — the cross-channel timeline
(channel, store, Japan time), identifiers, traits, fan level, LTV and consent per channel — and,
for an admin, erase them (typed confirmation)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from tsunagu.activation.protections import reach
from tsunagu.analytics.fans import level_of, load_fan_rules
from tsunagu.analytics.ltv import prediction_of
from tsunagu.api.deps import SettingsDep, StoreDep
from tsunagu.catalog.overview import store_names
from tsunagu.clienteling import find_customer
from tsunagu.events.model import Channel
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.identity.erasure import erase_profile
from tsunagu.identity.profiles import get_profile, timeline
from tsunagu.identity.rules import load_rules
from tsunagu.web.i18n import words
from tsunagu.web.session import DASHBOARD, check_csrf, language, page, signed_in

router = APIRouter(include_in_schema=False)
CONSENT_CHANNELS = ("line", "email", "push", "dm")
PAGE = 50

words({
    "pr_title": ("顧客検索", "Find a customer"),
    "pr_hint": (
        "メールアドレス・電話番号・会員カード・会員番号・TYPE:VALUE（例: device_id:abc）",
        "E-mail, phone, member card, member id or TYPE:VALUE (e.g. device_id:abc)",
    ),
    "pr_profile": ("顧客プロフィール", "Customer profile"),
    "pr_identifiers": ("識別子", "Identifiers"),
    "pr_traits": ("属性", "Traits"),
    "pr_consent": ("配信の同意", "Consent"),
    "pr_yes": ("同意あり", "Opted in"),
    "pr_no": ("同意なし", "Not opted in"),
    "pr_withdrawn": ("配信停止", "Withdrawn"),
    "pr_unreachable": ("宛先なし", "No address"),
    "pr_timeline": ("チャネル横断のタイムライン", "Timeline across channels"),
    "pr_when": ("日時（JST）", "When (JST)"),
    "pr_what": ("内容", "What"),
    "pr_where": ("場所", "Where"),
    "pr_older": ("さらに古いイベント", "Older events"),
    "pr_newest": ("最新に戻る", "Back to the newest"),
    "pr_no_events": ("イベントはありません", "No events"),
    "pr_no_fan": ("未算出", "Not computed"),
    "pr_purchases": ("予測購入回数", "Predicted purchases"),
    "pr_erase": ("この顧客を削除（個人情報の消去）", "Erase this customer (personal data)"),
    "pr_erase_note": (
        "すべてのチャネルのイベント・属性・識別子を削除し、再取込を抑止します。元に戻せません。"
        "確認のため顧客 ID を入力してください。",
        "Deletes every event, trait and identifier on every channel and suppresses re-imports. "
        "It cannot be undone. Type the profile id to confirm.",
    ),
    "pr_erase_button": ("削除する", "Erase"),
    "pr_erase_mismatch": ("入力した ID が一致しません", "The id typed does not match"),
    "pr_erased": ("顧客を削除しました", "The customer was erased"),
    "pr_rows": ("削除した行", "Rows deleted"),
    "pr_push": ("アプリ通知", "App push"),
    "pr_dm": ("DM（郵送）", "Direct mail"),
})  # fmt: skip


@router.get("/profiles")
def search_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=1000)] = "",
) -> Response:
    session = signed_in(request, DASHBOARD)
    context: dict[str, Any] = {"session": session, "nav": "profiles", "q": q, "error": None}
    if not q.strip():
        return page(request, "profiles.html", context)
    try:
        profile_id = find_customer(store=store, rules=load_rules(settings.data_dir), q=q)
    except (NotFound, InvalidInput) as exc:
        status = 404 if isinstance(exc, NotFound) else 400
        return page(request, "profiles.html", {**context, "error": exc.message}, status_code=status)
    return RedirectResponse(f"/profiles/{profile_id}", status_code=303)


@router.get("/profiles/{profile_id}")
def profile_page(
    request: Request,
    profile_id: str,
    store: StoreDep,
    settings: SettingsDep,
    channel: Channel | None = None,
    before: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    session = signed_in(request, DASHBOARD)
    try:
        profile = get_profile(
            store=store, profile_id=profile_id, rules=load_rules(settings.data_dir)
        )
        events = timeline(
            store=store,
            profile_id=profile_id,
            limit=PAGE,
            before=before,
            channel=channel.value if channel else None,
        )
    except (NotFound, InvalidInput) as exc:
        status = 404 if isinstance(exc, NotFound) else 400
        context = {"session": session, "nav": "profiles", "q": "", "error": exc.message}
        return page(request, "profiles.html", context, status_code=status)
    consent = {
        ch: reach(store, [profile_id], ch, "marketing")[profile_id] for ch in CONSENT_CHANNELS
    }
    fan = level_of(store, profile_id)
    lang = language(request)
    names = {
        lv.level: lv.name if lang == "ja" else lv.name_en
        for lv in load_fan_rules(settings.data_dir).levels
    }
    return page(
        request,
        "profile.html",
        {
            "session": session,
            "nav": "profiles",
            "p": profile,
            "events": events,
            "fan": fan,
            "fan_name": names.get(fan["level"]) if fan else None,
            "ltv": prediction_of(store, profile_id),
            "consent": consent,
            "stores": dict(store_names(store=store)),
            "channel": channel.value if channel else "",
            "before": before,
            "channels": [c.value for c in Channel],
            "may_erase": session.user.role == "admin",
        },  # fmt: skip
    )


@router.post("/profiles/{profile_id}/erase")
def erase_page(
    request: Request,
    profile_id: str,
    store: StoreDep,
    settings: SettingsDep,
    csrf: Annotated[str, Form(max_length=200)] = "",
    confirm: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    session = signed_in(request, ("admin",))
    check_csrf(session, csrf)
    if confirm.strip() != profile_id:
        return RedirectResponse(f"/profiles/{profile_id}?erase=mismatch", status_code=303)
    try:
        report = erase_profile(
            store=store, rules=load_rules(settings.data_dir), profile_id=profile_id
        )
    except NotFound as exc:
        context = {"session": session, "nav": "profiles", "q": "", "error": exc.message}
        return page(request, "profiles.html", context, status_code=404)
    return page(
        request,
        "erased.html",
        {"session": session, "nav": "profiles", "report": report},
    )
