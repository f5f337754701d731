"""Campaigns and their coupons over HTTP: POST /v1/campaigns, GET /v1/campaigns/{id},
POST /v1/campaigns/{id}/assignments, GET /v1/campaigns/{id}/report,
POST /v1/campaigns/{id}/coupons, GET /v1/coupons/{code}, POST /v1/coupons/{code}/redeem (the
POS) and /void."""

from __future__ import annotations

import csv
import dataclasses
import io
import shutil
import tempfile
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from tsunagu.activation import campaigns, coupons
from tsunagu.activation.membership import get_segment
from tsunagu.api.deps import (
    PosKey,
    ReadKey,
    SettingsDep,
    StoreDep,
    WriteKey,
    analytics_engine,
    scratch_dir,
    uploaded_answer,
)
from tsunagu.exceptions import Forbidden, InvalidInput
from tsunagu.identity.rules import load_rules
from tsunagu.keys import ApiKey

router = APIRouter(prefix="/v1", tags=["campaigns"])


class IssueRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile_ids: list[str] | None = Field(default=None, max_length=100_000)
    segment_id: str | None = None


class RedeemRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_id: str = Field(min_length=1, max_length=100)
    receipt_id: str = Field(min_length=1, max_length=200)
    amount_yen: int | None = Field(default=None, ge=0)


class VoidRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    receipt_id: str | None = Field(default=None, max_length=200)


@router.post("/campaigns", status_code=201, summary="Create a campaign (with a coupon, maybe)")
def campaigns_create(
    body: campaigns.CampaignCreate, store: StoreDep, settings: SettingsDep, _: WriteKey
) -> dict[str, Any]:
    made = campaigns.create_campaign(store=store, body=body, timezone=settings.timezone)
    return dataclasses.asdict(made)


@router.get("/campaigns/{campaign_id}", summary="A campaign")
def campaigns_get(campaign_id: str, store: StoreDep, _: ReadKey) -> dict[str, Any]:
    return dataclasses.asdict(campaigns.get_campaign(store=store, campaign_id=campaign_id))


@router.post("/campaigns/{campaign_id}/assignments", summary="Take an assignment made elsewhere")
async def campaigns_assign(
    campaign_id: str, request: Request, store: StoreDep, settings: SettingsDep, _: WriteKey
) -> dict[str, Any]:
    """The body is the CSV (`variant`, `assigned_at`, an identifier column: see `tsunagu
    campaign assign`), or JSON: a list of rows or `{"rows": [...]}` with the same fields.
    Rejected rows come back in `rejects` (CSV text)."""
    from starlette.concurrency import run_in_threadpool

    from tsunagu.activation.assignments import import_assignments

    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    work = Path(tempfile.mkdtemp(prefix="assign-", dir=scratch_dir(settings)))
    target = work / "assignments.csv"
    try:
        target.write_bytes(_rows_csv(body) if kind == "application/json" else body)
        result = await run_in_threadpool(
            _assign, store, settings, campaign_id, target, import_assignments
        )
        return uploaded_answer(result, None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _assign(store: Any, settings: Any, campaign_id: str, path: Path, run: Any) -> Any:
    analytics_engine(store, settings)
    return run(store=store, campaign_id=campaign_id, path=path, timezone=settings.timezone)


def _rows_csv(body: bytes) -> bytes:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"body: not JSON ({exc})", field="body") from None
    rows = doc.get("rows") if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InvalidInput(
            "rows: a list of objects (variant, assigned_at, user_id, ...)", field="rows"
        )
    if not rows:
        raise InvalidInput("rows: empty", field="rows")
    columns = list(dict.fromkeys(k for r in rows for k in r))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return out.getvalue().encode()


@router.get("/campaigns/{campaign_id}/report", summary="The campaign's measured effect")
def campaigns_report(
    campaign_id: str,
    store: StoreDep,
    settings: SettingsDep,
    _: ReadKey,
    window: str | None = None,
    pre_period: str = "90d",
) -> dict[str, Any]:
    from tsunagu.activation.report import report

    analytics_engine(store, settings)
    return report(store=store, campaign_id=campaign_id, window=window, pre_period=pre_period)


@router.post("/campaigns/{campaign_id}/coupons", summary="Issue the campaign's coupon")
def coupons_issue(
    campaign_id: str, body: IssueRequest, store: StoreDep, settings: SettingsDep, _: WriteKey
) -> dict[str, Any]:
    ids = _targets(store, body)
    made = coupons.issue(
        store=store, campaign_id=campaign_id, profile_ids=ids, rules=load_rules(settings.data_dir),
        global_control_share=settings.global_control_share,
    )  # fmt: skip
    control = store.scalar(
        "SELECT count(*) FROM campaign_assignments WHERE campaign_id = ? AND variant = 'control' "
        "AND profile_id IN (SELECT unnest(?::VARCHAR[]))",
        [campaign_id, ids],
    )
    return {
        "coupons": [{"code": c.code, "profile_id": c.profile_id, "qr": c.qr} for c in made],
        "control": control,
    }


@router.post("/campaigns/{campaign_id}/send", summary="Send the campaign's message now")
async def campaigns_send(
    campaign_id: str,
    body: IssueRequest,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    _: WriteKey,
) -> dict[str, Any]:
    """To those of `profile_ids` (or the segment's members) who are not in the campaign's
    control group and consent to its channel, under the caps and quiet hours; every one of
    them is assigned. `{"sent", "suppressed", "control", "deferred", "failed", "already",
    "reasons"}`."""
    from starlette.concurrency import run_in_threadpool

    from tsunagu.activation.sends import send_campaign

    ids = _targets(store, body)
    campaign = campaigns.get_campaign(store=store, campaign_id=campaign_id)
    done = await run_in_threadpool(
        lambda: send_campaign(
            store=store, settings=settings, campaign=campaign, profile_ids=ids,
            channels=request.app.state.channels, rules=load_rules(settings.data_dir),
        )
    )  # fmt: skip
    return dataclasses.asdict(done)


def _targets(store: Any, body: IssueRequest) -> list[str]:
    if (body.profile_ids is None) == (body.segment_id is None):
        raise InvalidInput("profile_ids: give profile_ids or segment_id", field="profile_ids")
    if body.segment_id is None:
        return body.profile_ids or []
    segment = get_segment(store=store, segment_id=body.segment_id)
    return [
        r[0]
        for r in store.query(
            "SELECT profile_id FROM segment_members WHERE segment_id = ?", [segment.segment_id]
        )
    ]


@router.get("/coupons/{code}", summary="A coupon and its redemption")
def coupons_get(code: str, store: StoreDep, _: PosKey) -> dict[str, Any]:
    return dataclasses.asdict(coupons.get_coupon(store=store, code=code))


@router.post("/coupons/{code}/redeem", summary="Redeem at the till (a POS or admin key)")
def coupons_redeem(
    code: str, body: RedeemRequest, store: StoreDep, settings: SettingsDep, key: PosKey
) -> dict[str, Any]:
    _own_store(key, body.store_id)
    done = coupons.redeem(
        store=store,
        code=code,
        store_id=body.store_id,
        receipt_id=body.receipt_id,
        amount_yen=body.amount_yen,
        timezone=settings.timezone,
        rules=load_rules(settings.data_dir),
    )
    return dataclasses.asdict(done)


@router.post("/coupons/{code}/void", summary="Undo a redemption (the receipt was cancelled)")
def coupons_void(code: str, body: VoidRequest, store: StoreDep, key: PosKey) -> dict[str, Any]:
    if key.store_id is not None and (
        redeemed_at := coupons.get_coupon(store=store, code=code).store_id
    ):  # staff void what their own store redeemed (what is not redeemed says so below)
        _own_store(key, redeemed_at)
    return dataclasses.asdict(coupons.void(store=store, code=code, receipt_id=body.receipt_id))


def _own_store(key: ApiKey, store_id: str | None) -> None:
    """Store staff act for their own store only."""
    if key.store_id is not None and store_id != key.store_id:
        raise Forbidden(
            f"store_id: staff of store {key.store_id} act for that store only", field="store_id"
        )
