"""The rules that protect customers, each checked at send time:

- consent per channel and purpose: a marketing message needs the member's opt-in for its channel
  (the member import's `email_opt_in`, `line_opt_in`, `push_opt_in`, `dm_opt_in`), or a later
  word (LINE follow / unfollow, an unsubscribe link: the `consents` table), the latest holding;
  a service message ("your reservation is ready") needs only that the customer did not withdraw
  from the channel altogether;
- frequency caps per customer per channel and across channels, per 24 hours and per 7 days;
- quiet hours in the retailer's zone: marketing waits for their end (deferred, not dropped);
- the global control group: a share of all customers who get no campaign, for the long-run
  effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa

from tsunagu.activation.campaigns import CONTROL, variant_of
from tsunagu.config import Settings, quiet_hours
from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store

OPT_IN_TRAIT = {"line": "line_opt_in", "email": "email_opt_in", "push": "push_opt_in",
                "dm": "dm_opt_in"}  # fmt: skip
"""The member import's opt-in of each channel (webhooks go to the retailer's own systems)."""
GLOBAL_CONTROL = "tsunagu-global-control"


@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, timezone: str) -> QuietHours | None:
        if not text.strip():
            return None
        found = quiet_hours(text)
        if found is None:
            raise InvalidInput(
                f"quiet_hours: {text!r} is not HH:MM-HH:MM (e.g. 21:00-09:00)", field="quiet_hours"
            )
        h1, m1, h2, m2 = found
        return cls(time(h1, m1), time(h2, m2), ZoneInfo(timezone))

    def resume_at(self, now: datetime) -> datetime | None:
        """When a message due `now` (naive UTC) may go: None if now, else the quiet hours'
        end (naive UTC)."""
        local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(self.zone)
        clock = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            quiet = self.start <= clock < self.end
        else:  # over midnight
            quiet = clock >= self.start or clock < self.end
        if not quiet:
            return None
        day = local.date() if clock < self.end else local.date() + timedelta(days=1)
        resume = datetime.combine(day, self.end, tzinfo=self.zone)
        return resume.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def in_global_control(profile_id: str, share: float) -> bool:
    return share > 0 and variant_of(GLOBAL_CONTROL, profile_id, share) == CONTROL


@dataclass(frozen=True, slots=True)
class Reach:
    """What sending to one customer on one channel needs to know."""

    known: bool
    consent: bool
    withdrawn: bool
    """The customer said no to the channel (unfollow, unsubscribe): nothing goes, not even a
    service message."""
    address: str | None
    extra: dict[str, str]


def reach(store: Store, profile_ids: Sequence[str], channel: str, purpose: str) -> dict[str, Reach]:
    """Consent and the address on `channel` of each profile, in a few queries."""
    ids = list(dict.fromkeys(profile_ids))
    if not ids:
        return {}
    address_type = {"line": "line_user_id", "email": "email", "push": "device_id"}.get(channel)
    trait = OPT_IN_TRAIT.get(channel)
    cur = store.cursor()
    try:
        cur.register("_who", pa.table({"profile_id": pa.array(ids, pa.string())}))
        known = {r[0] for r in cur.execute(
            "SELECT DISTINCT profile_id FROM identity_nodes WHERE profile_id IN "
            "(SELECT profile_id FROM _who)"
        ).fetchall()}  # fmt: skip
        opted = dict(
            cur.execute(
                f"SELECT profile_id, coalesce(json_extract(traits, '$.{trait}')::BOOLEAN, false) "
                "FROM profile_traits WHERE profile_id IN (SELECT profile_id FROM _who)"
            ).fetchall()
        ) if trait else {}  # fmt: skip
        said = {
            (pid, p): granted
            for pid, p, granted in cur.execute(
                "SELECT n.profile_id, c.purpose, arg_max(c.granted, c.changed_at) FROM consents c "
                "JOIN identity_nodes n ON n.type = c.id_type AND n.value = c.id_value "
                "WHERE c.channel = ? AND n.profile_id IN (SELECT profile_id FROM _who) "
                "GROUP BY ALL",
                [channel],
            ).fetchall()
        }
        addresses: dict[str, str] = {}
        if address_type:
            addresses = dict(
                cur.execute(
                    "SELECT profile_id, arg_max(value, first_seen) FROM identity_nodes "
                    "WHERE type = ? AND profile_id IN (SELECT profile_id FROM _who) "
                    "GROUP BY profile_id",
                    [address_type],
                ).fetchall()
            )
        postal: dict[str, dict[str, str]] = {}
        if channel == "dm":
            for pid, member, name, postcode, prefecture, address in cur.execute(
                "SELECT n.profile_id, arg_max(m.member_id, m.updated_at), arg_max(m.name, m.updated_at), "
                "arg_max(m.postcode, m.updated_at), arg_max(m.prefecture, m.updated_at), "
                "arg_max(m.address, m.updated_at) FROM identity_nodes n "
                "JOIN members m ON n.type = 'user_id' AND m.member_id = n.value "
                "WHERE n.profile_id IN (SELECT profile_id FROM _who) AND m.address IS NOT NULL "
                "GROUP BY n.profile_id"
            ).fetchall():
                addresses[pid] = member
                postal[pid] = {"name": name or "", "postcode": postcode or "",
                               "prefecture": prefecture or "", "address": address or ""}  # fmt: skip
        cur.unregister("_who")
    finally:
        cur.close()
    out: dict[str, Reach] = {}
    for pid in ids:
        withdrawn = said.get((pid, "all")) is False
        consent = (
            bool(said.get((pid, "marketing"), opted.get(pid, False)))
            if purpose == "marketing" and channel != "webhook"
            else True
        )
        where = pid if channel == "webhook" else addresses.get(pid)
        out[pid] = Reach(pid in known, consent and not withdrawn, withdrawn, where,
                         postal.get(pid, {}))  # fmt: skip
    return out


def recent_counts(
    store: Store, profile_ids: Sequence[str], now: datetime
) -> dict[str, list[tuple[str, datetime]]]:
    """Each profile's marketing messages sent in the last 7 days: [(channel, sent_at)]."""
    if not profile_ids:
        return {}
    out: dict[str, list[tuple[str, datetime]]] = {}
    cur = store.cursor()
    try:
        cur.register("_who", pa.table({"profile_id": pa.array(list(profile_ids), pa.string())}))
        for pid, channel, at in cur.execute(
            "SELECT profile_id, channel, sent_at FROM sends WHERE status = 'sent' "
            "AND purpose = 'marketing' AND sent_at >= ? "
            "AND profile_id IN (SELECT profile_id FROM _who)",
            [now - timedelta(days=7)],
        ).fetchall():
            out.setdefault(pid, []).append((channel, at))
        cur.unregister("_who")
    finally:
        cur.close()
    return out


def capped(
    settings: Settings, sent: list[tuple[str, datetime]], channel: str, now: datetime
) -> str | None:
    """The cap a further message on `channel` would break, or None."""
    day = now - timedelta(days=1)
    checks = (
        (settings.cap_channel_day, sum(1 for c, t in sent if c == channel and t >= day),
         f"frequency cap: {settings.cap_channel_day} a day on {channel}"),
        (settings.cap_channel_week, sum(1 for c, _ in sent if c == channel),
         f"frequency cap: {settings.cap_channel_week} a week on {channel}"),
        (settings.cap_all_day, sum(1 for _, t in sent if t >= day),
         f"frequency cap: {settings.cap_all_day} a day on every channel"),
        (settings.cap_all_week, len(sent),
         f"frequency cap: {settings.cap_all_week} a week on every channel"),
    )  # fmt: skip
    for limit, count, reason in checks:
        if limit and count >= limit:
            return reason
    return None


def record_consent(
    store: Store,
    identifier: tuple[str, str],
    channel: str,
    purposes: Sequence[str],
    granted: bool,
    at: datetime,
    source: str,
) -> None:
    """The customer's word on `channel` for each purpose ("marketing", or "all": the channel
    itself), by the identifier it came with; an older word than the one held changes nothing
    (webhooks arrive out of order)."""
    with store.transaction() as cur:
        for purpose in purposes:
            cur.execute(
                "INSERT INTO consents VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id_type, id_value, channel, purpose) DO UPDATE SET "
                "granted = excluded.granted, changed_at = excluded.changed_at, "
                "source = excluded.source WHERE excluded.changed_at >= consents.changed_at",
                [identifier[0], identifier[1], channel, purpose, granted, at, source],
            )
