"""The customer reports: channel journeys (who buys where, ROPO, showrooming, O2O lift), fan
levels and their movement, the LTV distribution, and a store's regional assortment. Like the
analysis screens, each page's query is its URL."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from tsunagu.analytics.assortment import AssortmentQuery, assortment_report
from tsunagu.analytics.channels import ChannelsQuery, Rate, run_channels
from tsunagu.analytics.fans import fan_report, load_fan_rules
from tsunagu.analytics.filters import parse
from tsunagu.analytics.ltv_report import ltv_distribution
from tsunagu.api.deps import SettingsDep, StoreDep
from tsunagu.web import charts
from tsunagu.web.analysis import answered, viewer
from tsunagu.web.i18n import translator, words, yen
from tsunagu.web.session import Day, From, To, language, page

router = APIRouter(include_in_schema=False)

words({
    "ch_title": ("チャネル横断の購買", "Buying across channels"),
    "ch_ropo_days": ("ROPO の日数", "ROPO days"),
    "ch_showrooming_days": ("ショールーミングの日数", "Showrooming days"),
    "ch_buyers": ("購入者", "Buyers"),
    "ch_share_buyers": ("購入者の割合", "Share of buyers"),
    "ch_share_revenue": ("売上の割合", "Share of revenue"),
    "ch_spend": ("購入者あたり購入額", "Spend per buyer"),
    "ch_online_only": ("オンラインのみ", "Online only"),
    "ch_store_only": ("店舗のみ", "Store only"),
    "ch_omnichannel": ("オムニチャネル", "Omnichannel"),
    "ch_other_only": ("その他のチャネルのみ", "Other channels only"),
    "ch_o2o_online": ("O2O リフト（対オンラインのみ）", "O2O lift vs online only"),
    "ch_o2o_store": ("O2O リフト（対店舗のみ）", "O2O lift vs store only"),
    "ch_ropo": ("ROPO（オンラインで調べ店舗で購入）", "ROPO (researched online, bought in store)"),
    "ch_showrooming": ("ショールーミング（店舗で見てオンラインで購入）", "Showrooming (seen in store, bought online)"),
    "ch_rate": ("該当率", "Rate"),
    "ch_orders_matched": ("該当注文", "Orders matched"),
    "ch_by_store": ("店舗別", "By store"),
    "ch_by_category": ("カテゴリ別", "By category"),
    "fan_title": ("ファンレベル", "Fan levels"),
    "fan_as_of": ("基準日", "As of"),
    "fan_compare": ("比較する日", "Compare with"),
    "fan_lv": ("レベル", "Level"),
    "fan_share": ("顧客の割合", "Share of customers"),
    "fan_revenue": ("売上", "Revenue"),
    "fan_movement": ("レベルの移動", "Movement between levels"),
    "fan_then": ("比較日のレベル", "Level then"),
    "fan_now": ("基準日のレベル", "Level now"),
    "fan_up": ("上がった", "Moved up"),
    "fan_down": ("下がった", "Moved down"),
    "fan_stayed": ("同じ", "Stayed"),
    "fan_new": ("新規", "New"),
    "ltv_title": ("LTV（顧客生涯価値）の分布", "LTV distribution"),
    "ltv_no_fit": ("まだ LTV を推定していません。", "No LTV fit yet."),
    "ltv_fit": ("いま推定する", "Fit now"),
    "ltv_fitting": ("推定しています…", "Fitting…"),
    "ltv_band": ("予測 LTV", "Predicted LTV"),
    "ltv_customers": ("顧客数", "Customers"),
    "ltv_value": ("予測額の合計", "Predicted value"),
    "ltv_mean": ("平均", "Mean"),
    "ltv_median": ("中央値", "Median"),
    "ltv_p90": ("上位 10% の下限", "90th percentile"),
    "ltv_top": ("上位 10% が占める割合", "Top tenth's share"),
    "ltv_purchases": ("予測購入回数（平均）", "Predicted purchases (mean)"),
    "ltv_horizon": ("予測期間（日）", "Horizon (days)"),
    "as_title": ("店舗の品揃え（商圏の需要）", "Store assortment against local demand"),
    "as_radius": ("商圏（km）", "Catchment (km)"),
    "as_days": ("日数", "Days"),
    "as_catchment": ("商圏の顧客", "Customers in the catchment"),
    "as_demand": ("商圏の需要の割合", "Share of local demand"),
    "as_sales": ("店舗売上の割合", "Share of store sales"),
    "as_stocked": ("在庫商品の割合", "Share of stocked products"),
    "as_missing": ("商圏で売れているが在庫のない商品", "Bought locally, not stocked here"),
    "as_slow": ("在庫はあるが動かない商品", "Stocked here, little local demand"),
    "as_sku": ("商品", "Product"),
    "as_local_buyers": ("商圏の購入者", "Local buyers"),
    "as_store_orders": ("店舗の注文", "Store orders"),
    "as_on_hand": ("在庫数", "On hand"),
})  # fmt: skip


@router.get("/analytics/channels")
def channels_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    start: From = None,
    to: To = None,
    ropo_days: Annotated[int, Query(ge=1, le=365)] = 7,
    showrooming_days: Annotated[int, Query(ge=1, le=365)] = 7,
) -> Response:
    session, engine, vocab = viewer(request, store, settings)
    t = translator(language(request))
    context: dict[str, Any] = {
        "session": session, "nav": "channels", "v": vocab, "from": start, "to": to,
        "ropo_days": ropo_days, "showrooming_days": showrooming_days, "result": None,
        "error": None, "names": dict(vocab.stores),
    }  # fmt: skip
    if not vocab.events:
        return page(request, "channels.html", context)

    def answer() -> dict[str, Any]:
        query = parse(
            ChannelsQuery,
            {"from": start, "to": to, "ropo_days": ropo_days, "showrooming_days": showrooming_days},
        )
        result = run_channels(engine=engine, query=query, timezone=settings.timezone)
        names = [t(f"ch_{s.segment}") for s in result.segments]
        return {
            "result": result,
            "mix_chart": charts.shares(
                names,
                [
                    (t("ch_share_buyers"), [s.share_of_buyers for s in result.segments]),
                    (t("ch_share_revenue"), [s.share_of_revenue for s in result.segments]),
                ],
            ),
            "lift_charts": {
                by: charts.shares(
                    [context["names"].get(x.key, x.key) if by == "store" else x.key for x in lifts],
                    [(t("kpi_o2o"), [x.lift for x in lifts])],
                    axis=".1f",
                    hover=".2f",
                )
                for by, lifts in (
                    ("store", result.o2o_by_store),
                    ("category", result.o2o_by_category),
                )
            },
            "rate_charts": {
                f"{kind}-{by}": _rates_chart(
                    getattr(getattr(result, kind), f"by_{by}"), by, t, context
                )
                for kind in ("ropo", "showrooming")
                for by in ("store", "category")
            },
        }

    return answered(request, "channels.html", context, answer)


def _rates_chart(rates: list[Rate], by: str, t: Any, context: dict[str, Any]) -> str:
    names = context["names"] if by == "store" else {}
    top = sorted(rates, key=lambda r: -r.total)[:20]
    return charts.shares(
        [names.get(r.key, r.key) for r in top], [(t("ch_rate"), [r.rate for r in top])]
    )


@router.get("/analytics/fans")
def fans_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    as_of: Day = None,
    compare_to: Day = None,
) -> Response:
    session, engine, vocab = viewer(request, store, settings)
    lang = language(request)
    t = translator(lang)
    context: dict[str, Any] = {
        "session": session, "nav": "fans", "v": vocab, "as_of": as_of, "compare_to": compare_to,
        "result": None, "error": None,
    }  # fmt: skip
    if not vocab.events:
        return page(request, "fans.html", context)
    day = as_of or vocab.last_day
    assert day is not None
    compare_to = compare_to or day - timedelta(days=90)
    context.update(as_of=day, compare_to=compare_to)

    def answer() -> dict[str, Any]:
        rules = load_fan_rules(settings.data_dir)
        result = fan_report(engine=engine, rules=rules, as_of=day, compare_to=compare_to)
        names = [lv.name if lang == "ja" else lv.name_en for lv in result.levels]
        levels = [lv.level for lv in result.levels]
        then = [t("fan_new"), *names] if 0 not in levels else names
        rows = [0, *levels] if 0 not in levels else levels
        cells = [
            [sum(m.customers for m in result.movement if m.from_level == a and m.to_level == b)
             for b in levels]
            for a in rows
        ]  # fmt: skip
        return {
            "result": result,
            "names": names,
            "levels_chart": charts.shares(
                names,
                [
                    (t("fan_share"), [lv.share for lv in result.levels]),
                    (t("ch_share_revenue"), [lv.share_of_revenue for lv in result.levels]),
                ],
            ),
            "movement_chart": charts.movement(then, names, cells, t),
        }

    return answered(request, "fans.html", context, answer)


@router.get("/analytics/ltv")
def ltv_page(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    session, engine, vocab = viewer(request, store, settings)
    t = translator(language(request))
    result = ltv_distribution(engine=engine)
    labels = [
        f"{yen(b.low)}–{yen(b.high)}" if b.high is not None else f"{yen(b.low)}+"
        for b in result.bands
    ]
    return page(
        request,
        "ltv.html",
        {
            "session": session,
            "nav": "ltv",
            "v": vocab,
            "result": result,
            "labels": labels,
            "chart": charts.histogram(labels, [b.customers for b in result.bands], t)
            if result.customers
            else None,
            "may_fit": session.user.role in ("admin", "marketer"),
        },  # fmt: skip
    )


@router.get("/analytics/assortment")
def assortment_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    store_id: Annotated[str, Query(max_length=200)] = "",
    radius_km: Annotated[float, Query(gt=0, le=500)] = 10.0,
    days: Annotated[int, Query(ge=1, le=3650)] = 90,
) -> Response:
    session, engine, vocab = viewer(request, store, settings)
    t = translator(language(request))
    store_id = store_id or (vocab.stores[0][0] if vocab.stores else "")
    context: dict[str, Any] = {
        "session": session, "nav": "assortment", "v": vocab, "store_id": store_id,
        "radius_km": radius_km, "days": days, "result": None, "error": None,
    }  # fmt: skip
    if not store_id:
        return page(request, "assortment.html", context)

    def answer() -> dict[str, Any]:
        query = parse(AssortmentQuery, {"store_id": store_id, "radius_km": radius_km, "days": days})
        result = assortment_report(store=store, query=query)
        cats = result.categories
        return {
            "result": result,
            "chart": charts.shares(
                [c.category for c in cats],
                [
                    (t("as_demand"), [c.share_of_local_demand for c in cats]),
                    (t("as_sales"), [c.share_of_store_sales for c in cats]),
                    (t("as_stocked"), [c.share_of_stocked for c in cats]),
                ],
            ),
        }

    return answered(request, "assortment.html", context, answer)
