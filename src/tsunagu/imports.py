"""`tsunagu import KIND FILE`: one entry point over the domains' importers."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from rich.console import Console

from tsunagu.exceptions import InvalidInput
from tsunagu.store import Store
from tsunagu.store.files import ImportResult

KINDS = ("events", "pos", "members", "products", "stores", "inventory")

DEMO_ORDER: list[tuple[str, str]] = [
    ("stores", "stores.csv"),
    ("products", "products.csv"),
    ("inventory", "inventory.csv"),
    ("members", "members.csv"),
    ("events", "events.jsonl"),
    ("pos", "pos_transactions.csv"),
]
"""The generator's files in the order an import makes sense (master data first)."""


def run_import(
    *,
    store: Store,
    kind: str,
    path: Path,
    encoding: str | None = None,
    store_id: str | None = None,
    timezone: str = "Asia/Tokyo",
    progress_console: Console | None = None,
) -> ImportResult:
    """Import `path` as `kind`; see docs/data-formats.md for the columns each kind takes."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"file: {path} does not exist or is not a file", field="file")
    if kind == "events":
        from tsunagu.events.bulk import import_events

        return import_events(
            store=store, path=path, encoding=encoding, timezone=timezone, console=progress_console
        )
    if kind not in ("pos", "members", "products", "stores", "inventory"):
        raise InvalidInput(f"kind: {kind!r} is not one of {', '.join(KINDS)}", field="kind")
    status = (
        progress_console.status(f"importing {path.name}") if progress_console else nullcontext()
    )
    with status as shown:

        def step(text: str) -> None:
            if shown is not None:
                shown.update(f"{kind}: {text}")

        if kind == "pos":
            from tsunagu.events.pos import import_pos

            return import_pos(
                store=store,
                path=path,
                encoding=encoding,
                timezone=timezone,
                store_id=store_id,
                progress=step,
            )
        from tsunagu.catalog.imports import import_master

        return import_master(
            store=store, kind=kind, path=path, encoding=encoding, timezone=timezone, progress=step
        )
