"""`tsunagu` as real processes: the CLI run as a user runs it, and `tsunagu serve` started,
waited for, killed with SIGKILL and started again on the same data dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

TSUNAGU = Path(sys.executable).with_name("tsunagu")
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")},
    "COLUMNS": "400",  # rich wraps messages at the terminal width otherwise
    "NO_COLOR": "1",
}


def cli(data_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TSUNAGU), "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    url: str
    write_key: str
    data_dir: Path
    log: Path

    def kill(self) -> None:
        """SIGKILL the server (its own session, started by this test) and reap it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """Stop it as an operator would (SIGTERM: it commits what is queued, then exits)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)

    def restart(self) -> None:
        """Start it again on the same data dir and port, and wait until it answers."""
        self.kill()
        started = start_server(self.data_dir, self.log, self.write_key, port=self.port)
        self.process = started.process

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def start_server(
    data_dir: Path, log: Path, write_key: str, *, port: int | None = None, timeout: float = 60
) -> ServerProcess:
    """`tsunagu serve` on `data_dir`, once it answers /healthz (its output appended to `log`)."""
    assert TSUNAGU.exists(), f"{TSUNAGU} not installed"
    port = port or free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(TSUNAGU), "--data-dir", str(data_dir), "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=ENV,
            start_new_session=True,
        )
    srv = ServerProcess(process, f"http://127.0.0.1:{port}", write_key, data_dir, log)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            pytest.fail(f"tsunagu serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{srv.url}/healthz", timeout=2).status_code == 200:
                return srv
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            srv.kill()
            pytest.fail(f"tsunagu serve did not come up:\n{log.read_text()}")
        time.sleep(0.05)


def new_source(data_dir: Path, name: str = "web") -> str:
    """A source created by the CLI; its write key."""
    created = cli(data_dir, "sources", "create", name)
    assert created.returncode == 0, created.stderr
    write_key = created.stdout.strip().splitlines()[-1].strip()
    assert write_key.startswith("wk_"), created.stdout
    return write_key
