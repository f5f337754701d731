"""The activation screens: segments (the list, and a builder whose count follows the rules as
they change: `POST /v1/segments/preview` from the page), journeys (their state and customers per
step, paused and resumed here), campaigns (the holdout report drawn: each difference with its
95% interval) and coupons (issued and redeemed per store and per campaign).

Pages read through the activation domain; what a page changes goes through the API (the
builder's save) or a form with the session's CSRF token (pause, resume). Admins and marketers
may change things; analysts see the same figures without the buttons.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tsunagu.activation.assignments import variant_counts
from tsunagu.activation.campaigns import get_campaign, list_campaigns
from tsunagu.activation.coupon_tallies import coupons_by_campaign, coupons_by_store
from tsunagu.activation.journey_steps import step_counts
from tsunagu.activation.journeys import list_journeys, set_status
from tsunagu.activation.membership import list_segments
from tsunagu.activation.report import report
from tsunagu.activation.segments import COMPUTED, CONSENTS, MOMENTS
from tsunagu.analytics.vocabulary import vocabulary
from tsunagu.api.deps import SettingsDep, StoreDep, analytics_engine
from tsunagu.catalog.overview import store_names
from tsunagu.events.model import ECOMMERCE_EVENTS, OMO_EVENTS, Channel
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.store import Store
from tsunagu.users import Session
from tsunagu.web import activation_charts
from tsunagu.web.i18n import translator, words
from tsunagu.web.session import DASHBOARD, check_csrf, language, page, signed_in

router = APIRouter(include_in_schema=False)
words({
    # segments
    "seg_title": ("セグメント", "Segments"),
    "seg_none": ("まだセグメントがありません", "No segments yet"),
    "seg_name": ("名前", "Name"),
    "seg_members": ("人数", "Members"),
    "seg_refreshed": ("最終更新", "Last refreshed"),
    "seg_kind": ("条件の種類", "Kind"),
    "seg_csv": ("CSV", "CSV"),
    "seg_saved": ("セグメントを保存しました", "Segment saved"),
    "seg_builder": ("セグメントを作る", "Build a segment"),
    "seg_description": ("説明", "Description"),
    "seg_match": ("次の条件", "Customers who meet"),
    "seg_all": ("すべてを満たす", "all of"),
    "seg_any": ("いずれかを満たす", "any of"),
    "seg_add": ("条件を追加", "Add a rule"),
    "seg_remove": ("削除", "Remove"),
    "seg_rule_trait": ("属性", "Trait"),
    "seg_rule_event": ("行動した", "Did an event"),
    "seg_rule_no_event": ("行動していない", "Did not do an event"),
    "seg_rule_consent": ("配信許諾", "Consent"),
    "seg_rule_near": ("店舗の近く", "Near a store"),
    "seg_kind_trait": ("属性", "trait"),
    "seg_kind_event": ("行動", "event"),
    "seg_kind_consent": ("許諾", "consent"),
    "seg_kind_near": ("位置", "location"),
    "seg_value": ("値", "Value"),
    "seg_days_ago": ("日以内", "days"),
    "seg_not_within": ("日以上前（またはなし）", "days ago or more (or never)"),
    "seg_any_channel": ("全チャネル", "Any channel"),
    "seg_within": ("期間（日）", "Within (days)"),
    "seg_times": ("回以上", "times or more"),
    "seg_km": ("km 以内", "km"),
    "seg_by_either": ("ホーム店舗か最新の位置", "home store or last location"),
    "seg_by_home_store": ("ホーム店舗", "home store"),
    "seg_by_last_location": ("最新の位置", "last location"),
    "seg_count": ("該当する顧客", "Customers who match"),
    "seg_people": ("人", "customers"),
    "seg_sample": ("該当する顧客の例", "Some of them"),
    "seg_counting": ("集計中…", "Counting…"),
    "seg_incomplete": ("条件を入力すると人数が表示されます", "Complete a rule to see the count"),
    "seg_save": ("保存する", "Save"),
    "seg_name_taken": ("この名前のセグメントはすでにあります", "A segment of this name exists"),
    "seg_name_needed": ("名前を入力してください", "Give it a name"),
    "seg_read_only": ("アナリストは人数の確認のみできます", "Analysts see the count; saving is for marketers"),
    "seg_seconds": ("秒", "s"),
    "seg_trait_fan_level": ("ファンレベル", "Fan level"),
    "seg_trait_ltv": ("予測 LTV", "Predicted LTV"),
    "seg_trait_expected_purchases": ("予測購入回数", "Expected purchases"),
    "seg_trait_spend_online": ("オンライン購入額", "Spend online"),
    "seg_trait_spend_store": ("店舗購入額", "Spend in store"),
    "seg_trait_orders_online": ("オンライン注文数", "Orders online"),
    "seg_trait_orders_store": ("店舗購入回数", "Orders in store"),
    "seg_trait_events": ("行動数", "Events"),
    "seg_trait_first_seen": ("初回接点", "First seen"),
    "seg_trait_last_seen": ("最終接点", "Last seen"),
    "seg_trait_last_store_visit": ("最終来店", "Last store visit"),
    "seg_trait_home_store_id": ("ホーム店舗", "Home store"),
    "seg_trait_gender": ("性別", "Gender"),
    "seg_trait_prefecture": ("都道府県", "Prefecture"),
    "seg_consent_email": ("メール", "E-mail"),
    "seg_consent_line": ("LINE", "LINE"),
    "seg_consent_push": ("プッシュ通知", "Push"),
    "seg_consent_dm": ("DM（郵送）", "Direct mail"),
    # journeys
    "jrn_title": ("ジャーニー", "Journeys"),
    "jrn_none": ("まだジャーニーがありません", "No journeys yet"),
    "jrn_active": ("稼働中", "Active"),
    "jrn_paused": ("停止中", "Paused"),
    "jrn_pause": ("一時停止", "Pause"),
    "jrn_resume": ("再開", "Resume"),
    "jrn_trigger": ("開始条件", "Trigger"),
    "jrn_goal": ("ゴール", "Goal"),
    "jrn_created": ("作成", "Created"),
    "jrn_report": ("効果測定", "Holdout report"),
    "jrn_customers": ("顧客の状態", "Customers by status"),
    "jrn_run_active": ("進行中", "In progress"),
    "jrn_run_waiting": ("イベント待ち", "Waiting"),
    "jrn_run_done": ("完了", "Done"),
    "jrn_run_converted": ("ゴール達成", "Reached the goal"),
    "jrn_run_exited": ("離脱", "Exited"),
    "jrn_run_control": ("対照群", "Control"),
    "jrn_step": ("ステップ", "Step"),
    "jrn_reached": ("到達", "Reached"),
    "jrn_due": ("実行待ち", "Due"),
    "jrn_waiting": ("イベント待ち", "Waiting"),
    "jrn_sent": ("送信", "Sent"),
    "jrn_not_sent": ("未送信", "Not sent"),
    "jrn_ended": ("終了", "Ended here"),
    "jrn_then": ("はい／あり", "yes"),
    "jrn_else": ("いいえ／なし", "no"),
    "jrn_on_event": ("イベント", "Event"),
    "jrn_near": ("店舗の近く", "near a store"),
    "jrn_segment_entered": ("セグメントに入った", "Entered segment"),
    "jrn_daily": ("毎日", "Every day at"),
    "jrn_date_trait": ("日付属性", "Date trait"),
    "jrn_days_before": ("日前", "days before"),
    "jrn_step_wait": ("待つ", "Wait"),
    "jrn_step_send": ("送信", "Send"),
    "jrn_step_coupon": ("クーポン発行", "Issue the coupon"),
    "jrn_step_direct_mail": ("DM 発送", "Direct mail"),
    "jrn_step_if": ("条件分岐", "If"),
    "jrn_step_wait_for": ("イベントを待つ", "Wait for"),
    "jrn_step_exit": ("終了", "Exit"),
    "jrn_rule": ("セグメント条件", "a segment rule"),
    "jrn_favourite": ("お気に入りが近くの店舗に在庫あり", "a favourite in stock nearby"),
    "jrn_up_to": ("以内", "at most"),
    "jrn_unknown": ("ジャーニーが見つかりません", "No such journey"),
    "jrn_note": (
        "到達: そのステップに来た人数（完了した人の分岐は送信記録から）",
        "Reached: runs that got to the step (a finished run's branch is known by its sends)",
    ),
    # campaigns
    "cmp_title": ("キャンペーン", "Campaigns"),
    "cmp_none": ("まだキャンペーンがありません", "No campaigns yet"),
    "cmp_name": ("キャンペーン", "Campaign"),
    "cmp_channel": ("チャネル", "Channel"),
    "cmp_created": ("作成", "Created"),
    "cmp_starts": ("開始", "Starts"),
    "cmp_window": ("計測期間", "Window"),
    "cmp_days": ("日", " days"),
    "cmp_hours": ("時間", " hours"),
    "cmp_control_share": ("対照群の割合", "Control share"),
    "cmp_assigned": ("対象顧客", "Customers assigned"),
    "cmp_coupons": ("クーポン 発行／利用", "Coupons issued / redeemed"),
    "cmp_unknown": ("キャンペーンが見つかりません", "No such campaign"),
    "cmp_back": ("キャンペーン一覧へ", "To the campaigns"),
    "cmp_no_one": ("まだ対象顧客がいません", "No customers assigned yet"),
    "cmp_default_window": ("キャンペーンの設定", "The campaign's"),
    "cmp_chart": ("対照群との差（95% 信頼区間）", "Difference from control (95% interval)"),
    "cmp_rates": ("率の差（ポイント）", "Rates (points)"),
    "cmp_revenue": ("1 人あたり売上の差", "Revenue per customer"),
    "cmp_variants": ("グループ別の結果", "Variants"),
    "cmp_variant": ("グループ", "Variant"),
    "cmp_customers": ("人数", "Customers"),
    "cmp_share": ("割合（想定）", "Share (meant)"),
    "cmp_visit_rate": ("来訪率", "Visit rate"),
    "cmp_conversion_rate": ("購入率", "Conversion"),
    "cmp_revenue_total": ("売上", "Revenue"),
    "cmp_revenue_per_customer": ("1 人あたり売上", "Revenue per customer"),
    "cmp_online": ("うちオンライン", "of which online"),
    "cmp_store": ("うち店舗", "of which in store"),
    "cmp_redemptions": ("クーポン利用", "Coupons redeemed"),
    "cmp_effects": ("効果（対照群との差）", "Effect (against the control)"),
    "cmp_metric": ("指標", "Metric"),
    "cmp_difference": ("差", "Difference"),
    "cmp_interval": ("95% 信頼区間", "95% interval"),
    "cmp_p": ("p 値", "p-value"),
    "cmp_cuped": ("CUPED 補正後", "CUPED-adjusted"),
    "cmp_cuped_note": (
        "CUPED: 割当前 {pre} の購入額で補正（ばらつきを減らす）",
        "CUPED: adjusted by each customer's revenue in the {pre} before assignment",
    ),
    "cmp_significant": ("有意（p < 0.05）", "significant (p < 0.05)"),
    "cmp_srm_bad": (
        "サンプル比率の不一致（SRM）: 割当の比率が想定と違います。結果を信頼する前に割当を確認してください",
        "Sample ratio mismatch: the variants' sizes are not the shares meant; check the "
        "assignment before trusting the result",
    ),
    "cmp_srm_ok": ("割当の比率は想定どおりです（SRM なし）", "Variant sizes as meant (no SRM)"),
    "cmp_coupons_title": ("クーポン", "Coupons"),
    "cmp_issued": ("発行", "Issued"),
    "cmp_redeemed": ("利用", "Redeemed"),
    "cmp_discount": ("値引額", "Discount"),
    "cmp_none_yet": ("なし", "none"),
    "cmp_v_control": ("対照群", "control"),
    "cmp_v_treatment": ("配信群", "treatment"),
    # coupons
    "cpn_title": ("クーポン", "Coupons"),
    "cpn_none": ("まだクーポンが発行されていません", "No coupons issued yet"),
    "cpn_by_store": ("店舗別 発行・利用", "Issued and redeemed per store"),
    "cpn_by_campaign": ("キャンペーン別", "Per campaign"),
    "cpn_all": ("全キャンペーン", "All campaigns"),
    "cpn_store": ("店舗", "Store"),
    "cpn_no_home": ("ホーム店舗なし", "No home store"),
    "cpn_issued": ("発行（ホーム店舗の顧客へ）", "Issued (to its customers)"),
    "cpn_redeemed": ("利用（この店舗で）", "Redeemed (at its till)"),
    "cpn_rate": ("利用率", "Redemption rate"),
    "cpn_discount": ("値引額", "Discount"),
    "cpn_amount": ("対象購入額", "Purchases"),
    "cpn_total": ("合計", "Total"),
    "cpn_note": (
        "発行はお客さまのホーム店舗に、利用は利用した店舗に数えます（取消された利用は除く）",
        "Issued counts at the customer's home store, redeemed at the store of the till "
        "(cancelled receipts left out)",
    ),
})  # fmt: skip

WRITERS = ("admin", "marketer")
TEXT_TRAITS = ("gender", "prefecture")
RUN_STATUSES = ("active", "waiting", "done", "converted", "exited", "control")
WINDOWS = ("7d", "14d", "30d", "60d")


def _writer(session: Session) -> bool:
    return session.user.role in WRITERS


def rule_kinds(rule: dict[str, Any]) -> list[str]:
    """What a segment's rule looks at (trait, event, consent, near), each once, in order."""
    found: list[str] = []
    for key in ("all", "any"):
        for part in rule.get(key, []):
            found += rule_kinds(part)
    if "not" in rule:
        found += rule_kinds(rule["not"])
    for key, kind in (("trait", "trait"), ("event", "event"), ("consent", "consent"),
                      ("near_store", "near")):  # fmt: skip
        if key in rule:
            found.append(kind)
    return list(dict.fromkeys(found))


@router.get("/segments", response_class=HTMLResponse)
def segments(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    saved: str | None = Query(default=None, max_length=100),
) -> Response:
    session = signed_in(request, DASHBOARD)
    seen = [x.event for x in vocabulary(engine=analytics_engine(store, settings)).events]
    kept = list_segments(store=store)
    traits = (
        [(k, "number") for k in COMPUTED if k != "home_store_id"]
        + [(k, "moment") for k in MOMENTS]
        + [("home_store_id", "store")]
        + [(k, "text") for k in TEXT_TRAITS]
    )
    context = {
        "session": session, "segments": kept, "kinds": {s.segment_id: rule_kinds(s.definition["rule"])
                                                      for s in kept},
        "writer": _writer(session), "saved": saved, "traits": traits,
        "events": list(dict.fromkeys([*seen, *ECOMMERCE_EVENTS, *OMO_EVENTS])), "channels": [c.value for c in Channel],
        "consents": CONSENTS, "stores": store_names(store=store),
    }  # fmt: skip
    return page(request, "segments.html", context)


@router.get("/journeys", response_class=HTMLResponse)
def journeys(request: Request, store: StoreDep) -> Response:
    session = signed_in(request, DASHBOARD)
    shown = [
        {"journey": j, "steps": step_counts(store=store, journey_id=j.journey_id),
         "treated": sum(n for status, n in j.runs.items() if status != "control")}
        for j in list_journeys(store=store)
    ]  # fmt: skip
    context = {"session": session, "journeys": shown, "writer": _writer(session),
               "statuses": RUN_STATUSES}  # fmt: skip
    return page(request, "journeys.html", context)


@router.post("/journeys/{journey_id}/pause", response_class=HTMLResponse)
def journey_pause(
    request: Request,
    store: StoreDep,
    journey_id: str,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return _set_status(request, store, journey_id, csrf, "paused")


@router.post("/journeys/{journey_id}/resume", response_class=HTMLResponse)
def journey_resume(
    request: Request,
    store: StoreDep,
    journey_id: str,
    csrf: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return _set_status(request, store, journey_id, csrf, "active")


def _set_status(
    request: Request, store: Store, journey_id: str, csrf: str, status: Literal["active", "paused"]
) -> Response:
    """A writer's pause or resume, then back to the journey on the list."""
    session = signed_in(request, WRITERS)
    check_csrf(session, csrf)
    try:
        done = set_status(store=store, journey_id=journey_id, status=status)
    except NotFound:
        return page(request, "journeys.html", {"session": session, "journeys": [],
                                               "missing": True}, status_code=404)  # fmt: skip
    return RedirectResponse(f"/journeys#{done.journey_id}", status_code=303)


@router.get("/campaigns", response_class=HTMLResponse)
def campaigns(request: Request, store: StoreDep) -> Response:
    session = signed_in(request, DASHBOARD)
    listed = list_campaigns(store=store)
    context = {
        "session": session, "campaigns": listed,
        "assigned": {c.campaign_id: variant_counts(store, c.campaign_id) for c in listed},
        "coupons": {c.campaign_id: c for c in coupons_by_campaign(store=store)},
    }  # fmt: skip
    return page(request, "campaigns.html", context)


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
def campaign(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    campaign_id: str,
    window: str | None = Query(default=None, max_length=20),
) -> Response:
    session = signed_in(request, DASHBOARD)
    t = translator(language(request))
    context: dict[str, Any] = {"session": session, "campaign_id": campaign_id,
                               "windows": WINDOWS, "window": window or ""}  # fmt: skip
    try:
        made = get_campaign(store=store, campaign_id=campaign_id)
    except NotFound:
        return page(request, "campaign.html", {**context, "campaign": None}, status_code=404)
    context["campaign"] = made
    try:
        analytics_engine(store, settings)
        measured = report(store=store, campaign_id=made.campaign_id, window=window or None)
    except InvalidInput as exc:
        context.update(error=exc.message, report=None)
        return page(request, "campaign.html", context, status_code=400)
    by_store = coupons_by_store(store=store, campaign_id=made.campaign_id)
    cuped = {c["variant"]: c for c in measured["cuped"]["variants"]}
    context.update(
        report=measured, cuped=cuped, by_store=by_store,
        differences_chart=activation_charts.differences(measured, t)
        if len(measured["variants"]) > 1 else None,
        coupons_chart=activation_charts.coupons_per_store(by_store, t) if by_store else None,
    )  # fmt: skip
    return page(request, "campaign.html", context)


@router.get("/coupons", response_class=HTMLResponse)
def coupons(
    request: Request,
    store: StoreDep,
    campaign_id: str | None = Query(default=None, max_length=100),
) -> Response:
    session = signed_in(request, DASHBOARD)
    t = translator(language(request))
    per_campaign = coupons_by_campaign(store=store)
    chosen = campaign_id if campaign_id in {c.campaign_id for c in per_campaign} else None
    by_store = coupons_by_store(store=store, campaign_id=chosen)
    context = {
        "session": session, "per_campaign": per_campaign, "by_store": by_store,
        "campaign_id": chosen or "",
        "chart": activation_charts.coupons_per_store(by_store, t) if by_store else None,
    }  # fmt: skip
    return page(request, "coupons.html", context)
