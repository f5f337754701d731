"""The analysis screens: funnels, retention, paths, channel journeys, fan levels, LTV and
assortment. Each page's query lives in its URL (a GET form), so a view can be shared; the page
parses it into the analysis's own query model and calls the same runner as the API."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import zip_longest
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from tsunagu.analytics.engine import Engine
from tsunagu.analytics.filters import Scalar, parse
from tsunagu.analytics.funnels import FunnelQuery, run_funnel
from tsunagu.analytics.paths import PathsQuery, run_paths
from tsunagu.analytics.retention import RetentionQuery, run_retention
from tsunagu.analytics.vocabulary import Vocabulary, vocabulary
from tsunagu.api.deps import SettingsDep, StoreDep, analytics_engine
from tsunagu.exceptions import InvalidInput, NotFound
from tsunagu.web import charts
from tsunagu.web.i18n import translator, words
from tsunagu.web.session import DASHBOARD, Blank, From, To, language, page, signed_in

router = APIRouter(include_in_schema=False)
Many = Annotated[list[str], Query(max_length=10)]
"""A repeated field of the step rows (one value per step, in order)."""
Text = Annotated[str, Query(max_length=200)]

words({
    "an_run": ("分析する", "Run"),
    "an_any": ("すべて", "Any"),
    "an_none": ("なし", "None"),
    "an_share": ("この分析の URL", "Link to this analysis"),
    "an_took": ("集計時間", "Took"),
    "an_no_data": ("まだイベントがありません", "No events yet"),
    "fn_title": ("ファネル分析", "Funnel"),
    "fn_step": ("ステップ", "Step"),
    "fn_event": ("イベント", "Event"),
    "fn_channel": ("チャネル", "Channel"),
    "fn_store": ("店舗", "Store"),
    "fn_category": ("カテゴリ", "Category"),
    "fn_where": ("条件", "Where"),
    "fn_add": ("＋ ステップを追加", "+ Add a step"),
    "fn_remove": ("削除", "Remove"),
    "fn_window": ("期限（例: 30m, 24h, 7d, 2w）", "Window (e.g. 30m, 24h, 7d, 2w)"),
    "fn_mode": ("順序", "Order"),
    "fn_mode_ordered": ("この順に（間に他の行動可）", "In this order"),
    "fn_mode_strict": ("この順に連続して", "Strictly in a row"),
    "fn_mode_any": ("順不同", "Any order"),
    "fn_breakdown": ("内訳", "Breakdown"),
    "fn_customers": ("顧客数", "Customers"),
    "fn_from_first": ("最初から", "From first"),
    "fn_from_previous": ("前のステップから", "From previous"),
    "fn_drop_off": ("離脱", "Dropped"),
    "fn_median": ("所要時間（中央値）", "Median time"),
    "fn_p90": ("所要時間（90%）", "90th pct time"),
    "fn_converted": ("到達", "Reached"),
    "fn_dropped": ("離脱", "Dropped off"),
    "fn_by": ("内訳別の転換率", "Conversion by breakdown"),
    "fn_value": ("値", "Value"),
    "bd_channel": ("チャネル", "Channel"),
    "bd_store_id": ("店舗", "Store"),
    "bd_category": ("カテゴリ", "Category"),
    "bd_profile.home_store_id": ("よく行く店舗", "Home store"),
    "bd_profile.fan_level": ("ファンレベル", "Fan level"),
    "bd_profile.gender": ("性別", "Gender"),
})  # fmt: skip

BREAKDOWNS = (
    "channel", "store_id", "category", "profile.home_store_id", "profile.fan_level",
    "profile.gender",
)  # fmt: skip
DEFAULT_FUNNEL = ("Product Viewed", "Product Added", "Order Completed")
_CONDITION = re.compile(r"\s*([^<>=!]+?)\s*(>=|<=|!=|=|>|<)\s*(.*?)\s*")
_OPERATORS = {">=": "gte", "<=": "lte", "!=": "ne", ">": "gt", "<": "lt"}
_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def viewer(request: Request, store: Any, settings: Any) -> tuple[Any, Engine, Vocabulary]:
    session = signed_in(request, DASHBOARD)
    engine = analytics_engine(store, settings)
    return session, engine, vocabulary(engine=engine)


def pickers(vocab: Vocabulary, t: Any) -> dict[str, list[tuple[str, str]]]:
    """The choices of a step row: (value, label) of events (with their counts), channels,
    stores and categories."""
    return {
        "events": [
            (
                x.event,
                f"{t(x.event)} · {x.event} ({x.events:,})"
                if t(x.event).lower() != x.event.lower()
                else f"{x.event} ({x.events:,})",
            )
            for x in vocab.events
        ],
        "channels": [(c, t(c)) for c in vocab.channels],
        "stores": vocab.stores,
        "categories": [(c, c) for c in vocab.categories],
    }


def _value(text: str) -> Scalar:
    if _NUMBER.fullmatch(text):
        return float(text) if "." in text else int(text)
    return text


def conditions(text: str, field: str) -> dict[str, Any]:
    """`revenue>=10000; coupon=SUMMER|WINTER` as a step's `where` (`|` for one of)."""
    where: dict[str, Any] = {}
    for part in re.split(r"[;；\n]", text):
        if not part.strip():
            continue
        found = _CONDITION.fullmatch(part)
        if not found or not found.group(3):
            raise InvalidInput(
                f"{field}: {part.strip()!r} is not key=value (or != > >= < <=, | for one of)",
                field=field,
            )
        key, op, value = found.groups()
        if op == "=" and "|" in value:
            where[key] = [_value(v.strip()) for v in value.split("|")]
        elif op == "=":
            where[key] = _value(value)
        else:
            where.setdefault(key, {})
            if not isinstance(where[key], dict):
                raise InvalidInput(f"{field}: {key} is given twice", field=field)
            where[key][_OPERATORS[op]] = _value(value)
    return where


def step_of(
    event: str, channel: str, store_id: str, category: str, where: str, field: str
) -> dict[str, Any]:
    """One step row of a form as the step of an analysis query."""
    step: dict[str, Any] = {"event": event.strip()}
    if channel:
        step["channel"] = channel
    conds = conditions(where, field)
    if store_id:
        conds["store_id"] = store_id
    if category:
        conds["category"] = category
    if conds:
        step["where"] = conds
    return step


StepRow = tuple[str, str, str, str, str]


def _rows(e: list[str], c: list[str], st: list[str], cat: list[str], p: list[str]) -> list[StepRow]:
    """The step rows of a form: (event, channel, store, category, where), an empty one left
    out."""
    return [
        (a or "", b or "", s or "", g or "", w or "")
        for a, b, s, g, w in zip_longest(e, c, st, cat, p)
        if (a or "").strip()
    ]


@router.get("/analytics/funnel")
def funnel_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    e: Many = [],  # noqa: B006 (FastAPI copies a default)
    c: Many = [],  # noqa: B006
    st: Many = [],  # noqa: B006
    cat: Many = [],  # noqa: B006
    p: Many = [],  # noqa: B006
    window: Text = "7d",
    mode: Text = "ordered",
    breakdown: Text = "",
    start: From = None,
    to: To = None,
) -> Response:
    session, engine, vocab = viewer(request, store, settings)
    rows = _rows(e, c, st, cat, p)
    if not rows and vocab.events:
        known = {x.event for x in vocab.events}
        steps = [s for s in DEFAULT_FUNNEL if s in known] or [x.event for x in vocab.events[:2]]
        return RedirectResponse(
            "/analytics/funnel?" + urlencode([("e", s) for s in steps] + [("window", window)]),
            status_code=303,
        )
    t = translator(language(request))
    context: dict[str, Any] = {
        "session": session, "nav": "funnel", "v": vocab, "pick": pickers(vocab, t), "rows": rows or [("",) * 5] * 2,
        "window": window, "mode": mode, "breakdown": breakdown, "from": start, "to": to,
        "breakdowns": BREAKDOWNS, "result": None, "error": None,
    }  # fmt: skip
    if not rows:
        return page(request, "funnel.html", context)

    def answer() -> dict[str, Any]:
        query = parse(
            FunnelQuery,
            {
                "steps": [step_of(*row, field=f"steps.{i}.where") for i, row in enumerate(rows)],
                "window": window,
                "mode": mode,
                "breakdown": breakdown or None,
                "from": start,
                "to": to,
            },
        )
        result = run_funnel(engine=engine, query=query, timezone=settings.timezone)
        labels = [f"{i + 1}. {s.label()}" for i, s in enumerate(query.steps)]
        if query.breakdown in ("store_id", "profile.home_store_id"):
            names = dict(vocab.stores)
            for group in result.breakdown:
                group.value = names.get(group.value, group.value)
        return {
            "result": result,
            "labels": labels,
            "chart": charts.funnel_bars(result.steps, labels, t),
            "groups_chart": charts.funnel_groups(result.breakdown[:8], labels)
            if result.breakdown
            else None,
        }

    return answered(request, "funnel.html", context, answer)


words({
    "rt_title": ("リテンション", "Retention"),
    "rt_start": ("初回のイベント（コホート）", "First event (cohort)"),
    "rt_return": ("再来のイベント", "Coming back"),
    "rt_periods": ("期間数", "Periods"),
    "rt_by_channel": ("初回チャネル別", "By first channel"),
    "rt_cohort": ("コホート", "Cohort"),
    "rt_average": ("平均", "Average"),
    "rt_after_day": ("{n}日後", "Day {n}"),
    "rt_after_week": ("{n}週後", "Week {n}"),
    "rt_after_month": ("{n}か月後", "Month {n}"),
    "pt_title": ("行動経路", "Paths"),
    "pt_anchor": ("起点のイベント", "Anchor event"),
    "pt_direction": ("方向", "Direction"),
    "pt_after": ("その後", "After"),
    "pt_before": ("その前", "Before"),
    "pt_depth": ("ステップ数", "Steps"),
    "pt_within": ("範囲（例: 1d）", "Within (e.g. 1d)"),
    "pt_top": ("各段の上位", "Top per step"),
    "pt_channels": ("チャネルを区別", "Tell channels apart"),
    "pt_customers": ("起点の顧客数", "Customers at the anchor"),
    "pt_link": ("遷移", "Step"),
})  # fmt: skip


def _step(event: str, channel: str, field: str) -> dict[str, Any]:
    return step_of(event, channel, "", "", "", field)


def answered(
    request: Request, name: str, context: dict[str, Any], answer: Callable[[], dict[str, Any]]
) -> Response:
    """The page with what `answer` adds to its context (the result, its charts); a query the
    analysis refuses is named on the page (400; 404 for a store that is not there), the form
    kept to correct it."""
    try:
        context.update(answer())
    except (InvalidInput, NotFound) as exc:
        status = 404 if isinstance(exc, NotFound) else 400
        return page(request, name, {**context, "error": exc.message}, status_code=status)
    return page(request, name, context)


@router.get("/analytics/retention")
def retention_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    se: Text = "Order Completed",
    sc: Text = "",
    re_: Annotated[str, Query(alias="re", max_length=200)] = "Order Completed",
    rc: Text = "",
    grain: Text = "month",
    periods: Annotated[int | None, Blank, Query()] = None,
    breakdown: Text = "",
    start: From = None,
    to: To = None,
) -> Response:
    session, engine, vocab = viewer(request, store, settings)
    t = translator(language(request))
    context: dict[str, Any] = {
        "session": session, "nav": "retention", "v": vocab, "pick": pickers(vocab, t),
        "se": se, "sc": sc, "re": re_, "rc": rc, "grain": grain, "periods": periods,
        "breakdown": breakdown, "from": start, "to": to, "result": None, "error": None,
    }  # fmt: skip
    if not vocab.events:
        return page(request, "retention.html", context)

    def answer() -> dict[str, Any]:
        query = parse(
            RetentionQuery,
            {
                "start": _step(se, sc, "start"),
                "return": _step(re_, rc, "return"),
                "grain": grain,
                "periods": periods,
                "breakdown": breakdown or None,
                "from": start,
                "to": to,
            },
        )
        result = run_retention(engine=engine, query=query)
        return {"result": result, "chart": charts.retention_heatmap(result, t)}

    return answered(request, "retention.html", context, answer)


@router.get("/analytics/paths")
def paths_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    e: Text = "Product Viewed",
    c: Text = "",
    direction: Text = "after",
    depth: Annotated[int, Query(ge=1, le=8)] = 3,
    top: Annotated[int, Query(ge=1, le=50)] = 6,
    within: Text = "1d",
    channels: Text = "1",
    start: From = None,
    to: To = None,
) -> Response:
    session, engine, vocab = viewer(request, store, settings)
    t = translator(language(request))
    context: dict[str, Any] = {
        "session": session, "nav": "paths", "v": vocab, "pick": pickers(vocab, t), "e": e,
        "c": c, "direction": direction, "depth": depth, "top": top, "within": within,
        "channels": channels == "1", "from": start, "to": to, "result": None, "error": None,
    }  # fmt: skip
    if not vocab.events:
        return page(request, "paths.html", context)

    def answer() -> dict[str, Any]:
        query = parse(
            PathsQuery,
            {
                "event": _step(e, c, "event"),
                "direction": direction,
                "depth": depth,
                "top": top,
                "within": within,
                "channels": channels == "1",
                "from": start,
                "to": to,
            },
        )
        result = run_paths(engine=engine, query=query, timezone=settings.timezone)
        return {"result": result, "chart": charts.paths_sankey(result, t)}

    return answered(request, "paths.html", context, answer)
