"""`tsunagu keys ...`: API keys for the HTTP API, created, listed, revoked and rotated."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from tsunagu.cli.common import KeyScope, console, err, keys_app, local_or_server, print_json
from tsunagu.keys import KeyInfo, create_key, duration, list_keys, revoke_key, rotate_key
from tsunagu.remote import RunningServer, call
from tsunagu.store import utcnow


def _shown_once(what: str, secret: str) -> None:
    err.print(f"{what}; keep it, it is not shown again:")
    console.print(secret)


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key, e.g. bi-dashboard")],
    scope: Annotated[
        KeyScope,
        typer.Option(
            help="read: GET and analytics; admin: changes and erasure; pos: redeem coupons"
        ),
    ] = KeyScope.read,
    expires: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 90d or 1y (default: does not expire)")
    ] = None,
) -> None:
    """Create an API key; it is printed once and stored hashed."""
    body = {"name": name, "scope": scope.value, "expires_in": expires}

    def local(store: Any) -> str:
        ends = utcnow() + duration(expires, field="expires") if expires else None
        return create_key(store=store, name=name, scope=scope.value, expires_at=ends)[1]

    def remote(server: RunningServer) -> str:
        return str(call(server, "POST", "/v1/keys", json=body)["key"])

    _shown_once(f"{scope.value} key {name!r} created", local_or_server(local, remote))


def _info(row: dict[str, Any]) -> KeyInfo:
    times = ("created_at", "expires_at", "revoked_at")
    fields = {f.name for f in dataclasses.fields(KeyInfo)}
    values: dict[str, Any] = {
        k: (datetime.fromisoformat(v) if k in times and v else v)
        for k, v in row.items()
        if k in fields
    }
    return KeyInfo(**values)


def _time(value: datetime | None) -> str:
    return value.isoformat(sep=" ", timespec="minutes") + "Z" if value else "-"


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """API keys: their id, name, scope, the first characters of the secret, and whether they
    still work (secrets are never shown)."""
    keys = local_or_server(
        lambda store: list_keys(store=store),
        lambda server: [_info(row) for row in call(server, "GET", "/v1/keys")],
    )
    if as_json:
        print_json([{**dataclasses.asdict(k), "active": k.active} for k in keys])
        return
    table = Table("key_id", "name", "scope", "prefix", "created", "expires", "state")
    for k in keys:
        status = ("revoked" if k.revoked_at else "active" if k.active else "expired") + (
            f" (→ {k.rotated_to})" if k.rotated_to else ""
        )
        table.add_row(
            k.key_id, k.name, k.scope, k.key_prefix + "…", _time(k.created_at),
            _time(k.expires_at), status,
        )  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="As `tsunagu keys list` shows it")],
) -> None:
    """Refuse a key from now on."""
    local_or_server(
        lambda store: revoke_key(store=store, key_id=key_id),
        lambda server: call(server, "POST", f"/v1/keys/{key_id}/revoke"),
    )
    err.print(f"key {key_id} revoked")


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="As `tsunagu keys list` shows it")],
    grace: Annotated[
        str, typer.Option(help="How long the old secret still works (e.g. 24h, 7d; 0: not at all)")
    ] = "24h",
) -> None:
    """A new secret for a key (same name and scope); the old one works for `--grace`."""

    def local(store: Any) -> tuple[str, str]:
        key, secret = rotate_key(store=store, key_id=key_id, grace=duration(grace, field="grace"))
        return key.key_id, secret

    def remote(server: RunningServer) -> tuple[str, str]:
        answer = call(server, "POST", f"/v1/keys/{key_id}/rotate", json={"grace": grace})
        return answer["key_id"], answer["key"]

    new_id, secret = local_or_server(local, remote)
    _shown_once(f"key {key_id} rotated to {new_id} (the old one works for {grace})", secret)
