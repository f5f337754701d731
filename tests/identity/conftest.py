"""The sample retailer the identity tests share (generated and imported once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsunagu.demo import generate
from tsunagu.imports import DEMO_ORDER, run_import
from tsunagu.store import Store


@pytest.fixture(scope="session")
def retailer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("retailer")
    generate(out_dir=root / "files", customers=1500, days=120, seed=11)
    with Store(root / "data" / "tsunagu.duckdb") as store:
        for kind, name in DEMO_ORDER:
            run_import(store=store, kind=kind, path=root / "files" / name)
    return root / "files", root / "data"
