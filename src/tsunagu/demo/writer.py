"""Turns blocks of customers into file contents and writes the seven files, in block order.

Each block of :data:`BLOCK` customers is generated from its own generator, seeded with
``(seed, block)``, so a block's output is the same whichever process makes it: running blocks in
worker processes changes the wall time, never the bytes.
"""

from __future__ import annotations

import csv
import io
import multiprocessing
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson

from tsunagu.demo import experiment
from tsunagu.demo.behaviour import simulate
from tsunagu.demo.catalog import Catalog
from tsunagu.demo.clock import Window
from tsunagu.demo.names import PLACEHOLDER_EMAIL, PLACEHOLDER_PHONE
from tsunagu.demo.people import make_device, make_person
from tsunagu.demo.sessions import Emitter

BLOCK = 1000
"""Customers per block: the unit of seeding, of parallel work and of progress reports."""
FAMILY_SHARE = 0.008
"""Share of online members who share a tablet with someone living at the same address."""
PARALLEL_FROM = 20_000
MAX_CUSTOMERS = 100_000_000
"""Phone numbers, member ids and cards are drawn without collisions up to this many people."""
"""Below this many customers one process is quicker than starting workers."""

HEADERS = {
    "stores.csv": (
        "store_id",
        "name",
        "prefecture",
        "city",
        "address",
        "postcode",
        "lat",
        "lon",
        "store_type",
        "opened_on",
    ),
    "products.csv": (
        "sku",
        "name",
        "category",
        "subcategory",
        "brand",
        "price",
        "repeat_purchase",
        "launched_on",
    ),
    "inventory.csv": ("store_id", "sku", "quantity", "updated_at"),
    "members.csv": (
        "member_id",
        "member_card",
        "name",
        "name_kana",
        "email",
        "phone",
        "line_user_id",
        "birth_date",
        "gender",
        "postcode",
        "prefecture",
        "address",
        "home_store_id",
        "registered_at",
        "email_opt_in",
        "line_opt_in",
        "push_opt_in",
        "dm_opt_in",
    ),
    "pos_transactions.csv": (
        "receipt_id",
        "line_no",
        "store_id",
        "sold_at",
        "member_card",
        "sku",
        "quantity",
        "unit_price",
        "discount",
        "payment_method",
        "coupon_code",
    ),
    "truth.csv": ("identifier_type", "identifier_value", "person_id"),
    "campaign_assignments.csv": ("user_id", "variant", "assigned_at"),
}
_PLACEHOLDERS = frozenset((PLACEHOLDER_EMAIL, PLACEHOLDER_PHONE))


@dataclass(frozen=True)
class GenerateSummary:
    """What :func:`tsunagu.demo.generate` wrote: data rows per file (headers not counted)."""

    out_dir: Path
    customers: int
    days: int
    seed: int
    start: date
    end: date
    stores: int
    products: int
    inventory: int
    members: int
    events: int
    pos_transactions: int
    truth: int
    assignments: int = 0

    @property
    def files(self) -> dict[str, int]:
        """Rows per file name."""
        return {
            "stores.csv": self.stores,
            "products.csv": self.products,
            "inventory.csv": self.inventory,
            "members.csv": self.members,
            "events.jsonl": self.events,
            "pos_transactions.csv": self.pos_transactions,
            "truth.csv": self.truth,
            "campaign_assignments.csv": self.assignments,
        }


@dataclass(frozen=True)
class _Params:
    seed: int
    customers: int
    days: int
    end: date


@dataclass
class _Block:
    members: bytes
    n_members: int
    events: bytes
    n_events: int
    pos: bytes
    n_pos: int
    truth: bytes
    n_truth: int
    placeholders: list[tuple[str, str, str]]
    assignments: bytes = b""
    n_assignments: int = 0
    added: dict[str, list[int]] = field(default_factory=dict)


def _csv(rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue().encode()


def make_block(params: _Params, window: Window, catalog: Catalog, block: int) -> _Block:
    """Generate customers ``block * BLOCK`` .. ``(block + 1) * BLOCK - 1``."""
    rng = random.Random(f"tsunagu-demo:{params.seed}:{block}")
    em = Emitter(rng=rng, window=window, catalog=catalog, block=block, seed=params.seed)
    digits = max(5, len(str(params.customers)))
    members: list[list[Any]] = []
    truth: list[tuple[str, str, str]] = []
    placeholders: list[tuple[str, str, str]] = []
    idx, hi = block * BLOCK, min(params.customers, (block + 1) * BLOCK)
    while idx < hi:
        p = make_person(rng, idx, catalog=catalog, window=window, digits=digits)
        group = [p]
        if (
            p.member is not None
            and p.segment != "store"
            and idx + 1 < hi
            and rng.random() < FAMILY_SHARE
        ):
            q = make_person(
                rng, idx + 1, catalog=catalog, window=window, digits=digits, family_of=p
            )
            p.tablet = q.tablet = make_device(rng, tablet=True)
            p.tablet_owner = True
            group.append(q)
        for person in group:
            used = simulate(em, person)
            members.extend(m.row for m in (person.member, person.duplicate) if m is not None)
            for kind, value in used:
                row = (kind, value, person.pid)
                (placeholders if value in _PLACEHOLDERS else truth).append(row)
        idx += len(group)
    members.sort(key=lambda r: r[0])
    em.events.sort(key=lambda e: (e[0], e[1]))
    em.receipts.sort(key=lambda r: (r[0], r[1]))
    pos = [row for _, _, rows in em.receipts for row in rows]
    events = b"".join(e[2] + b"\n" for e in em.events)
    return _Block(
        _csv(members),
        len(members),
        events,
        len(em.events),
        _csv(pos),
        len(pos),
        _csv(truth),
        len(truth),
        placeholders,
        _csv(em.assignments),
        len(em.assignments),
        em.experiment_added,
    )


_worker_state: tuple[_Params, Window, Catalog] | None = None


def _init_worker(params: _Params) -> None:
    global _worker_state
    window = Window(end=params.end, days=params.days)
    catalog = Catalog(
        seed=params.seed, customers=params.customers, start=window.start, end=params.end
    )
    _worker_state = (params, window, catalog)


def _work(block: int) -> _Block:
    assert _worker_state is not None
    return make_block(*_worker_state, block)


def _blocks(params: _Params, window: Window, catalog: Catalog, workers: int) -> Iterator[_Block]:
    n = (params.customers + BLOCK - 1) // BLOCK
    if workers <= 1 or n <= 1:
        for b in range(n):
            yield make_block(params, window, catalog, b)
        return
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(params,)) as pool:
        yield from pool.imap(_work, range(n), chunksize=1)


def default_workers(customers: int) -> int:
    return 1 if customers < PARALLEL_FROM else max(1, min(4, os.cpu_count() or 1))


def write_all(
    *,
    out_dir: Path,
    customers: int,
    days: int,
    seed: int,
    end: date,
    progress: Callable[[int], None] | None,
    workers: int,
) -> GenerateSummary:
    """Write the seven files; see :func:`tsunagu.demo.generate`."""
    if not 1 <= customers <= MAX_CUSTOMERS:
        raise ValueError(f"customers: must be between 1 and {MAX_CUSTOMERS:,}")
    params = _Params(seed=seed, customers=customers, days=days, end=end)
    window = Window(end=end, days=days)
    catalog = Catalog(seed=seed, customers=customers, start=window.start, end=end)
    out_dir.mkdir(parents=True, exist_ok=True)
    stores = [
        (
            s.store_id,
            s.name,
            s.prefecture,
            s.city,
            s.address,
            s.postcode,
            s.lat,
            s.lon,
            s.store_type,
            s.opened_on.isoformat(),
        )
        for s in catalog.stores
    ]
    products = [
        (
            p.sku,
            p.name,
            p.category,
            p.subcategory,
            p.brand,
            p.price,
            "true" if p.repeat_purchase else "false",
            p.launched_on.isoformat(),
        )
        for p in catalog.products
    ]
    for name, rows in (
        ("stores.csv", stores),
        ("products.csv", products),
        ("inventory.csv", catalog.inventory),
    ):
        (out_dir / name).write_bytes(_csv([HEADERS[name], *rows]))
    counts = {"members": 0, "events": 0, "pos": 0, "truth": 0, "assignments": 0}
    added = {"online": [0, 0], "store": [0, 0]}
    seen: set[tuple[str, str]] = set()
    names = (
        "members.csv",
        "events.jsonl",
        "pos_transactions.csv",
        "truth.csv",
        "campaign_assignments.csv",
    )
    files = [open(out_dir / name, "wb", buffering=1 << 20) for name in names]  # noqa: SIM115
    try:
        members_f, events_f, pos_f, truth_f, assign_f = files
        for f, name in (
            (members_f, "members.csv"),
            (pos_f, "pos_transactions.csv"),
            (truth_f, "truth.csv"),
            (assign_f, "campaign_assignments.csv"),
        ):
            f.write(_csv([HEADERS[name]]))
        done = 0
        for b in _blocks(params, window, catalog, workers):
            members_f.write(b.members)
            events_f.write(b.events)
            pos_f.write(b.pos)
            truth_f.write(b.truth)
            assign_f.write(b.assignments)
            counts["assignments"] += b.n_assignments
            for channel, (orders, revenue) in b.added.items():
                added[channel][0] += orders
                added[channel][1] += revenue
            # A placeholder typed at the till for many people belongs to one person only.
            first = []
            for row in b.placeholders:
                if (row[0], row[1]) not in seen:
                    seen.add((row[0], row[1]))
                    first.append(row)
            truth_f.write(_csv(first))
            counts["members"] += b.n_members
            counts["events"] += b.n_events
            counts["pos"] += b.n_pos
            counts["truth"] += b.n_truth + len(first)
            done = min(customers, done + BLOCK)
            if progress is not None:
                progress(done)
    finally:
        for f in files:
            f.close()
    (out_dir / "campaign_truth.json").write_bytes(
        orjson.dumps(
            experiment.truth(window, out_dir / "campaign_assignments.csv", added),
            option=orjson.OPT_INDENT_2,
        )
    )
    return GenerateSummary(
        out_dir=out_dir,
        customers=customers,
        days=days,
        seed=seed,
        start=window.start,
        end=end,
        stores=len(stores),
        products=len(products),
        inventory=len(catalog.inventory),
        members=counts["members"],
        events=counts["events"],
        pos_transactions=counts["pos"],
        truth=counts["truth"],
        assignments=counts["assignments"],
    )
