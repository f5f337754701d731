"""`tsunagu users create|list|disable`: who signs in to the screens."""

from __future__ import annotations

import dataclasses
import sys
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from tsunagu.cli.common import app, console, err, local_or_server, print_json
from tsunagu.remote import RunningServer, call
from tsunagu.users import User

users_app = typer.Typer(
    help="People who sign in to the screens, and their roles.", no_args_is_help=True
)
app.add_typer(users_app, name="users")


class Role(StrEnum):
    admin = "admin"
    marketer = "marketer"
    analyst = "analyst"
    staff = "staff"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@users_app.command("create")
def users_create(
    login: Annotated[str, typer.Argument(help="What they type to sign in")],
    role: Annotated[
        Role,
        typer.Option(
            help="admin: everything; marketer: analyses, segments, journeys, campaigns; "
            "analyst: reads only; staff: the store screen of their store"
        ),
    ],
    store_id: Annotated[
        str | None, typer.Option("--store", help="The store of a staff member")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Create a user; the password is asked for (twice), or read from standard input."""
    from tsunagu.users import create_user

    password = _password(password_stdin)
    body = {"login": login, "role": role.value, "password": password, "store_id": store_id}
    user = local_or_server(
        lambda store: create_user(
            store=store, login=login, role=role.value, password=password, store_id=store_id
        ),
        lambda server: User(**call(server, "POST", "/v1/users", json=body)),
    )
    where = f" of store {user.store_id}" if user.store_id else ""
    err.print(f"{user.role} {user.login!r}{where} created; they sign in at /login")


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The users who may sign in."""
    from tsunagu.users import list_users

    def remote(server: RunningServer) -> list[User]:
        return [User(**u) for u in call(server, "GET", "/v1/users")]

    users = local_or_server(lambda store: list_users(store=store), remote)
    if as_json:
        print_json([dataclasses.asdict(u) for u in users])
        return
    table = Table("login", "role", "store")
    for u in users:
        table.add_row(u.login, u.role, u.store_id or "-")
    console.print(table)


@users_app.command("disable")
def users_disable(login: Annotated[str, typer.Argument()]) -> None:
    """End a user's sessions; they can no longer sign in."""
    from tsunagu.users import disable_user

    local_or_server(
        lambda store: disable_user(store=store, login=login),
        lambda server: call(server, "DELETE", f"/v1/users/{login}"),
    )
    err.print(f"{login!r} disabled")
