"""People who sign in to the screens (admin only): POST /v1/users, GET /v1/users,
DELETE /v1/users/{login}."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from tsunagu.api.deps import AdminKey, StoreDep
from tsunagu.users import ROLES, create_user, disable_user, list_users

router = APIRouter(prefix="/v1/users", tags=["users"])


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1, max_length=100)
    role: str = Field(description=" | ".join(ROLES))
    password: str = Field(min_length=8, max_length=1000)
    store_id: str | None = Field(default=None, max_length=200, description="store staff's store")


@router.post("", status_code=201, summary="Create a user of the screens")
def users_create(body: UserCreate, store: StoreDep, _: AdminKey) -> dict[str, Any]:
    user = create_user(
        store=store, login=body.login, role=body.role, password=body.password,
        store_id=body.store_id,
    )  # fmt: skip
    return dataclasses.asdict(user)


@router.get("", summary="The users of the screens")
def users_list(store: StoreDep, _: AdminKey) -> list[dict[str, Any]]:
    return [dataclasses.asdict(u) for u in list_users(store=store)]


@router.delete("/{login}", summary="Disable a user: no more sign-in, sessions ended")
def users_disable(login: str, request: Request, store: StoreDep, _: AdminKey) -> dict[str, Any]:
    disable_user(store=store, login=login)
    request.app.state.sessions.forget(login)
    return {"login": login, "disabled": True}
