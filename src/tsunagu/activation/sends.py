"""Sending a campaign's message to customers: who gets it, who does not and why, once each.

For each customer (`send_campaign`): assigned to the campaign (so the report covers them);
the control group and the global control get nothing; then consent for the channel and
purpose, an address on the channel, the frequency caps and quiet hours (protections.py). Every
decision is a row of `sends` under a key (campaign or journey, customer, trigger) written before
anything leaves, so the same send never happens twice, a crash leaves it `sending` with its
retry key (the next run delivers it with the same key: LINE drops the repeat), and what
waited for the morning is sent by `send_due`, which the server runs. Every send, suppression,
deferral and failure is an event on the customer's timeline ("Message Sent", ...).

A message that is the same for everyone (no link: a link's token is each customer's own) goes
out on LINE by multicast, 500 customers a request, the batch's retry key kept with each of
its sends.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from tsunagu.activation import links, protections, timeline
from tsunagu.activation.assignments import assign
from tsunagu.activation.campaigns import CONTROL, Campaign
from tsunagu.activation.channels import Channel, Delivery, OutgoingMessage
from tsunagu.config import Settings
from tsunagu.exceptions import InvalidInput, NotConfigured
from tsunagu.identity.rules import IdentityRules
from tsunagu.store import Store, utcnow
from tsunagu.store.db import registered

CHANNEL_OF = {"line": "line", "email": "email", "app": "push", "push": "push", "dm": "dm",
              "catalog": "dm", "webhook": "webhook"}  # fmt: skip
"""A campaign's channel → the channel that sends it."""
EVENT_CHANNEL = {"line": "line", "email": "email", "push": "app", "dm": "catalog"}
"""The channel a send's timeline events carry."""
ADDRESS = {"line": "line_user_id", "email": "email", "push": "device_id", "dm": "postal address"}
WORKERS = 16
"""Deliveries at once (each waits on its provider's answer)."""


@dataclass(slots=True)
class SendResult:
    sent: int = 0
    suppressed: int = 0
    control: int = 0
    deferred: int = 0
    failed: int = 0
    already: int = 0
    """Customers this send reached before (its key exists): nothing done again."""
    reasons: dict[str, int] = field(default_factory=dict)

    def count(self, status: str, reason: str | None = None) -> None:
        setattr(self, status, getattr(self, status) + 1)
        if reason:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass(frozen=True, slots=True)
class _Row:
    send_key: str
    profile_id: str
    status: str
    reason: str | None
    address: str | None
    retry_key: str
    due_at: datetime | None
    extra: dict[str, str]


def channel_of(campaign: Campaign, override: str | None = None) -> str:
    given = override or campaign.channel
    name = CHANNEL_OF.get(given or "")
    if name is None:
        raise InvalidInput(
            f"channel: campaign {campaign.campaign_id} has "
            + (f"channel {given!r}, not one tsunagu sends on" if given else "no channel")
            + f" ({', '.join(sorted(CHANNEL_OF))})",
            field="channel",
        )  # fmt: skip
    return name


def send_campaign(
    *,
    store: Store,
    settings: Settings,
    campaign: Campaign,
    profile_ids: Sequence[str],
    channels: Mapping[str, Channel],
    rules: IdentityRules,
    now: datetime | None = None,
    trigger: str = "send",
    journey_id: str | None = None,
    purpose: str | None = None,
    message: dict[str, Any] | None = None,
    channel: str | None = None,
    send_keys: Mapping[str, str] | None = None,
) -> SendResult:
    """Send the campaign's message (or `message`), on its channel (or `channel`), to each of
    `profile_ids` who may get it. `send_keys` names each customer's send (a journey's: run and
    step), instead of campaign, trigger and customer. `purpose`: the campaign's, unless given."""
    moment = (now or utcnow()).replace(tzinfo=None)
    purpose = purpose or campaign.purpose
    content = message or campaign.message
    if not content or not content.get("text"):
        raise InvalidInput(
            f"message: campaign {campaign.campaign_id} has no message", field="message"
        )
    name = channel_of(campaign, channel)
    if name not in channels:
        raise NotConfigured(
            f"channel: {name} is not configured (see the TSUNAGU_ settings in docs/activation.md)",
            field="channel",
        )
    ids = list(dict.fromkeys(profile_ids))
    result = SendResult()
    keys = (
        dict(send_keys)
        if send_keys
        else {pid: f"{journey_id or campaign.campaign_id}:{trigger}:{pid}" for pid in ids}
    )
    done = _existing(store, list(keys.values()))
    todo = [pid for pid in ids if keys[pid] not in done]
    result.already = len(ids) - len(todo)
    reach = protections.reach(store, todo, name, purpose)
    # Customers who exist are in the report; an id nobody has is not.
    variants = assign(store=store, campaign=campaign, at=moment,
                      profile_ids=[p for p in ids if p not in reach or reach[p].known],
                      origin="journey" if journey_id else "send")  # fmt: skip
    recent = protections.recent_counts(store, todo, moment) if purpose == "marketing" else {}
    quiet = protections.QuietHours.parse(settings.quiet_hours, settings.timezone)
    resume = quiet.resume_at(moment) if quiet and purpose == "marketing" else None
    rows: list[_Row] = []
    for pid in todo:
        r = reach[pid]
        status, reason, due = "sending", None, None
        if variants.get(pid) == CONTROL:
            status = "control"
        elif purpose == "marketing" and protections.in_global_control(
            pid, settings.global_control_share
        ):
            status, reason = "control", "global control group"
        elif not r.known:
            status, reason = "suppressed", "no such customer (erased?)"
        elif r.withdrawn:
            status, reason = "suppressed", f"withdrew from {name}"
        elif not r.consent:
            status, reason = "suppressed", f"no consent for {name}"
        elif not r.address:
            status, reason = "suppressed", f"no {ADDRESS[name]}"
        elif purpose == "marketing" and (
            cap := protections.capped(settings, recent.get(pid, []), name, moment)
        ):
            status, reason = "suppressed", cap
        elif resume is not None:
            status, reason, due = "deferred", "quiet hours", resume
        rows.append(_Row(keys[pid], pid, status, reason, r.address, str(uuid.uuid4()), due,
                         r.extra))  # fmt: skip
    if _batch_size(channels[name], content) > 1:
        rows = _share_retry_keys(rows, _batch_size(channels[name], content))
    payload = orjson.dumps(content).decode()
    events = []
    for row in rows:
        if row.status == "sending":
            continue
        result.count(row.status, row.reason)
        if row.status != "control":
            event = "Message Suppressed" if row.status == "suppressed" else "Message Deferred"
            events.append(_event(row.profile_id, event, row.send_key, campaign.campaign_id, name,
                                 reason=row.reason, due_at=row.due_at))  # fmt: skip
    who = timeline.identifiers_of(store, [r.profile_id for r in rows], rules)
    if rows:
        table = pa.table(
            {
                "send_key": [r.send_key for r in rows],
                "profile_id": [r.profile_id for r in rows],
                "status": [r.status for r in rows],
                "reason": pa.array([r.reason for r in rows], pa.string()),
                "address": pa.array([r.address for r in rows], pa.string()),
                "retry_key": [r.retry_key for r in rows],
                "due_at": pa.array([r.due_at for r in rows], pa.timestamp("us")),
            }
        )
        # The sends and what became of those not sent now, in one commit.
        with store.transaction() as cur, registered(cur, "_rows", table):
            cur.execute(
                "INSERT INTO sends (send_key, campaign_id, journey_id, profile_id, channel, "
                "purpose, status, reason, address, retry_key, message, created_at, due_at) "
                "SELECT send_key, ?, ?, profile_id, ?, ?, status, reason, address, retry_key, ?, "
                "?, due_at FROM _rows ON CONFLICT DO NOTHING",
                [campaign.campaign_id, journey_id, name, purpose, payload, moment],
            )
            timeline.write(store, cur, events, moment, who)
    outgoing = [row for row in rows if row.status == "sending"]
    _deliver(store, settings, channels[name], campaign.campaign_id, content, outgoing, who,
             moment, result)  # fmt: skip
    return result


def send_due(
    *,
    store: Store,
    settings: Settings,
    channels: Mapping[str, Channel],
    rules: IdentityRules,
    now: datetime | None = None,
) -> SendResult:
    """Deliver what waited (quiet hours over) and what a crash cut off (left `sending`, with
    its retry key: LINE drops a repeat)."""
    moment = (now or utcnow()).replace(tzinfo=None)
    rows = store.query(
        "SELECT send_key, campaign_id, profile_id, channel, address, retry_key, message, status "
        "FROM sends WHERE (status = 'deferred' AND due_at <= ?) "
        "OR (status = 'sending' AND created_at <= ?) ORDER BY created_at",
        [moment, moment - timedelta(seconds=settings.stale_send_seconds)],
    )
    result = SendResult()
    by_channel: dict[tuple[str, str | None, str], list[_Row]] = {}
    for key, campaign_id, pid, name, address, retry, content, _ in rows:
        if name not in channels:
            continue
        by_channel.setdefault((name, campaign_id, content), []).append(
            _Row(key, pid, "sending", None, address, retry, None, {})
        )
    for (name, campaign_id, content), group in by_channel.items():
        extra = protections.reach(store, [r.profile_id for r in group], name, "marketing")
        ready, withdrawn, events = [], [], []
        for row in group:
            r = extra[row.profile_id]
            if r.withdrawn or not r.known:
                reason = f"withdrew from {name}" if r.known else "no such customer (erased?)"
                withdrawn.append((row.send_key, "suppressed", Delivery("failed", 0, error=reason)))
                result.count("suppressed", reason)
                if r.known:  # an erased customer has no timeline to write on
                    events.append(_event(row.profile_id, "Message Suppressed", row.send_key,
                                         campaign_id, name, reason=reason))  # fmt: skip
            else:
                ready.append(dataclasses.replace(row, extra=r.extra))
        who = timeline.identifiers_of(store, [r.profile_id for r in group], rules)
        with store.transaction() as cur:
            _finish(cur, withdrawn, moment)
            timeline.write(store, cur, events, moment, who)
            cur.execute(
                "UPDATE sends SET status = 'sending' WHERE send_key IN "
                "(SELECT unnest(?::VARCHAR[]))",
                [[r.send_key for r in ready]],
            )
        _deliver(store, settings, channels[name], campaign_id, orjson.loads(content), ready,
                 who, moment, result)  # fmt: skip
    return result


def _batch_size(channel: Channel, content: Mapping[str, Any]) -> int:
    """How many customers one request may carry: a channel that multicasts (LINE, 500) sends
    a message that is the same for everyone (no link, whose token is each customer's own) in
    batches; otherwise one each."""
    most = getattr(channel, "multicast_max", 1)
    return 1 if content.get("url") else most


def _share_retry_keys(rows: list[_Row], size: int) -> list[_Row]:
    """Give each batch of up to `size` of the rows that will go out (now or after quiet hours)
    one retry key, kept with each send: a batch cut off by a crash goes again as the same
    request, which the provider accepts once."""
    out, batch, key = [], 0, ""
    for row in rows:
        if row.status in ("sending", "deferred"):
            if batch % size == 0:
                key = str(uuid.uuid4())
            batch += 1
            row = dataclasses.replace(row, retry_key=key)
        out.append(row)
    return out


def _existing(store: Store, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return {
        r[0]
        for r in store.query(
            "SELECT send_key FROM sends WHERE send_key IN (SELECT unnest(?::VARCHAR[]))", [keys]
        )
    }


def _deliver(
    store: Store,
    settings: Settings,
    channel: Channel,
    campaign_id: str | None,
    content: dict[str, Any],
    rows: list[_Row],
    who: dict[str, tuple[str, str]],
    moment: datetime,
    result: SendResult,
) -> None:
    """Send `rows` (their customers' identifiers in `who`), then keep what each came to and
    its event in one commit."""
    if not rows:
        return
    secret = links.secret_of(settings.data_dir)
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")

    def one(row: _Row) -> tuple[_Row, Delivery]:
        identifier = who.get(row.profile_id, ("anonymous_id", f"tsunagu:{row.profile_id}"))
        token = links.sign(secret, row.send_key, identifier)
        url = content.get("url")
        outgoing = OutgoingMessage(
            send_key=row.send_key,
            retry_key=row.retry_key,
            profile_id=row.profile_id,
            to=row.address or "",
            text=content["text"],
            subject=content.get("subject"),
            html=content.get("html"),
            url=links.with_token(url, token) if url else None,
            unsubscribe_url=f"{base}/v1/unsubscribe?{links.PARAM}={token}",
            open_url=f"{base}/v1/open?{links.PARAM}={token}",
            campaign_id=campaign_id,
            extra=row.extra,
        )
        try:
            return row, channel.send(outgoing)
        except Exception as exc:  # a channel's bug must not lose the others' sends
            return row, Delivery("failed", error=f"{type(exc).__name__}: {exc}")

    def batch(rows: list[_Row]) -> list[tuple[_Row, Delivery]]:
        if len(rows) == 1:
            return [one(rows[0])]  # a push, which names the message it sent
        try:
            delivery = channel.multicast(  # type: ignore[attr-defined]
                [row.address or "" for row in rows], content["text"], rows[0].retry_key
            )
        except Exception as exc:
            delivery = Delivery("failed", error=f"{type(exc).__name__}: {exc}")
        return [(row, delivery) for row in rows]

    batches: dict[str, list[_Row]] = {}
    for row in rows:  # rows sharing a retry key go as one request
        batches.setdefault(row.retry_key, []).append(row)
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(batches))) as pool:
        outcomes = [o for done in pool.map(batch, batches.values()) for o in done]
    events = []
    for row, delivery in outcomes:
        result.count(delivery.status, delivery.error and delivery.error[:80])
        event = "Message Sent" if delivery.status == "sent" else "Message Failed"
        events.append(_event(row.profile_id, event, row.send_key, campaign_id, channel.name,
                             error=delivery.error))  # fmt: skip
    with store.transaction() as cur:
        _finish(cur, [(row.send_key, d.status, d) for row, d in outcomes], moment)
        timeline.write(store, cur, events, moment, who)


def _finish(
    cur: duckdb.DuckDBPyConnection, done: list[tuple[str, str, Delivery]], moment: datetime
) -> None:
    """What each send came to (its key, the status to keep, the delivery), in one statement of
    the caller's transaction."""
    if not done:
        return
    table = pa.table({
        "send_key": [k for k, _, _ in done],
        "status": [status for _, status, _ in done],
        "reason": pa.array([d.error for _, _, d in done], pa.string()),
        "provider_id": pa.array([d.provider_id for _, _, d in done], pa.string()),
        "attempts": pa.array([d.attempts for _, _, d in done], pa.int32()),
    })  # fmt: skip
    with registered(cur, "_done", table):
        cur.execute(
            "UPDATE sends SET status = d.status, reason = d.reason, provider_id = d.provider_id, "
            "attempts = sends.attempts + d.attempts, "
            "sent_at = CASE WHEN d.status = 'sent' THEN ? END FROM _done d "
            "WHERE sends.send_key = d.send_key",
            [moment],
        )


def _event(
    profile_id: str,
    event: str,
    send_key: str,
    campaign_id: str | None,
    channel: str,
    **properties: Any,
) -> tuple[str, str, dict[str, Any]]:
    props = {"send_key": send_key, "campaign_id": campaign_id, "channel": channel}
    props.update({k: (v.isoformat() + "Z" if isinstance(v, datetime) else v)
                  for k, v in properties.items() if v is not None})  # fmt: skip
    fields: dict[str, Any] = {"messageId": f"{event}:{send_key}", "properties": props}
    if channel in EVENT_CHANNEL:
        fields["context"] = {"channel": EVENT_CHANNEL[channel]}
    return profile_id, event, fields
