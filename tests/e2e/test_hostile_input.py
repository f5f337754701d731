"""Every error answers with the project's body, and no body can make the server hold more than
its limit: a declared size over it is refused before it is read, a chunked one is cut off, a
gzip bomb is refused after its limit of inflated bytes."""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import serve_app
from tsunagu.api import create_app
from tsunagu.config import Settings
from tsunagu.keys import create_key
from tsunagu.store import Store


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Store]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("hostile") / "data")
    with Store(settings.database_path) as store:
        app = create_app(settings, store=store)

        @app.get("/v1/test-failure", include_in_schema=False)
        def fail() -> None:
            raise RuntimeError("secret detail of the failure")

        _, admin = create_key(store=store, name="admin", scope="admin")
        with serve_app(app) as url:
            yield url, admin, store


def _is_project_error(response: httpx.Response, status: int, code: str, field: str | None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert body["code"] == body["error"]["code"] == code
    assert body["error"]["field"] == field
    assert body["message"] == body["error"]["message"]


def test_an_unknown_path_answers_the_project_s_404(server: tuple[str, str, Store]) -> None:
    url, admin, _ = server
    response = httpx.get(url + "/v1/nothing-here", headers={"Authorization": f"Bearer {admin}"})
    _is_project_error(response, 404, "not_found", "path")
    assert "/v1/nothing-here" in response.json()["message"]


def test_a_method_the_path_does_not_take_answers_405_with_allow(
    server: tuple[str, str, Store],
) -> None:
    url, admin, _ = server
    response = httpx.delete(
        url + "/v1/analytics/kpis", headers={"Authorization": f"Bearer {admin}"}
    )
    _is_project_error(response, 405, "method_not_allowed", "method")
    assert response.headers["allow"] == "GET"
    assert "DELETE" in response.json()["message"]


def test_a_body_that_is_not_json_answers_400_naming_the_body(
    server: tuple[str, str, Store],
) -> None:
    url, admin, _ = server
    response = httpx.post(
        url + "/v1/analytics/funnel",
        content=b"{not json",
        headers={"Authorization": f"Bearer {admin}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] is not None


def test_an_unexpected_failure_answers_500_without_its_details(
    server: tuple[str, str, Store],
) -> None:
    url, _, _ = server
    response = httpx.get(url + "/v1/test-failure")
    _is_project_error(response, 500, "internal_error", None)
    assert "secret" not in response.text


def _raw_request(url: str, head: bytes, body_chunks: Iterator[bytes] = iter(())) -> bytes:
    """Send `head` (and chunks after it, while the server reads) over a socket; what came back."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: what we wanted
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    return answer


def test_a_declared_100_mb_body_is_refused_before_it_is_read(
    server: tuple[str, str, Store],
) -> None:
    url, admin, _ = server
    head = (
        b"POST /v1/segments/preview HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + admin.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
    )
    started = time.monotonic()
    answer = _raw_request(url, head)  # not one byte of the body is sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"payload_too_large"' in answer and b'"field":"body"' in answer
    assert time.monotonic() - started < 5  # it did not wait for the body


def test_a_chunked_body_is_cut_off_at_the_limit(server: tuple[str, str, Store]) -> None:
    url, admin, _ = server
    head = (
        b"POST /v1/segments/preview HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + admin.encode() + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"x" * (1024 * 1024)
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(100):  # 100 MB if nobody stops it
            sent += 1
            yield b"%x\r\n" % len(chunk) + chunk + b"\r\n"

    answer = _raw_request(url, head, chunks())
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"16 MB" in answer
    assert sent < 50  # the server stopped taking it soon after 16 MB


def test_a_gzip_bomb_to_the_collector_is_refused(server: tuple[str, str, Store]) -> None:
    url, _, store = server
    from tsunagu.events.sources import create_source

    _, write_key = create_source(store=store, name="bomb")
    bomb = gzip.compress(b'{"batch": [' + b" " * (200 * 1024 * 1024) + b"]}", compresslevel=9)
    assert len(bomb) < 500 * 1024  # small on the wire, 200 MB inflated
    response = httpx.post(
        url + "/v1/batch",
        content=bomb,
        auth=(write_key, ""),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    _is_project_error(response, 400, "payload_too_large", "body")


def test_an_upload_has_a_limit_of_its_own(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path / "data", max_body_bytes=2048, max_upload_bytes=4096)
    with (
        Store(settings.database_path) as store,
        serve_app(create_app(settings, store=store)) as url,
    ):
        _, admin = create_key(store=store, name="admin", scope="admin")
        auth = {"Authorization": f"Bearer {admin}"}
        csv = "store_id,name\n" + "".join(f"S{i:03},店{i}\n" for i in range(150))  # ~2.3 KB
        response = httpx.put(
            url + "/v1/imports/stores/stores.csv", content=csv.encode(), headers=auth
        )
        assert response.status_code == 200, response.text
        assert response.json()["imported"] == 150
        response = httpx.put(
            url + "/v1/imports/stores/stores.csv", content=b"x" * 5000, headers=auth
        )
        _is_project_error(response, 413, "payload_too_large", "body")
        response = httpx.post(url + "/v1/segments/preview", content=b" " * 3000, headers=auth)
        _is_project_error(response, 413, "payload_too_large", "body")
