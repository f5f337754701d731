"""Talking to the running server from the CLI on the same machine.

DuckDB lets one process write a database. While `tsunagu serve` runs, it owns the store, and
CLI commands that change data go through its HTTP API instead, with the admin key the server
wrote for this purpose into its server file (readable by the same user only).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tsunagu.exceptions import StoreBusy, TsunaguError


@dataclass(frozen=True, slots=True)
class RunningServer:
    url: str
    pid: int
    key: str


def write_server_file(path: Path, *, url: str, key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "url": url, "key": key}, fh)


def running_server(path: Path) -> RunningServer | None:
    """The server named in the server file, if that process is alive."""
    try:
        info = json.loads(path.read_text())
        server = RunningServer(url=info["url"], pid=int(info["pid"]), key=info["key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(server.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return server


def call(server: RunningServer, method: str, path: str, **kwargs: Any) -> Any:
    """One request to the server; its JSON answer, or a TsunaguError with its message."""
    host = server.url.replace("://0.0.0.0", "://127.0.0.1")
    try:
        response = httpx.request(
            method,
            host + path,
            headers={"Authorization": f"Bearer {server.key}", **kwargs.pop("headers", {})},
            timeout=httpx.Timeout(10, read=None),
            **kwargs,
        )
    except httpx.HTTPError as exc:
        raise StoreBusy(
            f"a tsunagu server (pid {server.pid}) holds the store but did not answer at "
            f"{server.url} ({exc}). Stop it and run this command again."
        ) from None
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            raise TsunaguError(error["message"], field=error.get("field"))
        except (ValueError, KeyError, TypeError):
            raise TsunaguError(
                f"the server answered {response.status_code}: {response.text[:200]}"
            ) from None
    return response.json()
