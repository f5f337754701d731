"""What the benchmark scripts share (they run as `python benchmarks/NAME.py`, so this folder is
on their import path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


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
