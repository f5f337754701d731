from __future__ import annotations

from pathlib import Path

import httpx

from tsunagu.keys import create_key
from tsunagu.store import Store


def test_api_needs_a_key_with_the_right_scope(live_server, store: Store) -> None:  # type: ignore[no-untyped-def]
    _, read = create_key(store=store, name="bi", scope="read")
    _, admin = create_key(store=store, name="ops", scope="admin")
    url = live_server.url
    assert httpx.get(url + "/v1/status").status_code == 401
    assert (
        httpx.get(url + "/v1/status", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    ok = httpx.get(url + "/v1/status", headers={"Authorization": f"Bearer {read}"})
    assert ok.status_code == 200 and ok.json()["events"] == 0
    forbidden = httpx.post(
        url + "/v1/sources", json={"name": "app"}, headers={"Authorization": f"Bearer {read}"}
    )
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["field"] == "Authorization"
    created = httpx.post(
        url + "/v1/sources", json={"name": "app"}, headers={"Authorization": f"Bearer {admin}"}
    )
    assert created.status_code == 200 and created.json()["write_key"].startswith("wk_")
    assert httpx.get(url + "/healthz").status_code == 200


def test_upload_import_answers_counts_and_rejects(
    live_server, store: Store, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _, admin = create_key(store=store, name="ops", scope="admin")
    body = "sku,name,price\nP1,シャツ,3900\nP2,,990\n".encode()
    response = httpx.put(
        live_server.url + "/v1/imports/products/products.csv",
        content=body,
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["read"], answer["imported"], answer["rejected"]) == (2, 1, 1)
    assert "name: required" in answer["rejects"]
    assert store.scalar("SELECT name FROM products WHERE sku = 'P1'") == "シャツ"
    bad_kind = httpx.put(
        live_server.url + "/v1/imports/orders/x.csv",
        content=b"a\n1\n",
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert bad_kind.status_code == 400 and bad_kind.json()["error"]["field"] == "kind"
