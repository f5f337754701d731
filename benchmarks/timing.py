"""What the benchmark scripts share (they run as `python benchmarks/NAME.py`, so this folder is
on their import path)."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from tsunagu.store import Store


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (seconds), nearest rank, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


TSUNAGU = str(Path(sys.executable).with_name("tsunagu"))


def cli(data: Path, *args: str) -> str:
    """`tsunagu --data-dir DATA ARGS...`; the last line it printed (a key, an id)."""
    done = subprocess.run([TSUNAGU, "--data-dir", str(data), *args], capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def line_members(prefix: str, members: int) -> tuple[Path, str, str]:
    """A new data dir with `members` members who follow the LINE account and consent, their
    identity built, a source and an admin key: (data dir, write key, admin key)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    data = work / "data"
    file = work / "members.csv"
    file.write_text(
        "member_id,name,line_user_id,line_opt_in\n"
        + "".join(f"M{n:06d},会員{n},U{n:032x},true\n" for n in range(members)),
        encoding="utf-8",
    )
    cli(data, "import", "members", str(file))
    cli(data, "identity", "build")
    return (
        data,
        cli(data, "sources", "create", "web"),
        cli(data, "keys", "create", "bench", "--scope", "admin"),
    )


@contextmanager
def serving(data: Path, port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """`tsunagu serve` on `port` in a process of its own until the block ends; its URL."""
    server = subprocess.Popen(
        [TSUNAGU, "--data-dir", str(data), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})},
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def imports_beside_floor(
    run: Callable[[Store], Any], *, data: Path, unit: str, floor_seconds: float, floor: str
) -> None:
    """`run` (an import into the store) on a fresh store, then again (every row a duplicate);
    prints both rates and the first one's ratio to the floor's (`floor_seconds` for as many
    rows, described by `floor`)."""
    from tsunagu.store import Store

    with Store(data / "tsunagu.duckdb") as store:
        for label in ("first import", "second import (all duplicates)"):
            t0 = time.perf_counter()
            result = run(store)
            wall = time.perf_counter() - t0
            print(
                f"{label}: {result.read:,} {unit} in {wall:.2f} s = {result.read / wall:,.0f} "
                f"{unit}/s (imported {result.imported:,}, rejected {result.rejected:,}, "
                f"duplicates {result.duplicates:,})"
            )
            if label == "first import":
                first = result.read / wall
        events = store.scalar("SELECT count(*) FROM events")
    floor_rate = result.read / floor_seconds
    print(f"floor ({floor}): {floor_rate:,.0f} {unit}/s; tsunagu / floor: {first / floor_rate:.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"events stored {events:,}; peak RSS {peak:,.0f} MB; cores: {os.cpu_count()}")


def committed_seconds(database: Path, sql: str) -> float:
    """Seconds for DuckDB alone to run `sql` in a transaction on `database` and commit it, with
    tsunagu's checkpoint setting (a floor is the bare minimum, not worse tuned)."""
    import duckdb

    from tsunagu.store.db import CHECKPOINT_THRESHOLD

    db = duckdb.connect(str(database), config={"checkpoint_threshold": CHECKPOINT_THRESHOLD})
    t0 = time.perf_counter()
    db.execute("BEGIN")
    db.execute(sql)
    db.execute("COMMIT")
    wall = time.perf_counter() - t0
    db.close()
    return wall
